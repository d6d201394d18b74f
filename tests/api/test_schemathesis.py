"""Schemathesis against the live schema, through the Django WSGI app: every operation, as a Platform Admin and as a
Viewer, with generated parameters and bodies; no 5xx, and every answer's status, content type, headers and body
as the schema documents them. Bounded: EXAMPLES generated cases per operation, one database for all of them, so the
file runs in a couple of minutes."""

from __future__ import annotations

import json
import warnings

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis.errors import NonInteractiveExampleWarning
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.test_resources import LISTS
from tests.rolewalk.objects import build
from tests.tokens import api_token_for

EXAMPLES = 3
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _live_schema() -> dict:
    """What /api/schema/ serves (generated in-process: fetching it needs a login, and a database)."""
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Calls through the bare WSGI app fire request_started/finished, whose close_old_connections closes the test's
    database connection mid-transaction on PostgreSQL (SQLite's in-memory database is never closed). Django's test
    Client disconnects it the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_every_operation_answers_as_documented(db, role_user, wsgi_keeps_the_test_connection):
    schema = schemathesis.openapi.from_dict(_live_schema())
    schema.app = get_wsgi_application()
    for model in filter(None, LISTS.values()):  # rows to list and look up (ids 1..3 are tried first)
        for _ in range(3):
            build(model)
    users = {"Platform Admin": role_user("Platform Admin", "st-admin"), "Viewer": role_user("Viewer", "st-viewer")}
    headers = {role: {"Authorization": f"Token {api_token_for(user)}"} for role, user in users.items()}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for operation in operations:
            strategy = operation.as_strategy()
            for _ in range(EXAMPLES):
                case = strategy.example()
                for role, auth in headers.items():
                    calls += 1
                    try:
                        case.call_and_validate(headers=auth, checks=CHECKS)
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure
                        failures.append(f"{role} {operation.label} {case.path_parameters or ''}: {exc}"[:1500])
    print(f"schemathesis: {len(operations)} operations, {calls} calls, {len(failures)} failures")
    assert not failures, "\n\n".join(failures)


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
