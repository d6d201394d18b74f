"""A local emulator of the slice of BigQuery API v2 this project uses, running SQL on DuckDB.

The real ``google-cloud-bigquery`` client talks to it over loopback (``api_endpoint`` or
``BIGQUERY_EMULATOR_HOST``). Start one in-process with
:func:`sandbox.bigquery.testing.running_bigquery_emulator`, or as a shared process with
``python -m sandbox.bigquery --port 9102 --data-dir DIR``.
"""

from sandbox.bigquery.engine import BigQueryError, DuckEngine, SchemaField, TableMeta
from sandbox.bigquery.server import BigQueryEmulator

__all__ = ["BigQueryEmulator", "BigQueryError", "DuckEngine", "SchemaField", "TableMeta"]
