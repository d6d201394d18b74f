"""Names the sales app registers at start-up (approval actions, its Sheets writer, the report's tab).

Kept apart from ``sales.services`` (which imports google-cloud-bigquery, polars and sqlglot) so that
``SalesConfig.ready()`` registers them without those imports (issue 15: run_job start-up).
"""

SALES_WRITER = "sales_report"
REVIEW_ACTION = "sales.review_publish"
OVERRIDE_ACTION = "sales.override_publish"
COSTLY_QUERY_ACTION = "sales.costly_query"
REPORT_SHEET = "Report"
