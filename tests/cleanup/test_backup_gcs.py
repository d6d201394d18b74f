"""Backups through django-storages' GCS backend, against a GCS emulator (gcp-storage-emulator) on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cleanup.backups import BackupStoreError, backup_read_verified, backup_write_verified


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gcs_backups(settings, monkeypatch, tmp_path):
    port = free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "--default-bucket", "backups"],
        stdout=open(tmp_path / "gcs.log", "w"),
        stderr=subprocess.STDOUT,  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{url}/storage/v1/b", timeout=0.5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    monkeypatch.setenv("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "true")
    from dataops_site.settings import _backup_storage

    settings.STORAGES = {**settings.STORAGES, "backups": _backup_storage("gs://backups/dataops/looker-backups")}
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_backup_round_trip_on_gcs(gcs_backups):
    dashboard = json.dumps({"id": "7", "title": "Revenue", "dashboard_elements": [{"id": "1", "title": "t"}]})
    stored = backup_write_verified(looker_id="7", dashboard_json=dashboard, lookml="- dashboard: revenue")
    listing = requests.get(f"{gcs_backups}/storage/v1/b/backups/o", timeout=5).json()
    names = [item["name"] for item in listing.get("items", [])]
    assert f"dataops/looker-backups/{stored.storage_name}" in names
    doc = backup_read_verified(storage_name=stored.storage_name, sha256=stored.sha256)
    assert doc["dashboard"] == json.loads(dashboard) and doc["lookml"] == "- dashboard: revenue"
    # Writing the same content again (a rerun) lands on the same object.
    again = backup_write_verified(looker_id="7", dashboard_json=dashboard, lookml="- dashboard: revenue")
    assert again == stored
    with pytest.raises(BackupStoreError, match="corrupt"):
        backup_read_verified(storage_name=stored.storage_name, sha256="0" * 64)


def test_unknown_backup_url_is_refused():
    from dataops_site.settings import _backup_storage

    with pytest.raises(Exception, match="BACKUP_STORAGE_URL must start with file:// or gs://"):
        _backup_storage("s3://bucket")
    assert os.path.isabs(_backup_storage("file:///var/x")["OPTIONS"]["location"])
