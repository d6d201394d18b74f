"""The one registry of jobs: name -> spec (parameters, runner, permission).

A runner is ``run(*, job_run, params, dry_run) -> JobResult``; it raises ``JobFailed`` with a message a
person can act on, or any other exception for a bug.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.module_loading import import_string


class JobError(Exception):
    """A job could not be started: unknown job, bad parameters, another run in progress."""


class JobFailed(Exception):
    """A job ran and failed in a way the operator can act on; the message says how."""


@dataclass(frozen=True)
class JobResult:
    summary: str
    counters: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def _bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be at least 1, got {number}")
    return number


PARAM_TYPES: Mapping[str, Callable[[str], Any]] = {
    "int": _positive_int,
    "str": str,
    "bool": _bool,
    "date": lambda v: date.fromisoformat(str(v)).isoformat(),
    "list": lambda v: [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else list(v),
}


@dataclass(frozen=True)
class ParamSpec:
    type: str
    help: str
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class JobSpec:
    name: str
    title: str
    runner: str
    permission: str
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    supports_dry_run: bool = False
    # Optional ``estimate(*, params) -> object with .text()``: shown by the trigger form before running.
    estimator: str = ""

    def run(self, **kwargs: Any) -> JobResult:
        return import_string(self.runner)(**kwargs)

    def params_parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and type raw parameters (strings from a CLI, a form or JSON); raise JobError on bad input."""
        unknown = sorted(set(raw) - set(self.params))
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise JobError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}; known: {known}")
        parsed: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name not in raw or raw[name] in (None, ""):
                if spec.required:
                    raise JobError(f"{self.name}: parameter {name} is required ({spec.help})")
                if spec.default is not None:
                    parsed[name] = spec.default() if callable(spec.default) else spec.default
                continue
            try:
                parsed[name] = PARAM_TYPES[spec.type](raw[name])
            except (TypeError, ValueError) as exc:
                raise JobError(
                    f"{self.name}: parameter {name}={raw[name]!r} is not a valid {spec.type}: {exc}"
                ) from exc
        return parsed


_JOBS: dict[str, JobSpec] = {}


def job_register(spec: JobSpec) -> JobSpec:
    _JOBS[spec.name] = spec
    return spec


def job_get(name: str) -> JobSpec:
    _load()
    try:
        return _JOBS[name]
    except KeyError:
        raise JobError(f"unknown job {name!r}; known jobs: {', '.join(sorted(_JOBS))}") from None


def jobs_all() -> list[JobSpec]:
    _load()
    return sorted(_JOBS.values(), key=lambda s: s.name)


def _load() -> None:
    """Import each app's ``jobs`` module once, which registers its specs."""
    from django.conf import settings

    for module in settings.DATAOPS_JOB_MODULES:
        importlib.import_module(module)
