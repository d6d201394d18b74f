"""Shared fixtures: isolated settings, a Looker emulator per test, users per role, service checks.

Under CI=true a test that needs a service (PostgreSQL, Redis, Chromium) fails when the service is missing;
elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

CI = os.environ.get("CI", "").lower() == "true"


def require(ok: bool, reason: str) -> None:
    """Skip (or under CI=true fail) when a service the test needs is missing."""
    if ok:
        return
    if CI:
        pytest.fail(f"{reason} (CI=true: a missing service fails the run instead of skipping)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def require_postgres() -> None:
    require(
        connection.vendor == "postgresql", "needs PostgreSQL: run with DATABASE_URL=postgres://... (make test does)"
    )


@pytest.fixture
def require_redis() -> None:
    require(port_open("127.0.0.1", 6379), "needs Redis on 127.0.0.1:6379")


@pytest.fixture
def require_chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(os.path.exists(path), "needs Debian's chromium (apt-get install chromium)")
    return path


@pytest.fixture
def chromium(require_chromium: str, monkeypatch) -> Iterator:
    """A launched headless chromium for a browser test (tests/browser.py; log in with ``admin_login``).

    Playwright's sync API keeps an asyncio loop on this thread while the browser is open, so Django would refuse
    the test's own ORM calls as "from an async context"; they are plain synchronous calls (Playwright runs its
    loop in a greenlet), hence DJANGO_ALLOW_ASYNC_UNSAFE for this test only.
    """
    from tests.browser import chromium_launched

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium_launched(require_chromium) as browser:
        yield browser


@pytest.fixture(autouse=True, scope="session")
def _flush_past_the_audit_truncate_guard() -> Iterator[None]:
    """On PostgreSQL a trigger refuses TRUNCATE of the audit tables, but a transactional test's teardown
    flushes every table with one TRUNCATE. Lift the audit tables' triggers inside that flush's own
    transaction, as their owner could (and as audit_verify would then report in production)."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush
    guarded = ("audit_auditevent", "audit_auditchainhead")

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        sql = original(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        lifted = [t for t in guarded if t in tables]
        if not sql or not lifted:
            return sql
        return [
            *(f"ALTER TABLE {t} DISABLE TRIGGER USER" for t in lifted),
            *sql,
            *(f"ALTER TABLE {t} ENABLE TRIGGER USER" for t in lifted),
        ]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


@pytest.fixture(autouse=True, scope="session")
def _admin_discovered() -> None:
    """The URLconf discovers the admin (issue 15: not at set-up); tests that walk ``admin.site`` before their
    first request see every app's ModelAdmin, as a web process does once it has loaded its URLconf."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the root URLconf, which calls admin.autodiscover()


@pytest.fixture(autouse=True)
def _isolated_settings(settings, tmp_path):
    """Each test gets its own backup store and never reaches a shared emulator or real service."""
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "backups")},
        },
    }
    settings.CLEANUP_PROTECTED_FOLDERS = []
    settings.SITE_URL = "http://testserver"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.JOB_HEARTBEAT_TIMEOUT_S = 900
    # Nothing listens on port 9: a test that forgets the `looker` fixture fails fast instead of
    # starting the shared demo emulator.
    settings.LOOKER_BASE_URL = "http://127.0.0.1:9"
    settings.LOOKER_CLIENT_ID = "nobody"
    settings.LOOKER_CLIENT_SECRET = "nothing"
    from dataops_site.celery import app

    app.conf.task_always_eager = True
    yield


NOW = datetime.now(UTC)


def days_ago(n: int) -> str:
    return (NOW - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def looker_fixture() -> dict:
    """A small, fully known Looker estate (see tests/looker_estate.py)."""
    from tests.looker_estate import small_estate

    return small_estate()


@pytest.fixture
def looker(settings, looker_fixture) -> Iterator:
    """A fresh Looker emulator on loopback for this test, with the app pointed at it."""
    from sandbox.looker import EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET
    from sandbox.looker.testing import running_looker_emulator

    with running_looker_emulator(fixture=looker_fixture) as emulator:
        settings.LOOKER_BASE_URL = emulator.base_url
        settings.LOOKER_CLIENT_ID = EMULATOR_CLIENT_ID
        settings.LOOKER_CLIENT_SECRET = EMULATOR_CLIENT_SECRET
        settings.LOOKER_TIMEOUT = 2.0
        settings.LOOKER_MAX_ATTEMPTS = 3
        settings.LOOKER_BACKOFF_BASE = 0.01
        settings.LOOKER_BACKOFF_MAX = 0.2
        yield emulator


@pytest.fixture
def role_user(db):
    """Factory: ``role_user("Content Admin")`` -> a staff user holding that role, password "pw-<username>"."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from accounts.roles import roles_sync
    from accounts.services import role_user_ensure

    if not Group.objects.exists():  # a transactional test's flush empties the groups the migration made
        roles_sync(apps)

    def make(role: str, username: str | None = None):
        username = username or role.lower().replace(" ", "_")
        user, _ = role_user_ensure(
            username=username, role=role, email=f"{username}@example.com", password=f"pw-{username}"
        )
        return user

    return make


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """API throttle counters live in the cache keyed by user id; ids repeat across tests, counters must not."""
    from django.core.cache import cache

    cache.clear()
    yield
