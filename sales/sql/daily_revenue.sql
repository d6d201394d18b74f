-- Revenue and orders per {grain} and region, for the sales dashboard sheet.
-- Parameters: @start DATE, @end DATE (inclusive), @regions ARRAY<STRING>, @all_regions BOOL.
SELECT
  DATE_TRUNC(DATE(order_ts), {grain}) AS day,
  region,
  COUNT(DISTINCT order_id) AS orders,
  SUM(revenue) AS revenue
FROM `sales.order_lines`
WHERE order_ts >= TIMESTAMP(@start)
  AND order_ts < TIMESTAMP(DATE_ADD(@end, INTERVAL 1 DAY))
  AND (@all_regions OR region IN UNNEST(@regions))
GROUP BY day, region
ORDER BY day, region
