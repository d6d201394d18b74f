-- Revenue (USD) and orders per {grain} and region, for the sales dashboard sheet.
-- Parameters: @start DATE, @end DATE (inclusive), @regions ARRAY<STRING>, @all_regions BOOL.
-- Revenue is in each country's currency in order_lines; fx.usd_rates converts it. A line whose currency has no
-- rate drops out of revenue (and shows as a gap the quality suite and the order count reveal).
SELECT
  DATE_TRUNC(DATE(l.order_ts), {grain}) AS day,
  l.region,
  COUNT(DISTINCT l.order_id) AS orders,
  ROUND(SUM(l.revenue * fx.usd_per_unit), 2) AS revenue
FROM `sales.order_lines` AS l
LEFT JOIN `fx.usd_rates` AS fx ON fx.currency = l.currency
WHERE l.order_ts >= TIMESTAMP(@start)
  AND l.order_ts < TIMESTAMP(DATE_ADD(@end, INTERVAL 1 DAY))
  AND (@all_regions OR l.region IN UNNEST(@regions))
GROUP BY day, region
ORDER BY day, region
