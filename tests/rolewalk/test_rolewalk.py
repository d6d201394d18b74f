"""The role walk: every role (and a staff user without one, a superuser, anonymous, an inactive user) over every
admin page and action and every endpoint outside the admin, each outcome compared with what ``accounts/roles.py``
grants. Pages are found by enumeration (the admin registry, each ModelAdmin's URLs and actions, the URL
patterns), so a new one is walked without editing this file; what a non-standard one needs is declared in
``tests/rolewalk/access.py`` and the walk fails for anything undeclared. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.roles import ROLE_PERMISSIONS, permissions_for_role
from tests.rolewalk.access import ACTION_NEEDS, Needs, Probe, admin_url_probes, api_probes
from tests.rolewalk.objects import build_all
from tests.tokens import api_token_for

pytestmark = pytest.mark.django_db

ROLES = list(ROLE_PERMISSIONS)
PRINCIPALS = [*ROLES, "staff without a role", "superuser", "anonymous", "inactive Platform Admin"]
STANDARD_PAGES = ("changelist", "add", "change", "delete", "history")
LOGIN = "/admin/login/"


class CountingClient(Client):
    """Counts requests, so the walk can show it walked (and a broken enumeration walking nothing fails)."""

    requests = 0

    def request(self, **request):
        CountingClient.requests += 1
        return super().request(**request)


@dataclass
class Principal:
    name: str
    client: Client
    perms: frozenset[str]
    superuser: bool = False
    logged_in: bool = True  # False: anonymous, or inactive (Django refuses the session and the token)
    token: str = ""

    def has(self, needs: Needs) -> bool:
        return self.superuser or all(any(p in self.perms for p in group) for group in needs)


def _all_permissions() -> list[str]:
    return [f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")]


def _principal(name: str, role_user) -> Principal:
    client = CountingClient()
    User = get_user_model()
    if name == "anonymous":
        return Principal(name, client, frozenset(), logged_in=False)
    if name == "superuser":
        user = User.objects.create_superuser("walk-root", "root@example.com", "x")
        perms, superuser = frozenset(), True
    elif name == "staff without a role":
        user = User.objects.create_user("walk-norole", "norole@example.com", "x", is_staff=True)
        perms, superuser = frozenset(), False
    elif name == "inactive Platform Admin":
        user = role_user("Platform Admin", "walk-inactive")
        User.objects.filter(pk=user.pk).update(is_active=False)
        user.refresh_from_db()
        perms, superuser = frozenset(), False
    else:
        user = role_user(name, f"walk-{name.lower().replace(' ', '-')}")
        perms, superuser = frozenset(permissions_for_role(name, _all_permissions())), False
    client.force_login(user)
    token = api_token_for(user, scope="write")  # what the role may do, not what a read-only token limits
    return Principal(name, client, perms, superuser=superuser, logged_in=user.is_active, token=token)


def _su_request():
    request = RequestFactory().get("/admin/")
    request.user = get_user_model()(is_superuser=True, is_staff=True, is_active=True)
    return request


def _admin_outcome(who: Principal, response, allowed: bool, ok: tuple[int, ...] = (200,)) -> str | None:
    """None when the response is what ``who`` should get; else what went wrong."""
    status = response.status_code
    if not who.logged_in:
        if status == 302 and response["Location"].startswith(LOGIN):
            return None
        return f"expected a redirect to the login page, got {status}"
    if allowed:
        return None if status in ok else f"expected {ok} (allowed), got {status}"
    return None if status in (403, 404) else f"expected 403 (refused), got {status}"


def _std_needs(label: str, page: str) -> Needs:
    app, model = label.split(".")
    if page in ("changelist", "change", "history"):
        return [(f"{app}.view_{model}", f"{app}.change_{model}")]
    return [(f"{app}.{page}_{model}",)]


def _std_offered(model_admin, page: str, obj) -> bool:
    request = _su_request()
    if page == "add":
        return model_admin.has_add_permission(request)
    if page == "delete":
        return model_admin.has_delete_permission(request, obj)
    return model_admin.has_view_or_change_permission(request, obj)


def _walk_admin(who: Principal, objects: dict, problems: list[str]) -> None:
    c = who.client
    # The site's own pages.
    index_allowed = who.logged_in
    if (msg := _admin_outcome(who, c.get("/admin/"), index_allowed)) is not None:
        problems.append(f"admin index: {msg}")
    if (msg := _admin_outcome(who, c.get("/admin/password_change/"), index_allowed)) is not None:
        problems.append(f"own password change page: {msg}")

    declared_urls = admin_url_probes()
    seen_custom: set[str] = set()
    apps: dict[str, bool] = {}
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        app, name = label.split(".")
        obj = objects[label]
        can_list = _std_offered(model_admin, "changelist", obj) and who.has(_std_needs(label, "changelist"))
        apps[app] = apps.get(app, False) or can_list
        for page in STANDARD_PAGES:
            url = reverse(f"admin:{app}_{name}_{page}", args=[] if page in ("changelist", "add") else [obj.pk])
            allowed = _std_offered(model_admin, page, obj) and who.has(_std_needs(label, page))
            if (msg := _admin_outcome(who, c.get(url), allowed)) is not None:
                problems.append(f"{label} {page} ({url}): {msg}")
        # Custom admin pages, declared in access.py.
        standard = {f"{app}_{name}_{p}" for p in STANDARD_PAGES}
        for pattern in model_admin.get_urls():
            if not isinstance(pattern, URLPattern) or not pattern.name or pattern.name in standard:
                continue
            seen_custom.add(pattern.name)
            for probe in declared_urls.get(pattern.name, []):
                url = reverse(f"admin:{pattern.name}", kwargs=probe.kwargs(objects))
                response = c.post(url, probe.data) if probe.method == "POST" else c.get(url)
                if (msg := _admin_outcome(who, response, who.has(probe.needs), probe.ok)) is not None:
                    problems.append(f"{pattern.name} {probe.label} {probe.method} {url}: {msg}")
        # Autocomplete: a field's choices are readable by those who may view the related model.
        for field_name in model_admin.autocomplete_fields:
            remote = model._meta.get_field(field_name).related_model._meta.label_lower
            url = f"/admin/autocomplete/?app_label={app}&model_name={name}&field_name={field_name}&term="
            if (msg := _admin_outcome(who, c.get(url), who.has(_std_needs(remote, "changelist")))) is not None:
                problems.append(f"autocomplete {label}.{field_name}: {msg}")
        _walk_actions(who, model, model_admin, obj, can_list, problems)
    undeclared = seen_custom - set(declared_urls)
    if undeclared:
        problems.append(f"custom admin URLs not declared in tests/rolewalk/access.py: {sorted(undeclared)}")
    for app, allowed in apps.items():
        response = c.get(f"/admin/{app}/")
        expected_404 = who.logged_in and not allowed
        if expected_404:
            if response.status_code != 404:
                problems.append(f"admin app page {app}: expected 404 (nothing to see), got {response.status_code}")
        elif (msg := _admin_outcome(who, response, allowed)) is not None:
            problems.append(f"admin app page {app}: {msg}")


def _action_needs(label: str, name: str, func) -> Needs | None:
    app, model = label.split(".")
    if (label, name) in ACTION_NEEDS:
        return ACTION_NEEDS[(label, name)]
    if name == "delete_selected":
        return [(f"{app}.delete_{model}",)]
    allowed = getattr(func, "allowed_permissions", None)
    if allowed and set(allowed) <= {"add", "change", "delete", "view"}:
        return [tuple(f"{app}.{p}_{model}" for p in allowed)]
    return None


def _walk_actions(who: Principal, model, model_admin, obj, can_list: bool, problems: list[str]) -> None:
    label = model._meta.label_lower
    app, name = label.split(".")
    changelist = reverse(f"admin:{app}_{name}_changelist")
    actions = model_admin.get_actions(_su_request())
    if not actions:
        return
    page = who.client.get(changelist).content.decode() if can_list else ""
    for action_name, (func, _, _) in actions.items():
        needs = _action_needs(label, action_name, func)
        if needs is None:
            problems.append(f"admin action {label}.{action_name} not declared in tests/rolewalk/access.py")
            continue
        allowed = can_list and who.has(needs)
        offered = f'<option value="{action_name}">' in page
        if offered != allowed:
            problems.append(f"action {label}.{action_name}: offered={offered}, expected {allowed}")
        calls: list = []
        if action_name != "delete_selected":
            # Record instead of running (a restore would call Looker): the point is who gets to run it.
            def recorder(modeladmin, request, queryset, calls=calls):
                calls.append(list(queryset))

            recorder.allowed_permissions = getattr(func, "allowed_permissions", ())
            original = getattr(type(model_admin), action_name)
            setattr(type(model_admin), action_name, recorder)
        try:
            response = who.client.post(changelist, {"action": action_name, "_selected_action": [obj.pk], "index": "0"})
        finally:
            if action_name != "delete_selected":
                setattr(type(model_admin), action_name, original)
        if action_name == "delete_selected":
            ran = response.status_code == 200 and b'name="post"' in response.content  # the confirmation page
        else:
            ran = bool(calls)
        if ran != allowed:
            problems.append(f"action {label}.{action_name} POST: ran={ran}, expected {allowed}")


def _api_urls() -> dict[str, URLPattern]:
    found: dict[str, URLPattern] = {}

    def walk(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern).startswith("admin/"):
                    continue
                walk(p.url_patterns, prefix + str(p.pattern))
            else:
                found[p.name or f"(unnamed) {prefix}{p.pattern}"] = p

    walk(get_resolver().url_patterns)
    return found


def _walk_api(who: Principal, objects: dict, problems: list[str]) -> None:
    probes = api_probes()
    urls = _api_urls()
    undeclared = sorted(set(urls) - set(probes))
    if undeclared:
        problems.append(f"endpoints not declared in tests/rolewalk/access.py: {undeclared}")
    headers = {"HTTP_AUTHORIZATION": f"Token {who.token}"} if who.token else {}
    client = CountingClient()  # by token, as API clients do
    for name in sorted(set(urls) & set(probes)):
        declared_methods = set()
        for probe in probes[name]:
            url = reverse(name, kwargs=probe.kwargs(objects))
            declared_methods.add(probe.method)
            if probe.auth == "session":  # a browser: the principal's logged-in session, form posts
                response = who.client.post(url, probe.data) if probe.method == "POST" else who.client.get(url)
            elif probe.method == "GET":
                response = client.get(url, **headers)
            else:
                response = client.generic(
                    probe.method, url, data=_json(probe.data), content_type="application/json", **headers
                )
            status = response.status_code
            where = f"{name} {probe.label} {probe.method} {url}"
            if probe.public:
                refused_credential = who.token and not who.logged_in and status == 401  # an inactive user's token
                if status not in probe.ok and not refused_credential:
                    problems.append(f"{where}: public, expected {probe.ok}, got {status}")
            elif not who.logged_in:
                expected = probe.anonymous if probe.auth == "session" else (401,)
                if status not in expected:
                    problems.append(f"{where}: expected {expected} (not authenticated), got {status}")
            elif who.has(probe.needs):
                if status not in probe.ok:
                    problems.append(f"{where}: expected {probe.ok} (allowed), got {status}")
            elif status != 403:
                problems.append(f"{where}: expected 403 (refused), got {status}")
        if any(p.public or p.auth == "session" for p in probes[name]):
            continue  # the undeclared-method rule is the API's (session pages answer like any Django view)
        # A method nobody declared never succeeds, for anyone.
        url = reverse(name, kwargs=probes[name][0].kwargs(objects))
        for method in {"POST", "PUT", "PATCH", "DELETE"} - declared_methods:
            status = client.generic(method, url, data="{}", content_type="application/json", **headers).status_code
            if 200 <= status < 300:
                problems.append(f"{name} {method} {url}: undeclared method succeeded ({status})")


def _json(data: dict) -> str:
    import json

    return json.dumps(data)


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_role_walk(principal, role_user):
    who = _principal(principal, role_user)
    objects = build_all()
    problems: list[str] = []
    CountingClient.requests = 0
    _walk_admin(who, objects, problems)
    _walk_api(who, objects, problems)
    assert not problems, f"{principal}:\n  " + "\n  ".join(problems)
    assert CountingClient.requests > 5 * len(admin.site._registry) + 10, CountingClient.requests


def test_the_role_groups_hold_exactly_what_roles_py_grants(role_user):
    role_user("Viewer")  # the groups exist (a transactional test's flush would have emptied them)
    available = _all_permissions()
    for role in ROLE_PERMISSIONS:
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(permissions_for_role(role, available)), role


def test_the_walk_would_catch_a_page_let_through(role_user, monkeypatch):
    """The walk is not a tautology: a Viewer let into the audit trail (as a broken admin would) is reported."""
    from audit.admin import AuditEventAdmin

    monkeypatch.setattr(AuditEventAdmin, "has_view_permission", lambda self, request, obj=None: True)
    who = _principal("Viewer", role_user)
    problems: list[str] = []
    _walk_admin(who, build_all(), problems)
    assert any(p.startswith("audit.auditevent changelist") for p in problems), problems


def test_the_walk_fails_for_an_undeclared_endpoint(role_user, monkeypatch):
    from tests.rolewalk import test_rolewalk

    real = test_rolewalk._api_urls
    monkeypatch.setattr(test_rolewalk, "_api_urls", lambda: {**real(), "api-new-thing": None})
    who = _principal("Viewer", role_user)
    problems: list[str] = []
    _walk_api(who, build_all(), problems)
    assert any("api-new-thing" in p for p in problems)


def test_a_read_scope_token_never_writes(role_user):
    """Every API write the walk declares, made by a Platform Admin (who may make each of them) with a read-scope
    token, is refused: only a write-scope token, which a second Platform Admin approved, writes."""
    user = role_user("Platform Admin", "walk-reader")
    headers = {"HTTP_AUTHORIZATION": f"Token {api_token_for(user, scope='read')}"}
    objects = build_all()
    client = Client()
    writes = [(n, p) for n, ps in api_probes().items() for p in ps if p.method != "GET" and p.auth == "token"]
    assert len(writes) >= 3
    for name, probe in writes:
        url = reverse(name, kwargs=probe.kwargs(objects))
        response = client.generic(probe.method, url, data=_json(probe.data), content_type="application/json",
                                  **headers)  # fmt: skip
        assert response.status_code == 403 and "read-only" in response.json()["detail"], (name, response.content)
    assert client.get(reverse("api-jobrun-list"), **headers).status_code == 200  # reading is what it is for


_ = Probe  # re-exported for readers of this module: what a declaration looks like


@pytest.fixture(autouse=True)
def _walk_unthrottled(monkeypatch):
    """The walk makes every write of every endpoint (and each undeclared method) as one user within a minute: more
    than API_THROTTLE_WRITES lets a script make, so a 429 would hide what the walk checks. Throttling has its own
    tests (tests/api/test_throttles_lockouts.py)."""
    from api.throttles import WriteRateThrottle

    monkeypatch.setattr(WriteRateThrottle, "THROTTLE_RATES", {**WriteRateThrottle.THROTTLE_RATES,
                                                              "writes": "100000/min"})  # fmt: skip
