"""Names the cleanup app registers at start-up, apart from ``cleanup.services`` (which imports looker_sdk)."""

CLEANUP_RUN_ACTION = "cleanup.run"
