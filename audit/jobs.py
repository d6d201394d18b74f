"""Registers the audit anchor job: verify the chain, then store its head (signed) outside the database, daily."""

from orchestration.registry import JobSpec, job_register

AUDIT_ANCHOR = job_register(
    JobSpec(
        name="audit_anchor",
        title="Anchor the audit chain head in the backup store",
        runner="audit.anchor.audit_anchor_run",
        permission="audit.view_auditevent",
        supports_dry_run=True,
        params={},  # no parameters: it anchors the verified head, nothing a caller could steer
    )
)
