from tests.sales.conftest import bigquery, sales_dirs, sheet  # noqa: F401 - the sales job's emulators
