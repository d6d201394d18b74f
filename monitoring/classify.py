"""Classify a job failure from its exception (the connector family first), else from its error text."""

from __future__ import annotations

import re

from connectors.errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRateLimited,
    ConnectorRequestError,
    ConnectorTransientError,
)

from .constants import FailureClass

# Error text of runs that ended without an exception at hand (another process, Airflow, an old run), most
# specific first. Matched case-insensitively against the first lines of the error.
_TEXT_RULES: tuple[tuple[str, str], ...] = (
    (FailureClass.BUG, r"^traceback|^\w+(error|exception): |internal error"),
    (FailureClass.QUOTA, r"\b429\b|rate.?limit|quota|too expensive|sales_max_bytes|bytesbilledlimitexceeded"),
    (FailureClass.AUTHENTICATION, r"\b40[13]\b|credential|login refused|unauthori[sz]ed|permission denied|forbidden"),
    (FailureClass.NOT_FOUND, r"\b404\b|not found|does not exist|no such|was deleted|in the trash"),
    (
        FailureClass.TRANSIENT,
        r"\b5\d\d\b|timed out|timeout|unreachable|connection (failed|refused|reset)|try again|"
        r"another .* (run|in progress)|abandoned",
    ),
)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def failure_classify_exception(exc: BaseException | None) -> str | None:
    """The class of the first connector error in ``exc``'s cause chain; None when there is none."""
    for item in _chain(exc):
        if not isinstance(item, ConnectorError):
            continue
        if isinstance(item, ConnectorRateLimited) or type(item).__name__ == "QueryTooExpensive":
            return FailureClass.QUOTA
        if isinstance(item, ConnectorAuthError):
            return FailureClass.AUTHENTICATION
        if isinstance(item, ConnectorNotFound):
            return FailureClass.NOT_FOUND
        if isinstance(item, ConnectorTransientError):
            return FailureClass.TRANSIENT
        if isinstance(item, ConnectorBadResponse):
            return FailureClass.BAD_DATA
        if isinstance(item, ConnectorRequestError):
            return FailureClass.BUG  # we sent something the system refused: our request is wrong
        return FailureClass.TRANSIENT
    return None


def failure_classify_text(error: str) -> str:
    """The class a failure's error text points to; bad data (a job's own refusal) when nothing matches."""
    head = "\n".join((error or "").strip().splitlines()[:20]).lower()
    for klass, pattern in _TEXT_RULES:
        if re.search(pattern, head, flags=re.MULTILINE):
            return klass
    return FailureClass.BAD_DATA


def failure_classify(*, exc: BaseException | None, error: str) -> str:
    """The failure class of a run: transient, quota, authentication, not_found, bad_data or bug.

    A connector error anywhere in the exception's cause chain decides. Otherwise an exception that is not the
    job's own ``JobFailed`` is a bug; a ``JobFailed`` (the job refused: quality gate, bad input, a cap) is read
    from its text, which names the underlying cause when there is one (e.g. every sync target failed with 404).
    """
    from orchestration.registry import JobError, JobFailed

    by_exception = failure_classify_exception(exc)
    if by_exception is not None:
        return by_exception
    if exc is not None and not isinstance(exc, JobFailed | JobError):
        return FailureClass.BUG
    return failure_classify_text(error)
