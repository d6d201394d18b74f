"""The one registry of guarded actions: name -> what may approve it and what runs once it is approved.

Each app registers its actions in its ``AppConfig.ready()``; a request row stores only the action's name and
its exact inputs, never an import path, so what an approval runs is decided by code, not by data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ApprovalExecutionFailed(Exception):
    """The approved action ran and failed in a way a person can act on; the message says what happened."""


class ApprovalStillRunning(Exception):
    """The action is still running elsewhere (a live job run, a publish under way): not an outcome yet."""


@dataclass(frozen=True)
class ApprovalAction:
    """A guarded action.

    ``execute(request=...)`` runs it once approved and returns a one-line outcome; it must be idempotent
    (the sweeper re-runs an execution that a crash left ``running``) and raises ``ApprovalExecutionFailed``
    for a failure. ``on_decided(request=..., actor=..., reason=...)`` runs inside the decision's transaction
    (approve, reject or expire), e.g. to mark a blocked report rejected.
    """

    name: str
    title: str
    approver_permission: str
    approver_role: str
    execute: Callable[..., str]
    quorum: int = 1
    reason_required: bool = False
    on_decided: Callable[..., None] | None = None
    # The admin page of the object the request is about: ``link(request) -> (label, url) | None``.
    link: Callable[..., tuple[str, str] | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_ACTIONS: dict[str, ApprovalAction] = {}
_SWEEPERS: dict[str, Callable[[], dict[str, int]]] = {}


def approval_action_register(action: ApprovalAction) -> ApprovalAction:
    """Register a guarded action (from an ``AppConfig.ready()``); registering a name twice is a bug."""
    if action.quorum not in (1, 2):
        raise ValueError(f"{action.name}: quorum must be 1 or 2")
    existing = _ACTIONS.get(action.name)
    if existing is not None and existing.execute is not action.execute:
        raise ValueError(f"approval action {action.name!r} is registered twice")
    _ACTIONS[action.name] = action
    return action


def approval_action_get(name: str) -> ApprovalAction:
    """The registered action called ``name`` (``KeyError`` with the known names)."""
    try:
        return _ACTIONS[name]
    except KeyError:
        raise KeyError(f"no approval action {name!r}; registered: {', '.join(sorted(_ACTIONS))}") from None


def approval_actions_all() -> list[ApprovalAction]:
    return sorted(_ACTIONS.values(), key=lambda a: a.name)


def approval_sweeper_register(name: str, sweep: Callable[[], dict[str, int]]) -> None:
    """Register a reconciler the approvals sweeper also runs (e.g. publishes a crash left half done)."""
    _SWEEPERS[name] = sweep


def approval_sweepers() -> dict[str, Callable[[], dict[str, int]]]:
    return dict(_SWEEPERS)


_RESERVATIONS: dict[str, Callable[[], list[tuple[str, str]]]] = {}


def destination_reserve(writer: str, sheets: Callable[[], list[tuple[str, str]]]) -> None:
    """Reserve sheets for ``writer`` from settings (e.g. the sales dashboard's Report sheet), before it writes."""
    _RESERVATIONS[writer] = sheets


def destination_reservations() -> dict[tuple[str, str], str]:
    """(spreadsheet id, sheet) -> writer, for every reservation whose settings name a sheet."""
    out: dict[tuple[str, str], str] = {}
    for writer, sheets in sorted(_RESERVATIONS.items()):
        for spreadsheet_id, sheet in sheets():
            if spreadsheet_id and sheet:
                out.setdefault((spreadsheet_id, sheet), writer)
    return out
