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
from django.db import transaction
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


def _models() -> list:
    """The models of the lists (LISTS names some by label, for apps loaded with Django)."""
    from django.apps import apps

    return [apps.get_model(m) if isinstance(m, str) else m for m in LISTS.values() if m is not None]


def _cases(operation) -> list:
    """EXAMPLES generated cases of the operation, the same on every run: Hypothesis derandomized (its seed comes
    from the test function, so a failure seen once is seen again), no example database, generation only."""
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hypothesis_settings

    cases: list = []

    @hypothesis_settings(max_examples=EXAMPLES, derandomize=True, database=None, phases=[Phase.generate],
                         deadline=None, suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=operation.as_strategy())
    def collect(case) -> None:
        cases.append(case)

    collect()
    return cases


def test_every_operation_answers_as_documented(
    db, role_user, wsgi_keeps_the_test_connection, external_services_fail_fast
):
    schema = schemathesis.openapi.from_dict(_live_schema())
    schema.app = get_wsgi_application()
    for model in _models():  # rows to list and look up (ids 1..3 are tried first)
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
            for case in _cases(operation):
                for role, auth in headers.items():
                    calls += 1
                    try:
                        case.call_and_validate(headers=auth, checks=CHECKS)
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure
                        failures.append(f"{role} {operation.label} {case.path_parameters or ''}: {exc}"[:1500])
    print(f"schemathesis: {len(operations)} operations, {calls} calls, {len(failures)} failures")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def external_services_fail_fast(settings):
    """Looker and BigQuery unreachable at once (port 9, one attempt): a preview or estimate answers its documented
    409/400 in milliseconds instead of retrying, and no emulator is started."""
    settings.LOOKER_BASE_URL = "http://127.0.0.1:9"
    settings.LOOKER_MAX_ATTEMPTS = 1
    settings.BIGQUERY_EMULATOR_AUTOSTART = False
    settings.BIGQUERY_EMULATOR_HOST = "http://127.0.0.1:9"
    settings.BIGQUERY_MAX_ATTEMPTS = 1


# Stateful runs: STATEFUL_EXAMPLES scenarios of at most STATEFUL_STEPS calls each, derandomized (the same calls on
# every run, so CI is repeatable).
STATEFUL_EXAMPLES = 120
STATEFUL_STEPS = 6


@pytest.mark.parametrize("role", ["Platform Admin", "Viewer"])
def test_stateful_links_answer_as_documented(
    db, role_user, role, wsgi_keeps_the_test_connection, external_services_fail_fast
):
    """Follow the schema's OpenAPI links (a list's first row to its detail and actions, a queued run to its
    detail, ...) through schemathesis' state machine: every answer as documented, and links actually followed."""
    from hypothesis import HealthCheck, Phase
    from hypothesis import settings as hypothesis_settings

    raw = _live_schema()
    links = sum(len(r.get("links", {})) for ops in raw["paths"].values() for op in ops.values()
                for r in op["responses"].values())  # fmt: skip
    assert links >= 40, links
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = get_wsgi_application()
    for model in _models():
        for _ in range(2):
            build(model)
    auth = {"Authorization": f"Token {api_token_for(role_user(role, 'sf-' + role.split()[0].lower()))}"}
    followed: list[str] = []

    class Workflow(schema.as_state_machine()):
        # Each scenario starts from the same rows: what a scenario wrote (a protected folder created, a lockout
        # cleared, an incident acknowledged) is rolled back, so a derandomized replay draws the same steps.
        def setup(self) -> None:
            self._savepoint = transaction.savepoint()

        def teardown(self) -> None:
            transaction.savepoint_rollback(self._savepoint)

        def get_call_kwargs(self, case):
            return {"headers": auth}

        def step(self, input):
            if input.transition is not None and input.is_applied:
                followed.append(input.transition.id)
            return super().step(input)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder)

    Workflow.run(
        settings=hypothesis_settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"stateful as {role}: {len(followed)} linked calls, {len(set(followed))} distinct links")
    assert len(set(followed)) >= 3, followed


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
