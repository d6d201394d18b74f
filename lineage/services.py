"""Emitting OpenLineage events (job runs, their stages, governance actions), storing and delivering them.

Every event is stored raw and parsed in the database. When openlineage-python is configured at all (an
``OPENLINEAGE*`` environment variable, or an openlineage.yml where the library looks), it goes through the
library's client with the database transport (``DatabaseTransport``), so the configured filters, facets and tags
apply; and when that configuration names another transport (OPENLINEAGE_URL, OPENLINEAGE_CONFIG / openlineage.yml,
OPENLINEAGE__TRANSPORT__*: HTTP to Marquez, a file, the console), the event also waits in the outbox and
``lineage_outbox_deliver`` (Celery beat every LINEAGE_DELIVERY_INTERVAL_S, or ``manage.py lineage_deliver``) sends
it, retrying with backoff. Unconfigured (the default), the event is stored as that client would store it (its one
default facet added here: ``tags`` with the client's version) without importing the client and its transports,
0.1-0.2 s of each job's start-up (issue 15; see ``lineage/__init__.py``).
Nothing here ever raises into a job: lineage is recorded in a savepoint and a failure is logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil import parser as date_parser
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, job_type_job, ownership_job, parent_run
from openlineage.client.serde import Serde
from openlineage.client.uuid import generate_static_uuid

from .facets import DataOpsRunFacet, GovernanceRunFacet
from .models import LineageDataset, LineageEvent, LineageIO, LineageOutbox
from .naming import DatasetName, airflow_namespace

logger = logging.getLogger(__name__)

GOVERNANCE_ACTIONS = ("soft_delete", "restore", "publish", "approval", "quarantine_release")


# --- the client ------------------------------------------------------------------------------------------------


_CLIENT: Any = None


def _database_client() -> Any:
    """One client per process: its transport is the database, its filters and facets the library's config."""
    global _CLIENT  # noqa: PLW0603
    if _CLIENT is None:
        from openlineage.client import OpenLineageClient

        from .transport import DatabaseTransport  # also registers the dataops_db transport type

        with _quiet_library():
            _CLIENT = OpenLineageClient(transport=DatabaseTransport())
    return _CLIENT


def lineage_library_configured() -> bool:
    """Whether openlineage-python's own configuration says anything, where the library looks for it: an
    ``OPENLINEAGE*`` environment variable (OPENLINEAGE_URL, OPENLINEAGE_CONFIG, OPENLINEAGE_DISABLED,
    OPENLINEAGE__...), or an openlineage.yml in the working directory or ~/.openlineage/."""
    if any(name.startswith("OPENLINEAGE") for name in os.environ):
        return True
    places = (os.path.join(os.getcwd(), "openlineage.yml"), os.path.expanduser("~/.openlineage/openlineage.yml"))
    return any(os.path.isfile(place) for place in places)


def _as_the_client_emits(event: RunEvent) -> RunEvent:
    """What the unconfigured client adds to every run event before its transport sees it (openlineage-python
    1.54 ``OpenLineageClient.emit``): the ``tags`` run facet with its version (``update_event_tags_facets``). Its
    other additions are configuration only: environment facets, dataset reducing, filters, and the
    ``sourceCodeLocation`` facet (``facets.source_code_location.disabled`` is true by default). ``tests/lineage``
    compares the two on the same events inside a git checkout with a remote, so a library upgrade that adds or
    enables another default fails there, not silently."""
    from openlineage.client.constants import __version__
    from openlineage.client.facet_v2 import tags_run

    tag = tags_run.TagsRunFacetFields("openlineage_client_version", __version__, "OPENLINEAGE_CLIENT")
    event.run.facets = event.run.facets or {}
    tags = event.run.facets.get("tags", tags_run.TagsRunFacet())
    tags.tags = [*(t for t in tags.tags or [] if t.key.lower() != tag.key), tag]
    event.run.facets["tags"] = tags
    return event


@contextmanager
def _quiet_library() -> Iterator[None]:
    """The client warns on every construction without a configuration; that is this project's normal case."""
    log = logging.getLogger("openlineage.client.client")
    level = log.level
    log.setLevel(logging.WARNING + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def lineage_external_transport() -> Any | None:
    """The transport openlineage-python's own configuration resolves to, or None when it names none.

    None for: nothing configured (the library's console fallback), OPENLINEAGE_DISABLED, or ``dataops_db`` itself.
    """
    if not lineage_library_configured():
        return None
    from openlineage.client import OpenLineageClient

    from . import transport as _transport  # noqa: F401  (registers the dataops_db transport type)

    with _quiet_library():
        client = OpenLineageClient()
    transport = client.transport
    if transport is None or transport.kind in ("noop", "dataops_db"):
        return None
    if transport.kind == "console" and not (client.config.transport or {}).get("type"):
        return None
    return transport


def lineage_emit(event: RunEvent) -> bool:
    """Emit one event; True when it was stored. Never raises (a job must not fail because lineage did)."""
    try:
        with transaction.atomic():  # a savepoint inside a caller's transaction: a failure leaves it usable
            if lineage_library_configured():
                _database_client().emit(event)
            else:
                lineage_event_store(payload=Serde.to_dict(_as_the_client_emits(event)))
    except Exception:  # noqa: BLE001 - lineage never fails or blocks the work it describes
        logger.exception("could not record the lineage event %s %s", event.eventType, event.job.name)
        return False
    return True


def lineage_event_store(*, payload: dict[str, Any]) -> LineageEvent:
    """Store one event (the database transport's work): raw JSON, its datasets, and an outbox row if needed."""
    run = payload.get("run") or {}
    job = payload.get("job") or {}
    facets = run.get("facets") or {}
    parent = facets.get("parent") or {}
    dataops = facets.get("dataops") or {}
    governance = facets.get("governance") or {}
    job_run_id = dataops.get("jobRunId") or governance.get("jobRunId")
    actor = governance.get("actor") or dataops.get("principal") or ""
    event_time = date_parser.isoparse(payload["eventTime"])
    with transaction.atomic():
        stored = LineageEvent.objects.create(
            event_type=str(payload.get("eventType") or "OTHER"),
            event_time=event_time,
            run_id=str(run.get("runId") or ""),
            job_namespace=str(job.get("namespace") or ""),
            job_name=str(job.get("name") or ""),
            parent_run_id=str((parent.get("run") or {}).get("runId") or ""),
            parent_job_name=str((parent.get("job") or {}).get("name") or ""),
            job_run_id=_existing_job_run(job_run_id),
            actor=str(actor)[:150],
            payload=payload,
        )
        rows = []
        for direction, key in ((LineageIO.Direction.INPUT, "inputs"), (LineageIO.Direction.OUTPUT, "outputs")):
            for item in payload.get(key) or []:
                dataset, _ = LineageDataset.objects.get_or_create(namespace=item["namespace"], name=item["name"])
                rows.append(
                    LineageIO(
                        event=stored, dataset=dataset, direction=direction, event_time=event_time, run_id=stored.run_id
                    )
                )
        LineageIO.objects.bulk_create(rows)
        if lineage_external_transport() is not None:
            LineageOutbox.objects.create(event=stored, next_attempt_at=timezone.now())
    return stored


def _existing_job_run(job_run_id: Any) -> int | None:
    from orchestration.models import JobRun

    if not job_run_id:
        return None
    return job_run_id if JobRun.objects.filter(pk=job_run_id).exists() else None


# --- delivery to the library-configured transport ----------------------------------------------------------------


def lineage_outbox_deliver(*, limit: int = 200, now: datetime | None = None) -> dict[str, int]:
    """Send due outbox events to the configured transport; failures back off and, past the bound, give up.

    No transaction is held across a send: each row is leased (its next attempt pushed out) before the call and
    its outcome recorded after it, so two workers never send the same row at once.
    """
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    transport = lineage_external_transport()
    if transport is None:
        return counts
    now = now or timezone.now()
    due = list(
        LineageOutbox.objects.filter(status=LineageOutbox.Status.PENDING, next_attempt_at__lte=now)
        .order_by("event__event_time", "pk")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    lease = timedelta(seconds=settings.LINEAGE_DELIVERY_LEASE_S)
    for pk, next_at in due:
        if not LineageOutbox.objects.filter(pk=pk, status="pending", next_attempt_at=next_at).update(
            next_attempt_at=now + lease
        ):
            continue  # another worker took it
        row = LineageOutbox.objects.select_related("event").get(pk=pk)
        try:
            transport.emit(row.event.payload)
        except Exception as exc:  # noqa: BLE001 - any transport error is a failed delivery, retried later
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if row.attempts >= settings.LINEAGE_DELIVERY_MAX_ATTEMPTS:
                row.status = LineageOutbox.Status.FAILED
                counts["failed"] += 1
            else:
                delay = min(
                    settings.LINEAGE_DELIVERY_MAX_DELAY_S, settings.LINEAGE_DELIVERY_DELAY_S * 2 ** (row.attempts - 1)
                )
                row.next_attempt_at = timezone.now() + timedelta(seconds=delay)
                counts["retrying"] += 1
            row.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
            logger.warning("lineage delivery of event %s failed (attempt %s): %s", row.event_id, row.attempts, exc)
            continue
        row.status = LineageOutbox.Status.DELIVERED
        row.attempts += 1
        row.delivered_at = timezone.now()
        row.last_error = ""
        row.save(update_fields=["status", "attempts", "delivered_at", "last_error"])
        counts["delivered"] += 1
    return counts


def lineage_outbox_retry(*, rows: Iterable[LineageOutbox], actor: Any) -> int:
    """Make failed or waiting deliveries due now (an admin's "retry now"), audited."""
    from audit.services import audit_log

    with transaction.atomic():
        # Locked and re-read: a row the deliverer finished meanwhile stays delivered (never sent twice).
        due = LineageOutbox.objects.select_for_update().filter(pk__in=[r.pk for r in rows])
        ids = sorted(due.exclude(status=LineageOutbox.Status.DELIVERED).values_list("pk", flat=True))
        count = LineageOutbox.objects.filter(pk__in=ids).update(
            status=LineageOutbox.Status.PENDING, next_attempt_at=timezone.now()
        )
        # Every id in the trail: one event per chunk the payload bound keeps whole (AUDIT_VALUE_MAX_ITEMS).
        size = settings.AUDIT_VALUE_MAX_ITEMS
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            audit_log(
                action="lineage.delivery_retried",
                actor=actor,
                object_type="lineage.lineageoutbox",
                object_id=_ids_text(chunk, limit=255),
                data={"count": len(chunk), "ids": chunk},
            )
    return count


def _ids_text(ids: list[int], *, limit: int) -> str:
    """As many ids as fit in ``limit`` characters, comma-separated (the audit event's object id)."""
    text = ""
    for pk in ids:
        candidate = f"{text},{pk}" if text else str(pk)
        if len(candidate) > limit:
            break
        text = candidate
    return text


# --- job runs ----------------------------------------------------------------------------------------------------


def job_run_lineage_id(job_run: Any, stage: str = "") -> str:
    """The run's OpenLineage runId: a UUIDv7 fixed by the JobRun (the same in every process and retry)."""
    data = f"{settings.LINEAGE_NAMESPACE}.jobrun.{job_run.pk}{'.' + stage if stage else ''}".encode()
    return str(generate_static_uuid(instant=job_run.created_at, data=data))


def airflow_dag_run_lineage_id(*, dag_id: str, run_id: str, fallback: datetime | None = None) -> str:
    """The DAG run's runId as Airflow's OpenLineage provider derives it: a static UUIDv7 of its logical date and
    ``<namespace>.<dag_id>.<clear number>`` (the logical date read from the run id ``manual__<ISO date>``;
    clear number 0: the control plane sees no clears).

    A run the control plane triggered (``dataops__<pk>``, no logical date) uses ``fallback`` (the JobRun's
    creation): stable across the run's events and processes, but not the provider's own id for that DAG run.
    """
    _, _, stamp = run_id.partition("__")
    try:
        instant = date_parser.isoparse(stamp) if "-" in stamp else None
    except (ValueError, OverflowError):
        instant = None
    if instant is None:
        instant = fallback or datetime(1970, 1, 1, tzinfo=UTC)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return str(generate_static_uuid(instant=instant, data=f"{airflow_namespace()}.{dag_id}.0".encode()))


def _job(name: str, facets: dict[str, Any] | None = None) -> Job:
    return Job(namespace=settings.LINEAGE_NAMESPACE, name=name, facets=facets or {})


def _dag_run_id(job_run: Any) -> str:
    return airflow_dag_run_lineage_id(dag_id=job_run.dag_id, run_id=job_run.dag_run_id, fallback=job_run.created_at)


def _parent_facet(job_run: Any, stage_parent: bool = False) -> parent_run.ParentRunFacet | None:
    if stage_parent:
        root = _airflow_root(job_run)
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=job_run_lineage_id(job_run)),
            job=parent_run.Job(namespace=settings.LINEAGE_NAMESPACE, name=job_run.job),
            root=root,
        )
    if job_run.dag_id and job_run.dag_run_id:
        dag_run = _dag_run_id(job_run)
        return parent_run.ParentRunFacet(
            run=parent_run.Run(runId=dag_run),
            job=parent_run.Job(namespace=airflow_namespace(), name=job_run.dag_id),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=dag_run),
                job=parent_run.RootJob(namespace=airflow_namespace(), name=job_run.dag_id),
            ),
        )
    return None


def _airflow_root(job_run: Any) -> parent_run.Root:
    if job_run.dag_id and job_run.dag_run_id:
        return parent_run.Root(
            run=parent_run.RootRun(runId=_dag_run_id(job_run)),
            job=parent_run.RootJob(namespace=airflow_namespace(), name=job_run.dag_id),
        )
    return parent_run.Root(
        run=parent_run.RootRun(runId=job_run_lineage_id(job_run)),
        job=parent_run.RootJob(namespace=settings.LINEAGE_NAMESPACE, name=job_run.job),
    )


def _run_facets(job_run: Any) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "dataops": DataOpsRunFacet(
            jobRunId=job_run.pk,
            job=job_run.job,
            trigger=str(job_run.trigger),
            principal=job_run.actor.get_username() if job_run.actor else job_run.principal_label,
            dryRun=job_run.dry_run,
        )
    }
    parent = _parent_facet(job_run)
    if parent is not None:
        facets["parent"] = parent
    return facets


def _job_facets(job_run: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    owners = [ownership_job.Owner(name="team:data-platform", type="MAINTAINER")]
    who = job_run.actor.get_username() if job_run.actor else job_run.principal_label
    if who:
        owners.append(ownership_job.Owner(name=f"user:{who}", type="PRINCIPAL"))
    return {
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="DATAOPS", jobType="JOB"),
        "ownership": ownership_job.OwnershipJobFacet(owners=owners),
        **(extra or {}),
    }


def _iso(moment: datetime | None) -> str:
    return (moment or timezone.now()).isoformat()


def lineage_job_run_started(*, job_run: Any) -> None:
    """START for a claimed run, with the datasets the job declares before it runs."""
    from .extractors import job_lineage_declared

    try:
        inputs, outputs = job_lineage_declared(job_run)
        event = RunEvent(
            eventType=RunState.START,
            eventTime=_iso(job_run.started_at),
            run=Run(runId=job_run_lineage_id(job_run), facets=_run_facets(job_run)),
            job=_job(job_run.job, _job_facets(job_run)),
            inputs=inputs,
            outputs=outputs,
        )
    except Exception:  # noqa: BLE001
        logger.exception("could not build the START lineage event of %s", job_run)
        return
    lineage_emit(event)


def lineage_job_run_finished(*, job_run: Any) -> None:
    """COMPLETE or FAIL for a finished run, with what it read and wrote, then one child run per stage."""
    from .extractors import job_lineage_extract

    try:
        found = job_lineage_extract(job_run)
        facets = _run_facets(job_run)
        facets.update(found.run_facets)
        failed = job_run.status != "succeeded"
        if failed and job_run.error:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=job_run.error[:4000], programmingLanguage="python"
            )
        event = RunEvent(
            eventType=RunState.FAIL if failed else RunState.COMPLETE,
            eventTime=_iso(job_run.finished_at),
            run=Run(runId=job_run_lineage_id(job_run), facets=facets),
            job=_job(job_run.job, _job_facets(job_run, found.job_facets)),
            inputs=found.inputs,
            outputs=found.outputs,
        )
    except Exception:  # noqa: BLE001
        logger.exception("could not build the lineage events of %s", job_run)
        return
    if lineage_emit(event):
        for stage in found.stages:
            _stage_emit(job_run, stage)


def _stage_emit(job_run: Any, stage: Any) -> None:
    from .facets import StageRunFacet

    run_id = job_run_lineage_id(job_run, stage.name)
    facets = {
        "parent": _parent_facet(job_run, stage_parent=True),
        "stage": StageRunFacet(
            stage=stage.name,
            outcome=stage.outcome,
            rowsIn=stage.rows_in,
            rowsOut=stage.rows_out,
            durationSeconds=stage.duration_s,
            details=stage.details,
        ),
    }
    name = f"{job_run.job}.{stage.name}"
    ended = stage.ended_at or job_run.finished_at
    started = stage.started_at or (
        ended - timedelta(seconds=stage.duration_s) if ended and stage.duration_s else job_run.started_at
    )
    lineage_emit(
        RunEvent(
            eventType=RunState.START,
            eventTime=_iso(started),
            run=Run(runId=run_id, facets=facets),
            job=_job(name),
            inputs=stage.inputs,
            outputs=[],
        )
    )
    state = {"succeeded": RunState.COMPLETE, "failed": RunState.FAIL, "skipped": RunState.ABORT}[stage.outcome]
    lineage_emit(
        RunEvent(
            eventType=state,
            eventTime=_iso(ended),
            run=Run(runId=run_id, facets=facets),
            job=_job(name),
            inputs=stage.inputs,
            outputs=stage.outputs,
        )
    )


# --- governance actions --------------------------------------------------------------------------------------------


def lineage_governance(
    *,
    action: str,
    dataset: DatasetName,
    actor: Any = None,
    actor_label: str = "",
    job_run: Any = None,
    obj: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """One event for a governance action: the dataset it touched, the person, and the run it happened in.

    A COMPLETE run of the job ``governance.<action>`` whose output is the dataset; the ``governance`` run facet
    names the person, the object and the JobRun, and the parent facet is that JobRun's run when there is one.
    """
    try:
        if action not in GOVERNANCE_ACTIONS:
            raise ValueError(f"unknown governance action {action!r}")
        from audit.services import _current_actor  # the actor audit_context carries: the same person

        context = _current_actor.get()
        if actor is None:
            actor = context.user
            actor_label = actor_label or context.label
        if job_run is None and context.job_run_id:
            from orchestration.models import JobRun

            job_run = JobRun.objects.filter(pk=context.job_run_id).first()
        if actor is None and job_run is not None and job_run.principal_label:
            actor_label = job_run.principal_label  # who answers for the run (the schedule's owner, cli:<user>...)
        who = actor.get_username() if actor is not None else (actor_label or "system")
        facets: dict[str, Any] = {
            "governance": GovernanceRunFacet(
                action=action,
                actor=who,
                objectType=obj._meta.label_lower if obj is not None else "",
                objectId=str(obj.pk) if obj is not None else "",
                jobRunId=job_run.pk if job_run is not None else None,
                details=_jsonable(details or {}),
            )
        }
        if job_run is not None:
            facets["parent"] = _parent_facet(job_run, stage_parent=True)
        now = timezone.now()
        event = RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=now.isoformat(),
            run=Run(
                runId=str(generate_static_uuid(instant=now, data=f"{action}.{dataset}.{who}".encode())), facets=facets
            ),
            job=_job(
                f"governance.{action}",
                {
                    "ownership": ownership_job.OwnershipJobFacet(
                        owners=[ownership_job.Owner(name=f"user:{who}", type="ACTOR")]
                    )
                },
            ),
            inputs=[],
            outputs=[OutputDataset(namespace=dataset.namespace, name=dataset.name)],
        )
    except Exception:  # noqa: BLE001
        logger.exception("could not build the governance lineage event %s", action)
        return
    lineage_emit(event)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def dataset_input(
    name: DatasetName, facets: dict[str, Any] | None = None, input_facets: dict[str, Any] | None = None
) -> InputDataset:
    return InputDataset(namespace=name.namespace, name=name.name, facets=facets or {}, inputFacets=input_facets or {})


def dataset_output(
    name: DatasetName, facets: dict[str, Any] | None = None, output_facets: dict[str, Any] | None = None
) -> OutputDataset:
    return OutputDataset(
        namespace=name.namespace, name=name.name, facets=facets or {}, outputFacets=output_facets or {}
    )


def governance_dataset_for(*, object_type: str, object_id: str) -> DatasetName:
    """The dataset a governance action on a control-plane object is about (a report's sheet, a dashboard...)."""
    from . import naming

    if object_type == "sales.salesreport":
        from sales.models import SalesReport

        from .extractors import sales_report_output_name

        report = SalesReport.objects.filter(pk=object_id).first()
        if report is not None and report.sheet_id:
            return sales_report_output_name(report.sheet_id)
    if object_type == "cleanup.lookerdashboard":
        from cleanup.models import LookerDashboard

        dashboard = LookerDashboard.objects.filter(pk=object_id).first()
        if dashboard is not None:
            return naming.looker_dashboard(dashboard.looker_id)
    return naming.control_plane_object(object_type or "object", object_id)


def lineage_approval(*, request: Any, actor: Any, approved: bool) -> None:
    """An approval decision as a governance event on what the request covers (one call from the approvals)."""
    from orchestration.models import JobRun

    try:
        dataset = governance_dataset_for(object_type=request.object_type, object_id=request.object_id)
        job_run = (
            JobRun.objects.filter(pk=request.object_id).first()
            if request.object_type == "orchestration.jobrun"
            else None
        )
    except Exception:  # noqa: BLE001
        logger.exception("could not name the dataset of approval %s", request.pk)
        return
    lineage_governance(
        action="approval",
        dataset=dataset,
        actor=actor,
        job_run=job_run,
        obj=request,
        details={"action": request.action, "approved": approved, "title": request.title},
    )


def lineage_quarantine_release(*, rows: list[Any], actor: Any, counts: dict[str, int]) -> None:
    """Quarantined rows re-processed and released: a governance event on the table they came from."""
    from . import naming

    if not counts.get("passed"):
        return
    source = rows[0].dataset if rows else ""
    try:
        dataset = naming.bigquery_table(source)
    except ValueError:
        dataset = naming.control_plane_object("quarantine", source or "rows")
    lineage_governance(
        action="quarantine_release",
        dataset=dataset,
        actor=actor,
        job_run=rows[0].quality_run.job_run if rows and rows[0].quality_run.job_run_id else None,
        details={**counts, "rows": [r.pk for r in rows[:50]]},
    )
