"""The sheets_sync job's lineage: each written range from its source, the cycle's stages."""

from __future__ import annotations

import pytest

from lineage.extractors import sync_source_names
from lineage.models import LineageDataset, LineageEvent
from lineage.selectors import lineage_graph
from sheetsync.models import SyncTarget
from tests.sheetsync.conftest import ROWS, run_cycle

pytestmark = pytest.mark.django_db


def test_a_sync_cycle_writes_each_sheet_from_its_source(make_target, sheets):
    one = make_target("one", ROWS, spreadsheet_id="s1")
    code, out = run_cycle()
    assert code == 0, out
    complete = LineageEvent.objects.get(job_name="sheets_sync", event_type="COMPLETE").payload
    assert [(i["namespace"], i["name"]) for i in complete["inputs"]] == [("file://localhost", one.source_file)]
    assert [(o["namespace"], o["name"]) for o in complete["outputs"]] == [("sheets://s1", "Sheet1!A1")]
    loading = LineageEvent.objects.get(job_name="sheets_sync.loading", event_type="COMPLETE").payload
    assert loading["run"]["facets"]["stage"]["details"]["cells_written"] == 12
    sheet = LineageDataset.objects.get(namespace="sheets://s1")
    upstream = {n.label for n in lineage_graph(dataset=sheet).nodes.values() if n.kind == "dataset"}
    assert one.source_file in upstream
    # A quiet cycle reads and writes nothing: its run has no datasets.
    assert run_cycle()[0] == 0
    quiet = LineageEvent.objects.filter(job_name="sheets_sync", event_type="COMPLETE").order_by("-pk").first()
    assert quiet.payload["inputs"] == [] and quiet.payload["outputs"] == []


def test_source_names_for_bigquery_sql_and_the_backup_store(settings):
    settings.GOOGLE_CLOUD_PROJECT = "acme"
    sql = SyncTarget(name="t", source_kind="bigquery",
                     source_query="SELECT * FROM `sales.order_lines` l JOIN fx.usd_rates r ON r.c = l.c")  # fmt: skip
    assert [(n.namespace, n.name) for n in sync_source_names(sql)] == [
        ("bigquery", "acme.sales.order_lines"),
        ("bigquery", "acme.fx.usd_rates"),
    ]
    stored = SyncTarget(name="t", source_kind="file", source_file="store:exports/a.csv")
    assert sync_source_names(stored)[0].name.endswith("exports/a.csv")
