"""The configured clients the jobs use, starting the local emulators first in the embedded default.

``make demo`` runs with no Google credentials and no endpoints: the first process that needs BigQuery or
Sheets starts the shared emulator process (:func:`sandbox.runner.ensure_running`) and later ones reuse it.
With an endpoint or credentials configured (``BIGQUERY_EMULATOR_HOST``, ``SHEETS_API_ENDPOINT``,
``GOOGLE_APPLICATION_CREDENTIALS``) nothing is started and these are plain :func:`bigquery_client` and
:func:`sheets_client`. Shared by every job that talks to Google (sales report, Sheets sync).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from connectors.bigquery import BigQueryClient, bigquery_client
from connectors.sheets import SheetsClient, sheets_client

__all__ = ["embedded_bigquery_client", "embedded_sheets_client"]


def embedded_bigquery_client() -> BigQueryClient:
    """The BigQuery client; the embedded default first makes sure the local emulator runs."""
    if settings.BIGQUERY_EMULATOR_AUTOSTART:
        _emulator_started(
            "bigquery",
            module="sandbox.bigquery",
            port=settings.BIGQUERY_EMULATOR_PORT,
            args=["--data-dir", settings.BIGQUERY_EMULATOR_DATA_DIR],
            log_path=Path(settings.VAR_DIR) / "bigquery_emulator.log",
        )
    return bigquery_client()


def embedded_sheets_client(*, principal: str = "") -> SheetsClient:
    """The Sheets client (as ``principal``, one of ``SHEETS_PRINCIPALS``); the embedded default first makes sure the
    local emulator runs."""
    if settings.SHEETS_EMULATOR_AUTOSTART:
        _emulator_started(
            "sheets",
            module="sandbox.sheets",
            port=settings.SHEETS_EMULATOR_PORT,
            args=["--state", settings.SHEETS_EMULATOR_STATE],
            log_path=Path(settings.VAR_DIR) / "sheets_emulator.log",
        )
    return sheets_client(principal=principal)


def _emulator_started(name: str, **kwargs) -> None:
    """The local emulator runs, or a ConnectorTransientError says why not: callers already handle an unreachable
    service (a job retries or fails its run, the sync target's test shows the error), never a bare RuntimeError."""
    from connectors.errors import ConnectorTransientError
    from sandbox.runner import ensure_running

    try:
        ensure_running(name, **kwargs)
    except RuntimeError as exc:
        raise ConnectorTransientError(f"the local {name} emulator is not available: {exc}", system=name) from exc
