"""Registers the Google Sheets sync job."""

from orchestration.registry import JobSpec, ParamSpec, job_register

SHEETS_SYNC = job_register(
    JobSpec(
        name="sheets_sync",
        title="Google Sheets sync",
        runner="sheetsync.services.sheets_sync_run",
        permission="sheetsync.sync_synctarget",
        supports_dry_run=True,
        params={
            "targets": ParamSpec("list", "comma-separated target names or ids (empty: every enabled target)"),
            "force": ParamSpec("bool", "read the sheets even when neither source nor sheet changed", default=False),
        },
    )
)
