"""The small exception family every connector maps its SDK's errors to.

Callers catch these, never an SDK's own exceptions, so a job can tell "try again later" from
"this will never work" without knowing which system it talked to.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class: something went wrong talking to an external system."""

    def __init__(self, message: str, *, status: int | None = None, system: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.system = system

    def with_suffix(self, suffix: str) -> ConnectorError:
        """The same error (same class, same attributes) with ``suffix`` added to its message."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.args = (f"{self}{suffix}", *self.args[1:])
        return clone


class ConnectorAuthError(ConnectorError):
    """Credentials refused (401/403): retrying will not help."""


class ConnectorNotFound(ConnectorError):
    """The object does not exist (404)."""


class ConnectorRequestError(ConnectorError):
    """The system refused the request as invalid (400, 409, 422...)."""


class ConnectorBadResponse(ConnectorError):
    """The reply could not be understood (unparseable body, missing fields)."""


class ConnectorTransientError(ConnectorError):
    """A failure that may pass: 5xx, timeouts, connection errors. Safe to retry."""


class ConnectorRateLimited(ConnectorTransientError):
    """429: slow down. ``retry_after`` is the server's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
