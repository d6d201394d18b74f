-- Revenue (USD) and orders per {grain} and region, for the sales dashboard sheet.
-- customers: distinct customers per group; groups with fewer than SALES_MIN_GROUP_SIZE are published suppressed.
-- Parameters: @start DATE, @end DATE (inclusive), @regions ARRAY<STRING>, @all_regions BOOL.
-- Revenue is in each country's currency in order_lines; fx.usd_rates holds each currency's rate per day. The job
-- validates the lines first and runs this query on the lines that passed (a line without a rate for its day is
-- quarantined, so the LEFT JOIN never drops revenue while still counting the order).
SELECT
  DATE_TRUNC(DATE(l.order_ts), {grain}) AS day,
  l.region,
  COUNT(DISTINCT l.order_id) AS orders,
  COUNT(DISTINCT l.customer_id) AS customers,  -- for small-group suppression (SALES_MIN_GROUP_SIZE), not published
  ROUND(SUM(l.revenue * fx.usd_per_unit), 2) AS revenue
FROM `sales.order_lines` AS l
LEFT JOIN `fx.usd_rates` AS fx ON fx.currency = l.currency AND fx.rate_date = DATE(l.order_ts)
WHERE l.order_ts >= TIMESTAMP(@start)
  AND l.order_ts < TIMESTAMP(DATE_ADD(@end, INTERVAL 1 DAY))
  AND (@all_regions OR l.region IN UNNEST(@regions))
GROUP BY day, region
ORDER BY day, region
