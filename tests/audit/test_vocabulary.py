"""One audit vocabulary (audit/events.py): every call declares its action and payload keys; payloads stay small."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from audit.events import EVENTS
from audit.models import AuditEvent
from audit.selectors import audit_chain_verify
from audit.services import AuditVocabularyError, audit_log, audit_payload_bound

ROOT = Path(settings.BASE_DIR)
SOURCE_DIRS = [p for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists() and p.name not in {"tests"}]


def _audit_calls() -> list[tuple[str, int, ast.Call, ast.Module]]:
    calls = []
    for directory in SOURCE_DIRS:
        for path in directory.rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", "")) == "audit_log"
                ):
                    calls.append((str(path.relative_to(ROOT)), node.lineno, node, tree))
    return calls


def _action_patterns(node: ast.expr, module: ast.Module) -> list[re.Pattern]:
    """The actions a call can write: a literal, a conditional of literals, an f-string (as a pattern), or a
    local name (every literal assigned to it in the module)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [re.compile(re.escape(node.value))]
    if isinstance(node, ast.IfExp):
        return _action_patterns(node.body, module) + _action_patterns(node.orelse, module)
    if isinstance(node, ast.Name):
        assigned = []
        for a in ast.walk(module):
            if not isinstance(a, ast.Assign):
                continue
            for target in a.targets:
                if getattr(target, "id", None) == node.id:
                    assigned.append(a.value)
                elif isinstance(target, ast.Tuple) and isinstance(a.value, ast.Tuple):  # kind, action = X, "a.b"
                    pairs = zip(target.elts, a.value.elts, strict=True)
                    assigned += [v for t, v in pairs if getattr(t, "id", None) == node.id]
        assert assigned, f"audit action variable {node.id} is never assigned a literal"
        return [p for value in assigned for p in _action_patterns(value, module)]
    if isinstance(node, ast.JoinedStr):
        parts = [re.escape(v.value) if isinstance(v, ast.Constant) else r"[a-z_]+" for v in node.values]
        return [re.compile("".join(parts))]
    raise AssertionError(f"audit action must be a literal, a conditional of literals or an f-string, not {node!r}")


def test_every_audit_log_call_uses_declared_actions_and_keys():
    calls = _audit_calls()
    assert len(calls) > 30  # the scan found the project's calls
    problems = []
    for where, line, call, module in calls:
        kwargs = {k.arg: k.value for k in call.keywords}
        if "action" not in kwargs:  # audit_log's own definition site or a wrapper passing **kwargs
            continue
        for pattern in _action_patterns(kwargs["action"], module):
            matches = [e for name, e in EVENTS.items() if pattern.fullmatch(name)]
            if not matches:
                problems.append(f"{where}:{line}: action {pattern.pattern} is not declared in audit/events.py")
                continue
            data = kwargs.get("data")
            if isinstance(data, ast.Dict):
                keys = {k.value for k in data.keys if isinstance(k, ast.Constant)}
                # An f-string may match several events: at least one must declare every key (audit_log checks
                # the one actually written at run time).
                if not any(keys <= set(event.fields) for event in matches):
                    problems.append(f"{where}:{line}: {pattern.pattern} does not declare all of {sorted(keys)}")
    assert not problems, "\n".join(problems)


def test_the_f_string_actions_are_each_declared():
    for name in ("job.succeeded", "job.failed", "sales.query_estimated", "sales.query_refused",
                 "sales.query_awaiting_approval",
                 "sales.query_succeeded", "sales.query_failed", "cleanup.dashboardpin_created",
                 "cleanup.protectedfolder_deleted"):  # fmt: skip
        assert name in EVENTS
    assert all(e.description for e in EVENTS.values())


@pytest.mark.django_db
def test_undeclared_action_and_key_are_refused():
    with pytest.raises(AuditVocabularyError, match="not declared"):
        audit_log(action="accounts.user_made_god")
    with pytest.raises(AuditVocabularyError, match="does not declare payload key"):
        audit_log(action="job.started", data={"attempt": 1, "anything_goes": "no"})
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_a_2mb_value_becomes_a_small_row_with_a_marker():
    huge = "x" * (2 * 1024 * 1024)
    event = audit_log(action="job.requested", data={"job": "looker_cleanup", "params": {"inactive_days": huge}})
    stored = AuditEvent.objects.get(pk=event.pk)
    size = len(json.dumps(stored.data))
    assert size <= settings.AUDIT_PAYLOAD_MAX_BYTES
    value = stored.data["params"]["inactive_days"]
    assert value.startswith("x" * 100) and "[truncated: 2097152 chars, sha256" in value
    assert audit_chain_verify(read_anchors=False).ok


def test_payload_cap_holds_for_many_medium_values(settings):
    settings.AUDIT_PAYLOAD_MAX_BYTES = 4096
    data = {"changes": {f"field{i}": ["a" * 900, "b" * 900] for i in range(50)}, "username": "u" * 5000}
    bounded = audit_payload_bound(data)
    assert len(json.dumps(bounded)) <= 4096
    assert "truncated" in json.dumps(bounded)
    assert audit_payload_bound({"n": 1, "s": "short"}) == {"n": 1, "s": "short"}  # small payloads untouched
    long_list = audit_payload_bound({"looker_ids": list(range(5000))})["looker_ids"]
    assert len(long_list) == settings.AUDIT_VALUE_MAX_ITEMS + 1 and "5000 items" in long_list[-1]
