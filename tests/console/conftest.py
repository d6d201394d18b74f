# The sales emulators (BigQuery, Sheets) of the sales tests, for homes with a real review waiting.
from tests.sales.conftest import dirty_bigquery, sales_dirs, sheet  # noqa: F401
