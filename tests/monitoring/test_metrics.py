"""/metrics: protected, parsed by the Prometheus client's own parser, and its figures equal the database's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db.models import Sum
from prometheus_client.parser import text_string_to_metric_families

from monitoring.models import ApiUsage, Incident, RunRecord
from orchestration.models import JobRun
from quality.models import QualityRun
from sales.models import QueryRun
from sandbox.common import FaultRule
from tests.monitoring.conftest import execute

pytestmark = pytest.mark.django_db
TOKEN = "scrape-me-please"
ROOT = Path(__file__).resolve().parents[2]


def scrape(client) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from one scrape with the bearer token."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by(samples: dict[tuple, float], **fixed: str) -> dict[tuple, float]:
    return {k: v for k, v in samples.items() if all(dict(k).get(name) == value for name, value in fixed.items())}


def test_metrics_need_a_bearer_token_or_a_permitted_login(client, role_user, settings):
    settings.MONITORING_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    client.force_login(role_user("Viewer"))
    assert client.get("/metrics").status_code == 403
    client.force_login(role_user("Auditor"))
    assert client.get("/metrics").status_code == 200
    client.logout()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_metrics_parse_and_match_the_database(
    client, settings, looker, bigquery, sheet, ladder, django_capture_on_commit_callbacks
):
    settings.MONITORING_METRICS_TOKEN = TOKEN
    before = scrape(client)
    for emulator in (looker, bigquery, sheet):
        emulator.reset_counters()
    with django_capture_on_commit_callbacks(execute=True):
        execute("audit_anchor")
        execute("audit_anchor")
        execute("looker_cleanup", actor=ladder["owner"], dry_run=True)
        execute("sales_report", actor=ladder["owner"], params={"start": "2026-10-01", "end": "2026-10-31"})
        looker.faults.add(FaultRule(method="POST", path_pattern="/api/4.0/login", status=401, times=None))
        execute("looker_cleanup", actor=ladder["owner"])
        JobRun.objects.create(job="sales_report", trigger="api", params={})  # waiting in the queue
    after = scrape(client)

    # Job runs by job and status: exactly the JobRun table.
    expected = Counter(JobRun.objects.values_list("job", "status"))
    runs = {(dict(k)["job"], dict(k)["status"]): v for k, v in after["dataops_job_runs_total"].items()}
    assert runs == {key: float(n) for key, n in expected.items()}
    assert runs[("looker_cleanup", "failed")] == 1 and runs[("audit_anchor", "succeeded")] == 2

    # Durations as a histogram per job (dry runs excluded): count and sum are the records'.
    for job in ("audit_anchor", "sales_report", "looker_cleanup"):
        records = RunRecord.objects.filter(job=job, dry_run=False, duration_s__isnull=False)
        count = after["dataops_job_duration_seconds_count"][(("job", job),)]
        total = after["dataops_job_duration_seconds_sum"][(("job", job),)]
        assert count == records.count()
        assert total == pytest.approx(records.aggregate(s=Sum("duration_s"))["s"])
        assert after["dataops_job_duration_seconds_bucket"][(("job", job), ("le", "+Inf"))] == count

    # Volume: rows, cells, API calls, bytes per job, as recorded from the runs' counters.
    sales = RunRecord.objects.get(job="sales_report")
    # A sales run bills its order-line validation and its report: the run's figure is the sum of its query runs.
    billed = QueryRun.objects.filter(job_run=sales.job_run).aggregate(n=Sum("bytes_billed"))["n"]
    assert QueryRun.objects.filter(job_run=sales.job_run, purpose="validation").exists()
    assert sales.rows > 0 and sales.bytes_billed == billed > 0
    assert after["dataops_job_rows_processed_total"][(("job", "sales_report"),)] == sales.rows
    assert after["dataops_job_bytes_billed_total"][(("job", "sales_report"),)] == sales.bytes_billed
    assert after["dataops_quality_score"][(("dataset", "sales.daily_report"),)] == QualityRun.objects.get().score

    # Requests per external API: the counters moved by exactly what each emulator received.
    def moved(system: str) -> float:
        now = sum(by(after.get("dataops_external_requests_total", {}), system=system).values())
        then = sum(by(before.get("dataops_external_requests_total", {}), system=system).values())
        return now - then

    assert moved("looker") == looker.counters()["total"] > 0
    assert moved("bigquery") == bigquery.counters()["total"] > 0
    assert moved("sheets") == sheet.counters()["total"] > 0
    assert by(after["dataops_external_requests_total"], system="looker", status="401")  # the injected refusals

    # Quota used: Looker calls this month and BigQuery bytes billed today are the ApiUsage rows (every process).
    looker_used = ApiUsage.objects.filter(system="looker").aggregate(n=Sum("requests"))["n"]
    assert looker_used == looker.counters()["total"]
    assert after["dataops_quota_used"][(("quota", "requests_per_month"), ("system", "looker"))] == looker_used
    billed = after["dataops_quota_used"][(("quota", "bytes_billed_per_day"), ("system", "bigquery"))]
    assert billed == QueryRun.objects.aggregate(b=Sum("bytes_billed"))["b"]
    assert after["dataops_quota_limit"][(("quota", "requests_per_month"), ("system", "looker"))] == 1000

    # Queue, incidents, host.
    assert after["dataops_job_runs_waiting"][(("job", "sales_report"),)] == 1
    assert (
        after["dataops_incidents_open"][(("class", "authentication"), ("level", "1"))] == Incident.objects.count() == 1
    )
    assert after["dataops_host_memory_bytes"][(("state", "total"),)] > 0
    assert by(after["dataops_host_network_bytes_total"], direction="sent")
    cpu_now = sum(after.get("dataops_process_cpu_seconds_total", {}).values())
    assert cpu_now > 0


def test_counters_from_several_processes_add_up(tmp_path):
    """Two processes count requests through the connector hook; a third reads the sum from the shared directory."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "dataops_site.settings"}
    writer = (
        "import django; django.setup()\n"
        "from connectors.http import request_record\n"
        "for _ in range({n}): request_record(system='sheets', method='GET', status={status}, duration_s=0.02)\n"
    )
    for n, status in ((5, 200), (3, 429)):
        subprocess.run(
            [sys.executable, "-c", writer.format(n=n, status=status)], cwd=ROOT, env=env, check=True, timeout=120
        )
    reader = (
        "from prometheus_client import CollectorRegistry, generate_latest, multiprocess\n"
        "registry = CollectorRegistry(); multiprocess.MultiProcessCollector(registry)\n"
        "print(generate_latest(registry).decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out.stdout)
        for s in family.samples
    }
    assert samples[("dataops_external_requests_total", (("status", "200"), ("system", "sheets")))] == 5
    assert samples[("dataops_external_requests_total", (("status", "429"), ("system", "sheets")))] == 3
    assert samples[("dataops_external_request_duration_seconds_count", (("system", "sheets"),))] == 8
