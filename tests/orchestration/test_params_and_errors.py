"""Job parameters are bounded before a JobRun exists (admin, API, CLI, Airflow conf); errors on a run are short.

The issue's hostile parameters: ``inactive_days=1000000000000`` crashed the cleanup and stored the traceback
where a Viewer reads it through the API; a 2 MB parameter became a permanent 2.7 MB audit row.
"""

from __future__ import annotations

import logging

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from orchestration.models import JobRun
from orchestration.registry import JobError, JobSpec, ParamSpec, job_get, jobs_all
from orchestration.services import _enqueue, job_run_create, job_run_execute, job_run_for_dag_run
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db

HUGE = "9" * (2 * 1024 * 1024)
HOSTILE = [
    ("looker_cleanup", {"inactive_days": "1000000000000"}, "inactive_days", "must be at most 3650"),
    ("looker_cleanup", {"inactive_days": HUGE}, "inactive_days", "characters long; the limit is"),
    ("looker_cleanup", {"max_deletions": "-1"}, "max_deletions", "must be at least 1"),
    ("looker_cleanup", {"inactive_days": "1e9"}, "inactive_days", "expected a whole number"),
    ("sales_report", {"start": "2026-01-01", "end": "9999-12-31"}, "end", "must be at most"),
    ("sales_report", {"start": "1900-01-01", "end": "2026-01-01"}, "start", "must be at least 2000-01-01"),
    ("sales_report", {"start": "2020-01-01", "end": "2026-01-01"}, "spans", "the limit is 1098"),
    ("sales_report", {"start": "2026-02-01", "end": "2026-01-01"}, "end", "is before start"),
    ("sales_report", {"start": "2026-01-01", "end": "2026-01-31", "grain": "hour"}, "grain", "one of day, week"),
    ("sales_report", {"start": "2026-01-01", "end": "2026-01-31", "query": "x; DROP"}, "query", "may only contain"),
    ("sales_report", {"start": "2026-01-01", "end": "2026-01-31", "regions": "EMEA," * 50}, "regions", "items"),
    ("sales_report", {"start": "2026-01-01", "end": "2026-01-31", "regions": HUGE}, "regions", "characters long"),
    ("sheets_sync", {"targets": "a" * 101}, "targets", "the limit is 100"),
    ("sheets_sync", {"force": "perhaps"}, "force", "expected true/false"),
    ("looker_cleanup", {"x" * 5000: "1"}, "unknown parameter", "known: inactive_days"),
]


@pytest.mark.parametrize(
    ("job", "params", "name", "message"), HOSTILE, ids=[f"{h[0]}-{h[2]}-{i}" for i, h in enumerate(HOSTILE)]
)
def test_hostile_parameters_are_refused_before_a_run_exists(job, params, name, message):
    with pytest.raises(JobError) as excinfo:
        job_run_create(job=job, params=params)
    text = str(excinfo.value)
    assert name in text and message in text, text
    assert len(text) < 300  # a short message, never the value echoed back
    assert not JobRun.objects.exists() and not AuditEvent.objects.exists()


def test_the_cli_refuses_with_exit_2_and_a_short_message():
    with pytest.raises(CommandError) as excinfo:
        call_command("run_job", "looker_cleanup", "--param", "inactive_days=1000000000000")
    assert excinfo.value.returncode == 2 and "must be at most 3650" in str(excinfo.value)
    with pytest.raises(CommandError) as excinfo:
        call_command("run_job", "looker_cleanup", "--param", f"inactive_days={HUGE}")
    assert excinfo.value.returncode == 2 and len(str(excinfo.value)) < 300
    assert not JobRun.objects.exists()


def test_airflow_conf_goes_through_the_same_check():
    """A DAG run triggered in Airflow's UI with hostile conf params: refused before its JobRun exists."""
    with pytest.raises(JobError, match="must be at most 3650"):
        job_run_for_dag_run(
            job="looker_cleanup",
            params={"inactive_days": 1000000000000},  # JSON conf: an int, not a string
            dry_run=True,
            dag_id="looker_cleanup",
            dag_run_id="manual__x",
        )
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "run_job", "looker_cleanup", "--param", "inactive_days=1000000000000",
            "--airflow-dag-id", "looker_cleanup", "--airflow-dag-run-id", "manual__y",
        )  # fmt: skip
    assert excinfo.value.returncode == 2  # the DAG task fails without retrying (exit 2)
    assert not JobRun.objects.exists()


def test_the_api_and_the_admin_refuse_with_the_message(client, role_user):
    admin = role_user("Content Admin")
    token = api_token_for(admin)
    response = client.post(
        "/api/job-runs/",
        {"job": "looker_cleanup", "dry_run": True, "params": {"inactive_days": "1000000000000"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 400 and "must be at most 3650" in response.json()["params"]
    client.force_login(admin)
    page = client.post(
        "/admin/orchestration/jobrun/trigger/looker_cleanup/",
        {"inactive_days": "1000000000000", "max_deletions": "10", "dry_run": "on"},
    )
    assert page.status_code == 200 and "must be at most 3650" in page.content.decode()
    assert not JobRun.objects.exists()


def test_every_job_declares_bounded_parameters_and_a_json_schema():
    for spec in jobs_all():
        schema = spec.params_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        for name, prop in schema["properties"].items():
            kind = prop["type"]
            assert (
                (kind == "integer" and "minimum" in prop and "maximum" in prop)
                or (kind == "string" and ("maxLength" in prop or "formatMaximum" in prop))
                or (kind == "array" and "maxItems" in prop and "maxLength" in prop["items"])
                or kind == "boolean"
            ), (
                spec.name,
                name,
            )
        # What params_parse accepts, the schema accepts (defaults and a typical valid input).
        raw = {"start": "2026-01-01", "end": "2026-01-31"} if spec.name == "sales_report" else {}
        jsonschema.validate(spec.params_parse(raw), schema)
    cleanup = job_get("looker_cleanup").params_schema()["properties"]["inactive_days"]
    assert (cleanup["minimum"], cleanup["maximum"]) == (1, 3650)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"inactive_days": 1000000000000}, job_get("looker_cleanup").params_schema())


def test_a_parameter_without_bounds_cannot_be_declared():
    for bad in (
        lambda: ParamSpec("int", "n"),
        lambda: ParamSpec("date", "d", min="2000-01-01"),
        lambda: ParamSpec("str", "s"),
        lambda: ParamSpec("list", "l", max_length=3),
        lambda: ParamSpec("float", "f"),
    ):
        with pytest.raises(ValueError):
            bad()
    spec = JobSpec(name="t", title="t", runner="x", permission="p", params={"n": ParamSpec("int", "n", min=1, max=5)})
    assert spec.params_parse({"n": "5"}) == {"n": 5}
    with pytest.raises(JobError, match="must be at most 5"):
        spec.params_parse({"n": 6})
    with pytest.raises(JobError, match="expected a whole number"):
        spec.params_parse({"n": True})


def test_a_crash_stores_a_short_message_and_logs_the_traceback(monkeypatch, caplog, client, role_user):
    """The traceback (and whatever the exception carried: a DSN, a path) goes to the log, never to the run."""

    def crash(**kwargs):
        raise RuntimeError("connection to postgres://app:s3cret@db failed\n" + "x" * 100_000)

    monkeypatch.setattr("cleanup.services.looker_cleanup_run", crash)
    with caplog.at_level(logging.ERROR, logger="orchestration.services"):
        run = job_run_execute(job_run_id=job_run_create(job="looker_cleanup", dry_run=True).pk)
    assert run.status == JobRun.Status.FAILED
    assert "internal error (RuntimeError)" in run.error and "log reference" in run.error
    assert "s3cret" not in run.error and "Traceback" not in run.error and len(run.error) < 300
    ref = run.error.rsplit("log reference ", 1)[1].rstrip(".")
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert ref in logged and any(r.exc_info for r in caplog.records)
    # What a Viewer reads through the API is that short message.
    token = api_token_for(role_user("Viewer"), scope="read")
    body = client.get(f"/api/job-runs/{run.pk}/", HTTP_AUTHORIZATION=f"Token {token}").json()
    assert body["error"] == run.error
    failed = AuditEvent.objects.get(action="job.failed", job_run_id=run.pk)
    assert "s3cret" not in str(failed.data)


def test_a_long_job_failure_message_is_cut(monkeypatch):
    from orchestration.registry import JobFailed

    def fail(**kwargs):
        raise JobFailed("Looker said: " + "no " * 10_000)

    monkeypatch.setattr("cleanup.services.looker_cleanup_run", fail)
    run = job_run_execute(job_run_id=job_run_create(job="looker_cleanup", dry_run=True).pk)
    assert run.error.startswith("Looker said: no") and run.error.endswith("(cut)") and len(run.error) <= 1000


def test_a_broker_refusing_the_run_is_audited_with_a_short_reason(caplog):
    class Refusing:
        def delay(self, pk):
            raise ConnectionRefusedError("redis://:hunter2@broker:6379/0 refused")

    run = job_run_create(job="audit_anchor")
    with caplog.at_level(logging.ERROR, logger="orchestration.services"):
        _enqueue(run, Refusing())
    run.refresh_from_db()
    assert run.status == JobRun.Status.FAILED and "task broker refused it" in run.error
    assert "hunter2" not in run.error
    event = AuditEvent.objects.get(action="job.queue_failed", job_run_id=run.pk)
    assert event.data["error"] == run.error
