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
            "targets": ParamSpec(
                "list",
                "comma-separated target names or ids (empty: every enabled target)",
                max_length=500,
                item_max_length=100,  # a target's name is a slug of at most 100 characters
                pattern=r"[-a-zA-Z0-9_]+",
            ),
            "force": ParamSpec("bool", "read the sheets even when neither source nor sheet changed", default=False),
        },
    )
)
