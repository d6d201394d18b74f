"""Prepare the embedded demo: a seeded Looker emulator fixture, protected folders, one user per role."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.roles import ROLE_PERMISSIONS
from accounts.services import role_user_ensure
from cleanup.models import ProtectedFolder
from cleanup.services import dashboard_pin_save

ROLE_USERNAMES = {
    "Viewer": "viewer",
    "Analyst": "analyst",
    "Data Steward": "steward",
    "Content Admin": "content_admin",
    "Auditor": "auditor",
    "Platform Admin": "platform_admin",
}


class Command(BaseCommand):
    help = "Seed the demo: Looker emulator fixture, protected folders, and one user per role (passwords printed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dashboards", type=int, default=settings.LOOKER_EMULATOR_DASHBOARDS)
        parser.add_argument("--fresh", action="store_true", help="discard the emulator's saved state and reseed")
        parser.add_argument("--sales-rows", type=int, default=1_000_000, help="rows of the generated sales table")

    def _sales_data(self, *, fresh: bool, rows: int) -> None:
        """Generate the canonical sales table for the BigQuery emulator (seeded, two years, a few dirty rows)."""
        from sandbox.runner import stop_running
        from sandbox.salesdata import TABLE_FILE, dataset_current, write_sales_dataset

        data_dir = Path(settings.BIGQUERY_EMULATOR_DATA_DIR)
        if fresh or not dataset_current(data_dir):  # missing, or written by an older version (no daily FX rates)
            self.stdout.write(f"Generating sales.order_lines ({rows:,} rows) in {data_dir} ...")
            write_sales_dataset(data_dir, rows=rows, seed=7)
            stop_running("bigquery", port=settings.BIGQUERY_EMULATOR_PORT)
        else:
            self.stdout.write(f"BigQuery emulator data kept: {data_dir / TABLE_FILE}")

    def _sales_sheet(self) -> None:
        """The sales dashboard spreadsheet in the Sheets emulator (created once)."""
        import requests

        from connectors.embedded import embedded_sheets_client
        from connectors.errors import ConnectorNotFound

        client = embedded_sheets_client()
        try:
            client.spreadsheet_meta(spreadsheet_id=settings.SALES_SHEET_ID)
        except ConnectorNotFound:
            requests.post(
                f"{settings.SHEETS_API_ENDPOINT}/__emulator/spreadsheets",
                json={
                    "title": "Sales dashboard",
                    "id": settings.SALES_SHEET_ID,
                    "sheets": {"Report": [["day", "region", "orders", "revenue"]]},
                },
                timeout=10,
            ).raise_for_status()
        self.stdout.write(f"Sales dashboard sheet: {settings.SALES_SHEET_ID} in the Sheets emulator")

    def _sync_target(self) -> None:
        """Issue 11: one sync target and its source (a CSV under SHEETS_SYNC_FILE_ROOTS, a sheet in the emulator)."""
        import requests

        from connectors.embedded import embedded_sheets_client
        from connectors.errors import ConnectorNotFound
        from sheetsync.models import SyncTarget
        from sheetsync.services import sync_target_save

        source = Path(settings.SHEETS_SYNC_FILE_ROOTS[0]) / "demo_team_targets.csv"
        if not source.exists():
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_text(
                "region,target_usd,owner\nAMER,1200000,ana@example.com\nAPAC,800000,li@example.com\n"
                "EMEA,950000,eva@example.com\nLATAM,300000,joao@example.com\n"
            )
        client = embedded_sheets_client()
        try:
            client.spreadsheet_meta(spreadsheet_id="team-targets")
        except ConnectorNotFound:
            requests.post(
                f"{settings.SHEETS_API_ENDPOINT}/__emulator/spreadsheets",
                json={"title": "Team targets", "id": "team-targets", "sheets": {"Targets": [["region", "target_usd"]]}},
                timeout=10,
            ).raise_for_status()
        if not SyncTarget.objects.filter(name="team-targets").exists():
            target = SyncTarget(
                name="team-targets",
                description="Sales targets per region, from a CSV the finance team drops (demo)",
                spreadsheet_id="team-targets",
                range="Targets!A1",
                source_kind=SyncTarget.SourceKind.FILE,
                source_file=str(source),
                key_columns="region",
                protected_columns="comment",
            )
            target.full_clean()
            sync_target_save(target=target, actor=None, created=True)
        self.stdout.write(f"Sync target team-targets: {source} -> spreadsheet team-targets (Targets!A1)")

    def handle(self, *args, dashboards: int, fresh: bool, sales_rows: int, **options) -> None:
        from sandbox.looker.fixtures import PROTECTED_FOLDER_IDS, generate_fixture, write_fixture
        from sandbox.runner import stop_running

        if not settings.LOOKER_BASE_URL:
            fixture = Path(settings.LOOKER_EMULATOR_FIXTURE)
            state = Path(settings.LOOKER_EMULATOR_STATE)
            if fresh or not fixture.exists():
                write_fixture(fixture, generate_fixture(dashboards, seed=7))
                state.unlink(missing_ok=True)
                # A running emulator (this checkout's or another's) still serves its old content.
                if stop_running("looker", port=settings.LOOKER_EMULATOR_PORT):
                    self.stdout.write("Stopped the running Looker emulator; the next job starts it on the new fixture")
                self.stdout.write(f"Looker emulator fixture: {dashboards} dashboards in {fixture}")
            else:
                self.stdout.write(f"Looker emulator fixture kept: {fixture} (state in {state}; --fresh reseeds)")
            for folder_id in PROTECTED_FOLDER_IDS:
                if not ProtectedFolder.objects.filter(folder_id=folder_id).exists():
                    folder = ProtectedFolder(folder_id=folder_id, reason="certified content: never cleaned up (demo)")
                    dashboard_pin_save(pin=folder, actor=None, created=True)
        if settings.BIGQUERY_EMULATOR_AUTOSTART:
            self._sales_data(fresh=fresh, rows=sales_rows)
        if settings.SHEETS_EMULATOR_AUTOSTART:
            self._sales_sheet()
            self._sync_target()
        self.stdout.write("\nOne user per role (log in at /admin/):")
        self.stdout.write(f"  {'role':<16} {'username':<16} password")
        for role in ROLE_PERMISSIONS:
            username = ROLE_USERNAMES.get(role, role.lower().replace(" ", "_"))  # roles added later (issue 12)
            _, password = role_user_ensure(username=username, role=role, email=f"{username}@example.com")
            self.stdout.write(f"  {role:<16} {username:<16} {password}")
