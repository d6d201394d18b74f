"""The audit vocabulary: every event type the project writes, with what it means and the payload keys it may carry.

``audit_log`` refuses an action that is not declared here and a payload key that its event does not declare, so
this module is the one place to read what the audit trail can contain. To add an event: declare it below (name,
one line of what happened, the payload keys), then call ``audit_log(action=...)`` with it.

Payloads are small by construction: ``audit.services.audit_payload_bound`` truncates long values (with a marker
that keeps their length and SHA-256) and caps a payload at ``AUDIT_PAYLOAD_MAX_BYTES``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    fields: tuple[str, ...] = ()


EVENTS: dict[str, EventType] = {}


def _declare(name: str, description: str, *fields: str) -> EventType:
    if name in EVENTS:
        raise ValueError(f"audit event {name} is declared twice")
    event = EventType(name=name, description=description, fields=tuple(fields))
    EVENTS[name] = event
    return event


def event_type(name: str) -> EventType | None:
    """The declared event type called ``name``, or None."""
    return EVENTS.get(name)


# --- accounts: users, roles, permissions, API tokens ------------------------------------------------------------
_declare("accounts.role_user_created", "demo_setup created a staff user holding one role", "role", "email")
_declare("accounts.role_user_reset", "demo_setup reset a role user's password and role", "role", "email")
_declare(
    "accounts.user_created",
    "a user account was created",
    "username", "email", "is_active", "is_staff", "is_superuser", "password_usable",
)  # fmt: skip
_declare("accounts.user_changed", "a user's profile fields changed: {field: [before, after]}", "changes")
_declare("accounts.user_activated", "a user account was (re)activated", "username")
_declare("accounts.user_deactivated", "a user account was deactivated: it can no longer log in", "username")
_declare("accounts.user_flags_changed", "a user's staff or superuser flag changed: {flag: [before, after]}", "changes")
_declare("accounts.user_password_changed", "a user's password was set by an administrator", "username", "usable")
_declare("accounts.user_deleted", "a user account was deleted", "username", "email", "roles")
_declare(
    "accounts.user_roles_changed",
    "roles (groups) were granted or revoked (approval: the approved request a grant above Viewer needs)",
    "username", "granted", "revoked", "roles", "approval",
)  # fmt: skip
_declare(
    "accounts.user_permissions_changed",
    "per-user permissions were granted or revoked",
    "username", "granted", "revoked", "permissions",
)  # fmt: skip
_declare("accounts.group_created", "a group was created", "name", "permissions")
_declare("accounts.group_renamed", "a group was renamed", "before", "after")
_declare(
    "accounts.group_permissions_changed",
    "a group's permissions were granted or revoked",
    "name", "granted", "revoked", "permissions",
)  # fmt: skip
_declare("accounts.group_deleted", "a group was deleted", "name", "members", "permissions")
_declare(
    "accounts.api_token_created",
    "an API token was issued (its fingerprint, never the key); scope read or write (approval: the approved request "
    "a write scope needs)",
    "user", "fingerprint", "scope", "approval", "name", "lifetime_days", "issued",
)  # fmt: skip
_declare("accounts.api_token_key_shown", "a token's owner was shown its key (once)", "user", "fingerprint", "name")
_declare("accounts.api_token_revoked", "an API token was revoked", "user", "fingerprint", "name")

# issue 10: failed-login lockouts (django-axes) cleared by a Platform Admin.
_declare(
    "accounts.login_lockout_cleared",
    "a failed-login record (and so its lockout) was cleared",
    "username", "ip_address", "failures",
)  # fmt: skip

# --- audit -------------------------------------------------------------------------------------------------------
_declare(
    "audit.anchored",
    "the chain head was written, signed, to the backup store",
    "seq", "hash", "name", "sha256", "key_id",
)  # fmt: skip

# --- jobs and Airflow --------------------------------------------------------------------------------------------
_declare(
    "job.requested",
    "a job run was recorded (queued); principal: who it runs for (a user, the schedule's owner, the Airflow user); "
    "approval: the approved request it carries out",
    "job", "params", "dry_run", "trigger", "principal", "approval",
)  # fmt: skip
_declare("job.queue_failed", "the task broker refused the run: it was marked failed", "error")
_declare("job.triggered", "Airflow accepted the run's DAG run", "dag_id", "dag_run_id", "error", "existing")
_declare("job.trigger_failed", "Airflow could not be asked to run it", "dag_id", "dag_run_id", "error", "existing")
_declare("job.started", "a worker claimed the run", "attempt")
_declare("job.abandoned", "a run without heartbeat was taken over by a later one", "taken_over_by")
_declare("job.succeeded", "the run finished successfully", "counters", "error")
_declare("job.failed", "the run failed (the reason is short; details are in the log)", "counters", "error",
         "dag_run_state")  # fmt: skip
_declare(
    "airflow.dag_pause_requested",
    "Airflow is asked to pause or unpause a DAG (approval: the approved request, for a destructive DAG)",
    "dag_id", "paused", "approval",
)  # fmt: skip
_declare("airflow.dag_paused", "Airflow paused the DAG", "dag_id", "approval")
_declare("airflow.dag_unpaused", "Airflow unpaused the DAG", "dag_id", "approval")
_declare("airflow.dag_pause_failed", "Airflow refused to pause or unpause the DAG", "dag_id", "paused", "error",
         "approval")  # fmt: skip

# --- approvals: guarded actions and the one writer of each sheet -------------------------------------------------
_declare(
    "approval.requested",
    "a guarded action was asked for, with the hash of its exact inputs (migrated_from_review_item: a quality review "
    "opened before approvals existed)",
    "action", "inputs_sha256", "approver_role", "quorum", "reason", "requested_by", "shapers", "expires_at", "object",
    "migrated_from_review_item",
)  # fmt: skip
_declare("approval.approval_recorded", "one approval of a request that needs two was recorded", "action",
         "approvals", "quorum", "inputs_sha256")  # fmt: skip
_declare("approval.approved", "a request reached its quorum: its action runs once", "action", "approvals", "quorum",
         "inputs_sha256")  # fmt: skip
_declare("approval.rejected", "a request was rejected with a reason: its action never runs", "action", "reason")
_declare("approval.expired", "nobody decided a request in time: its action never runs", "action", "expires_at",
         "approvals", "quorum")  # fmt: skip
_declare("approval.execution_started", "an approved action started (taken_over: after a crash, by the sweeper)",
         "action", "attempt", "taken_over")  # fmt: skip
_declare("approval.executed", "an approved action ran; outcome: what it did", "action", "outcome", "attempt")
_declare("approval.execution_failed", "an approved action failed; outcome: why", "action", "outcome", "attempt")
_declare("destination.registered", "a sheet was registered to its one writer", "spreadsheet_id", "sheet", "writer")
_declare("destination.released", "a writer gave a sheet up", "spreadsheet_id", "sheet", "writer")

# --- cleanup -----------------------------------------------------------------------------------------------------
_declare("cleanup.plan_committed", "a cleanup run committed its plan", "soft_delete", "lookml_reports", "reopened")
_declare("cleanup.dashboard_kept", "a planned dashboard was kept (became active, pinned...)", "looker_id", "reason")
_declare(
    "cleanup.dashboard_backed_up",
    "a dashboard's backup was stored and verified",
    "looker_id", "storage_name", "sha256", "size_bytes", "has_lookml",
)  # fmt: skip
_declare(
    "cleanup.dashboard_soft_deleted",
    "a dashboard was soft-deleted in Looker (reconciled: found deleted after a crash)",
    "looker_id", "backup_sha256", "owner_email", "inactive_days", "reconciled", "planned_by_run",
)  # fmt: skip
_declare(
    "cleanup.action_superseded",
    "an unfinished action of an earlier run was taken over by a later run (which plans the dashboard afresh)",
    "looker_id", "planned_by_run", "taken_over_by", "previous_status",
)  # fmt: skip
_declare("cleanup.dashboard_failed", "a dashboard's backup or soft delete failed", "looker_id", "step", "error")
_declare("cleanup.owner_notified", "an owner was told about their deleted dashboards", "looker_ids", "sent")
_declare("cleanup.restore_requested", "a restore was requested", "looker_id", "restore_id", "backup_sha256")
_declare("cleanup.restore_copy_created", "a restore re-created a dashboard from its backup", "restore_id", "looker_id")
_declare(
    "cleanup.dashboard_restored",
    "a dashboard was restored and compared with its backup",
    "restore_id", "method", "old_looker_id", "looker_id", "verified", "differences", "pinned_until",
)  # fmt: skip
_declare("cleanup.restore_failed", "a restore failed", "restore_id", "error")
for _model in ("dashboardpin", "protectedfolder"):
    for _verb in ("created", "changed", "deleted"):
        _declare(f"cleanup.{_model}_{_verb}", f"a {_model} was {_verb} in the admin", "reason", "expires_at")

# --- quality -----------------------------------------------------------------------------------------------------
_declare(
    "quality.run_recorded",
    "a quality suite ran and its gate decided (removed: exact duplicate rows the dedup stage dropped; gate_checks: "
    "each check that moved the gate, as dataset:check=review|fail)",
    "dataset", "gate", "score", "rows", "quarantined", "removed", "failing_checks", "gate_checks", "review_item",
    "approval",
)  # fmt: skip
# Written before reviews moved onto the approvals (issue 9): a chain may still hold them; decisions on reviews
# are now approval.approved / approval.rejected, and the resumed work approval.executed.
_declare("quality.review_approved", "a review item was approved (before approvals)", "quality_run")
_declare("quality.review_rejected", "a review item was rejected with a reason (before approvals)", "quality_run",
         "reason")  # fmt: skip
_declare("quality.review_resumed", "the work blocked by an approved review resumed (before approvals)", "outcome")
_declare("quality.quarantine_reprocessed", "quarantined rows went through their suite again", "passed", "still_failing")

# --- sales -------------------------------------------------------------------------------------------------------
_declare("sales.query_loaded", "a sales query was loaded from sales/sql/", "source_file")
_SALES_QUERY_FIELDS = ("name", "changed", "sql_sha256_before", "sql_sha256", "sql", "active")
_declare("sales.query_created", "a sales query was created in the admin", *_SALES_QUERY_FIELDS)
_declare("sales.query_changed", "a sales query (its SQL, title or state) was edited in the admin", *_SALES_QUERY_FIELDS)
_declare("sales.query_deleted", "a sales query was deleted in the admin", "name", "sql_sha256")
for _status, _what in (
    ("estimated", "a sales query was dry-run only"),
    ("refused", "the cost guard refused a sales query"),
    ("awaiting_approval", "a sales query estimated above SALES_APPROVAL_BYTES waits for its approval"),
    ("succeeded", "a sales query ran in BigQuery"),
    ("failed", "a sales query failed in BigQuery"),
):
    # purpose: what the query was for (the order lines' validation or the report)
    _declare(f"sales.query_{_status}", _what, "purpose", "bq_job_id", "bytes_billed", "error")
_declare(
    "sales.report_publish_started",
    "a sales report's publish intent was committed; the sheet write follows (resumed: after a crash)",
    "sheet_id", "rows", "resumed", "rows_sha256",
)  # fmt: skip
_declare(
    "sales.report_published",
    "a sales report was written to the dashboard sheet (reconciled: found on the sheet after a crash)",
    "sheet_id", "rows", "requests", "cells", "reconciled",
)  # fmt: skip
_declare("sales.report_publish_failed", "publishing a sales report failed (previous values restored)", "error")

# --- sheetsync ---------------------------------------------------------------------------------------------------
_TARGET_FIELDS = (
    "name", "spreadsheet_id", "range", "source_kind", "source_query", "source_database", "source_file",
    "key_columns", "protected_columns", "row_order", "principal", "owner_id", "enabled", "quality_suite",
)  # fmt: skip
_declare("sheetsync.target_created", "a sync target was created", "changed", "target")
_declare("sheetsync.target_changed", "a sync target was edited", "changed", "target")
_declare("sheetsync.target_deleted", "a sync target was deleted (its definition at the time)", *_TARGET_FIELDS)
_declare("sheetsync.target_paused", "a sync target was paused", "reason")
_declare("sheetsync.target_resumed", "a sync target was resumed")
_declare("sheetsync.target_repaired", "a broken or failing target was repaired", "was_broken", "reason", "failures")
_declare(
    "sheetsync.sheet_written",
    "a sync wrote changed cells to a sheet and verified them",
    "event", "spreadsheet_id", "cells", "rows_added", "rows_removed", "drive_version_before", "drive_version_after",
    "dropped_protected",
)  # fmt: skip
_declare("sheetsync.target_broken", "a target was marked broken (its sheet or range is gone)", "reason")
_declare("sheetsync.target_escalated", "a failing target's streak was escalated by email", "failures", "event",
         "error")  # fmt: skip

# --- monitoring: incidents, SLAs, escalation ladders, feedback, reports --------------------------------------------
_declare(
    "incident.opened",
    "a failure opened an incident (a job run, a sync target or an SLA breach)",
    "key", "class", "handling", "job_run", "target", "kind", "sla", "subject",
)  # fmt: skip
_declare(
    "incident.recurred",
    "an open incident failed again",
    "job_run", "class", "target", "kind", "sla", "subject",
)  # fmt: skip
_declare("incident.verification_failed", "the run that was to verify a fix failed", "job_run", "class", "outcome")
_declare("incident.retry_scheduled", "an automatic retry was scheduled (with backoff)", "at", "retry")
_declare("incident.retried", "an automatic retry started a new run", "job_run")
_declare("incident.fallback", "the job fell back to its degraded behaviour", "note")
_declare("incident.escalated", "an incident climbed a rung of its escalation ladder", "level", "audience", "recipients")
_declare("incident.notified", "an incident notification was delivered", "notification", "channel", "error")
_declare("incident.notify_failed", "an incident notification could not be delivered", "notification", "channel",
         "error")  # fmt: skip
_declare("incident.acknowledged", "someone acknowledged an incident", "note", "time_to_acknowledge_s", "level")
_declare("incident.fixed", "someone marked an incident fixed", "note")
_declare("incident.resume_requested", "someone asked to verify a fix and resume", "job_run", "report")
_declare(
    "incident.resolved",
    "an incident was closed (fixed, verified, resumed)",
    "job_run", "time_to_acknowledge_s", "time_to_resolve_s", "how",
)  # fmt: skip
_SLA_FIELDS = ("job", "kind", "within_minutes", "day_of_month", "objective_percent", "enabled")
_declare("sla.created", "an SLA was defined", *_SLA_FIELDS)
_declare("sla.changed", "an SLA was edited", *_SLA_FIELDS)
_declare("sla.breached", "an SLA was missed", "sla", "subject", "detail")
_LADDER_FIELDS = ("job", "level", "audience", "after_minutes", "after_occurrences")
_declare("escalation.step_created", "a rung was added to an escalation ladder", *_LADDER_FIELDS)
_declare("escalation.step_changed", "a rung of an escalation ladder was edited", *_LADDER_FIELDS)
_declare("escalation.step_deleted", "a rung of an escalation ladder was removed", *_LADDER_FIELDS)
_declare("feedback.recorded", "someone said whether a report or review was useful", "useful", "comment", "changed")
_declare("monitoring.report_created", "the weekly performance report was built", "start", "end", "recipients")
_declare("monitoring.report_sent", "the weekly performance report was mailed", "recipients")

# --- security: classification, masking, encryption, access audit (issue 12) ---------------------------------
_declare(
    "security.record_read",
    "someone read a confidential or restricted record (subject: who read; no value read is stored)",
    "subject", "object", "level", "via", "purpose",
)  # fmt: skip
_declare(
    "security.value_revealed",
    "someone revealed masked values of a record for a limited time, giving a reason",
    "subject", "object", "level", "reason", "until",
)  # fmt: skip
_declare("security.keys_rotated", "stored encrypted values were re-encrypted under the newest key", "counts", "keys")
# --- privacy (issue 12): pseudonyms, k-suppression, retention, data-subject requests -------------------------------
# Personal data never enters the chain in clear: the keys below hold pseudonyms (privacy.pseudonym: keyed
# HMAC-SHA256, "pn_<domain>_<hex>"), so a data-subject request can erase a person everywhere else while every
# event, hash and signature stays as written. accounts.user_created / user_deleted / role_user_created /
# role_user_reset "email"; accounts.user_changed "changes" for email, first_name, last_name;
# cleanup.dashboard_soft_deleted "owner_email"; cleanup.owner_notified's object_id; incident.escalated,
# monitoring.report_created and monitoring.report_sent "recipients". Events written before issue 12 may hold the
# values in clear: they are part of the chain and stay (see README, "Privacy").
_declare(
    "privacy.retention_purged",
    "the daily purge deleted or emptied records past their retention period (counts only; access records are kept)",
    "quarantined_rows_deleted", "samples_emptied", "sync_event_details_emptied", "access_records_beyond_period_kept",
    "periods_days",
)  # fmt: skip
_declare(
    "privacy.subject_searched",
    "a Data Protection officer looked up everything stored about a person (subject: the identifier's pseudonym)",
    "subject", "identifier_kind", "found",
)  # fmt: skip
_declare(
    "privacy.subject_erased",
    "a person's data was erased or pseudonymised on request (subject: pseudonym; counts per place, no values)",
    "subject", "identifier_kind", "kind", "found", "changed", "reason",
)  # fmt: skip
_declare(
    "privacy.evidence_exported",
    "compliance evidence was exported (report: gdpr, sox or access; the chain's verification state at the time)",
    "report", "format", "rows", "chain_ok", "chain_seq",
)  # fmt: skip
# --- lineage (issue 13): OpenLineage delivery -------------------------------------------------------------------
_declare("lineage.delivery_retried", "someone made failed or waiting lineage deliveries due now", "count", "ids")
# --- console (issue 11): a person's own time zone --------------------------------------------------------------
_declare("console.time_zone_set", "a person's time zone was set (from their browser or chosen)", "time_zone",
         "previous", "source")  # fmt: skip
