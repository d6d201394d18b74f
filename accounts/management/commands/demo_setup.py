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

    def handle(self, *args, dashboards: int, fresh: bool, **options) -> None:
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
        self.stdout.write("\nOne user per role (log in at /admin/):")
        self.stdout.write(f"  {'role':<16} {'username':<16} password")
        for role in ROLE_PERMISSIONS:
            username = ROLE_USERNAMES[role]
            _, password = role_user_ensure(username=username, role=role, email=f"{username}@example.com")
            self.stdout.write(f"  {role:<16} {username:<16} {password}")
