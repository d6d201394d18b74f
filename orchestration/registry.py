"""The one registry of jobs: name -> spec (parameters, runner, permission).

A runner is ``run(*, job_run, params, dry_run) -> JobResult``; it raises ``JobFailed`` with a message a
person can act on, or any other exception for a bug.
"""

from __future__ import annotations

import importlib
import re
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


class ParamOutOfBounds(ValueError):
    """A well-typed value outside its declared range, length or choices."""


RAW_MAX_CHARS = 10_000  # no raw parameter value is even looked at beyond this (a 2 MB value is refused at once)


def _preview(value: Any) -> str:
    """A value as a person reads it in an error: short, whatever was sent."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}...' ({len(str(value))} characters)"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a whole number")
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d{1,30}", text):
        raise ValueError("expected a whole number")
    return int(text)


def _date(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError("expected a date YYYY-MM-DD")
    return date.fromisoformat(value.strip()).isoformat()


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    if isinstance(value, list | tuple):
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            raise ValueError("expected a list of words")
        return [str(v).strip() for v in value if str(v).strip()]
    raise ValueError("expected a comma-separated list")


def _str(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("expected text")
    return str(value).strip()


PARAM_TYPES: Mapping[str, Callable[[Any], Any]] = {
    "int": _int,
    "str": _str,
    "bool": _bool,
    "date": _date,
    "list": _list,
}


def _resolve(bound: Any) -> Any:
    value = bound() if callable(bound) else bound
    return value.isoformat() if isinstance(value, date) else value


@dataclass(frozen=True)
class ParamSpec:
    """One job parameter: its type and the bounds every caller (admin, API, CLI, Airflow conf) is held to.

    ``int``: ``min`` and ``max`` (required). ``date``: ``min`` and ``max`` (dates, ISO strings or callables that
    return one: "today + a year"). ``str``: ``max_length`` (required), optional ``choices`` and ``pattern``.
    ``list`` (of words): ``max_length`` items (required) of at most ``item_max_length`` characters (required),
    optional ``choices``/``pattern`` per item. ``bool``: nothing more. A declaration without its bounds is
    refused when the job module is imported, so a new parameter cannot be unbounded.
    """

    type: str
    help: str
    default: Any = None
    required: bool = False
    min: Any = None
    max: Any = None
    max_length: int | None = None
    item_max_length: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str = ""

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"unknown parameter type {self.type!r}; types: {', '.join(PARAM_TYPES)}")
        if self.type in ("int", "date") and (self.min is None or self.max is None):
            raise ValueError(f"an {self.type} parameter needs min and max ({self.help})")
        if self.type in ("str", "list") and not self.max_length:
            raise ValueError(f"a {self.type} parameter needs max_length ({self.help})")
        if self.type == "list" and not self.item_max_length:
            raise ValueError(f"a list parameter needs item_max_length ({self.help})")

    def parse(self, raw: Any) -> Any:
        """The typed, checked value; ValueError (ParamOutOfBounds for a bound) with a short reason, never the value."""
        if isinstance(raw, str) and len(raw) > RAW_MAX_CHARS:
            raise ParamOutOfBounds(f"is {len(raw)} characters long; the limit is {self.max_length or RAW_MAX_CHARS}")
        if isinstance(raw, list | tuple) and len(raw) > RAW_MAX_CHARS:
            raise ParamOutOfBounds(f"has {len(raw)} items; the limit is {self.max_length}")
        value = PARAM_TYPES[self.type](raw)  # ValueError: not of its type
        low, high = _resolve(self.min), _resolve(self.max)
        if self.type in ("int", "date"):
            if value < low:
                raise ParamOutOfBounds(f"must be at least {low}")
            if value > high:
                raise ParamOutOfBounds(f"must be at most {high}")
        if self.type == "str":
            self._check_word(value, self.max_length)
        if self.type == "list":
            if len(value) > self.max_length:
                raise ParamOutOfBounds(f"has {len(value)} items; the limit is {self.max_length}")
            for item in value:
                self._check_word(item, self.item_max_length)
        return value

    def _check_word(self, value: str, limit: int | None) -> None:
        if limit is not None and len(value) > limit:
            raise ParamOutOfBounds(f"is {len(value)} characters long; the limit is {limit}")
        if self.choices and value not in self.choices:
            raise ParamOutOfBounds(f"must be one of {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise ParamOutOfBounds(f"may only contain {self.pattern}")

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def as_json_schema(self) -> dict[str, Any]:
        """This parameter as JSON Schema (for a form or Airflow's ``params``); bounds resolved now."""
        schema: dict[str, Any] = {"description": self.help}
        word: dict[str, Any] = {"type": "string"}
        if self.choices:
            word["enum"] = list(self.choices)
        if self.pattern:
            word["pattern"] = f"^(?:{self.pattern})$"
        if self.type == "int":
            schema.update(type="integer", minimum=_resolve(self.min), maximum=_resolve(self.max))
        elif self.type == "bool":
            schema["type"] = "boolean"
        elif self.type == "date":
            schema.update(
                type="string", format="date", formatMinimum=_resolve(self.min), formatMaximum=_resolve(self.max)
            )
        elif self.type == "str":
            schema.update(word, maxLength=self.max_length)
        elif self.type == "list":
            schema.update(type="array", maxItems=self.max_length, items={**word, "maxLength": self.item_max_length})
        default = self.default_value()
        if default is not None:
            schema["default"] = _resolve(default)
        return schema


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
    # Optional check across parameters (``end`` after ``start``...): raises ValueError with a short reason.
    params_check: Callable[[dict[str, Any]], None] | None = None
    # Optional ``check(*, params) -> {parameter or "": message}`` against the outside world (the data a warehouse
    # holds): the admin form and the API run it before anything is created (issue 11).
    params_context_check: str = ""
    # Optional ``choices() -> {parameter: [choices]}`` known only at run time (queries kept in the admin); no network.
    param_choices: str = ""

    def run(self, **kwargs: Any) -> JobResult:
        return import_string(self.runner)(**kwargs)

    def params_parse(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and type raw parameters (strings from a CLI, a form or JSON); raise JobError on bad input.

        Every path that creates a JobRun (admin, API, CLI, Airflow conf) comes through here first, so a value
        out of its type, range or length never reaches a run, its audit event or the database.
        """
        if not isinstance(raw, Mapping):
            raise JobError(f"{self.name}: parameters must be a mapping of name to value")
        unknown = sorted(str(k)[:40] for k in raw if k not in self.params)
        if unknown:
            known = ", ".join(sorted(self.params)) or "none"
            raise JobError(f"{self.name}: unknown parameter(s) {', '.join(unknown[:10])}; known: {known}")
        parsed: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name not in raw or raw[name] in (None, "", []):
                if spec.required:
                    raise JobError(f"{self.name}: parameter {name} is required ({spec.help})")
                default = spec.default_value()
                if default is not None:
                    parsed[name] = default
                continue
            try:
                parsed[name] = spec.parse(raw[name])
            except ParamOutOfBounds as exc:
                raise JobError(f"{self.name}: parameter {name}={_preview(raw[name])} is out of bounds: {exc}") from None
            except (TypeError, ValueError, OverflowError) as exc:
                raise JobError(
                    f"{self.name}: parameter {name}={_preview(raw[name])} is not a valid {spec.type}: {exc}"
                ) from None
        if self.params_check is not None:
            try:
                self.params_check(parsed)
            except ValueError as exc:
                raise JobError(f"{self.name}: {exc}") from None
        return parsed

    def params_schema(self) -> dict[str, Any]:
        """The parameters as one JSON Schema object (the future admin form and Airflow ``params`` read this)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.title,
            "type": "object",
            "properties": {name: p.as_json_schema() for name, p in self.params.items()},
            "required": [name for name, p in self.params.items() if p.required],
            "additionalProperties": False,
        }


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
