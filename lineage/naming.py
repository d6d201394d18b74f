"""Dataset names: the OpenLineage naming conventions, and this project's documented names where they have none.

Conventions (https://openlineage.io/docs/spec/naming): BigQuery ``bigquery`` / ``project.dataset.table``; GCS
``gs://bucket`` / ``path``; PostgreSQL ``postgres://host:port`` / ``database.schema.table``; local files
``file://host`` / ``path``. Documented here (the conventions lack them): Looker dashboards ``looker://host`` /
``dashboards/<id>``; Google Sheets ``sheets://<spreadsheet_id>`` / ``<sheet>!<range>``; e-mail ``mailto://<domain>``
/ ``<address>`` (one dataset per recipient); SQLite (the embedded default database) ``sqlite://localhost`` /
``<file>.main.<table>``; this control plane's own objects ``dataops://<site host>`` / ``<kind>/<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections


@dataclass(frozen=True)
class DatasetName:
    namespace: str
    name: str


def bigquery_table(table: str) -> DatasetName:
    """``dataset.table`` (or ``project.dataset.table``) in the configured GOOGLE_CLOUD_PROJECT."""
    parts = table.replace("`", "").split(".")
    if len(parts) == 2:
        parts = [settings.GOOGLE_CLOUD_PROJECT, *parts]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"a BigQuery table is dataset.table or project.dataset.table, not {table!r}")
    return DatasetName("bigquery", ".".join(parts))


def backup_object(storage_name: str) -> DatasetName:
    """A backup object in the backups storage: ``gs://bucket`` / ``prefix/name`` or ``file://host`` / ``path``."""
    url = settings.BACKUP_STORAGE_URL
    if url.startswith("gs://"):
        bucket, _, prefix = url.removeprefix("gs://").partition("/")
        path = "/".join(p for p in (prefix.strip("/"), storage_name.lstrip("/")) if p)
        return DatasetName(f"gs://{bucket}", path)
    root = Path(url.removeprefix("file://"))
    return DatasetName("file://localhost", str(root / storage_name))


def database_table(table: str, *, using: str = "default") -> DatasetName:
    """A table of this project's database (the audit database): PostgreSQL by convention, SQLite documented."""
    conn = connections[using]
    db = conn.settings_dict
    if conn.vendor == "postgresql":
        host = db.get("HOST") or "localhost"
        port = db.get("PORT") or 5432
        return DatasetName(f"postgres://{host}:{port}", f"{db['NAME']}.public.{table}")
    name = str(db["NAME"])
    file = "memory" if "memory" in name else Path(name).name  # a test database lives in memory
    return DatasetName("sqlite://localhost", f"{file}.main.{table}")


def looker_dashboard(looker_id: str) -> DatasetName:
    host = urlsplit(settings.LOOKER_BASE_URL or "http://looker.local").netloc or "looker.local"
    return DatasetName(f"looker://{host}", f"dashboards/{looker_id}")


def sheet_range(spreadsheet_id: str, sheet: str, cells: str = "") -> DatasetName:
    if not spreadsheet_id:
        raise ValueError("a sheet dataset needs its spreadsheet id")
    return DatasetName(f"sheets://{spreadsheet_id}", f"{sheet}!{cells}" if cells else sheet)


def email_recipient(address: str) -> DatasetName:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an e-mail address: {address!r}")
    return DatasetName(f"mailto://{domain.lower()}", address.strip().lower())


def control_plane_object(kind: str, object_id: object) -> DatasetName:
    return DatasetName(f"dataops://{site_host()}", f"{kind}/{object_id}")


def site_host() -> str:
    return urlsplit(settings.SITE_URL).netloc or "localhost"


def airflow_namespace() -> str:
    """The namespace of Airflow's DAG runs: LINEAGE_AIRFLOW_NAMESPACE, else ``airflow://<AIRFLOW_API_URL host>``."""
    if settings.LINEAGE_AIRFLOW_NAMESPACE:
        return settings.LINEAGE_AIRFLOW_NAMESPACE
    host = urlsplit(settings.AIRFLOW_API_URL or "").netloc or "localhost"
    return f"airflow://{host}"
