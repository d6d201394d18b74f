"""The one module that talks to Airflow 3.x, through ``apache-airflow-client``.

Configured by ``AIRFLOW_API_URL`` (the api-server's base URL, without ``/api/v2``) and either
``AIRFLOW_TOKEN`` (a ready JWT) or ``AIRFLOW_USERNAME``/``AIRFLOW_PASSWORD`` (exchanged at ``/auth/token``).
Methods return frozen dataclasses and raise only the connector exception family.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import urllib3
from airflow_client.client import ApiClient, Configuration
from airflow_client.client.api.dag_api import DAGApi
from airflow_client.client.api.dag_run_api import DagRunApi
from airflow_client.client.api.task_instance_api import TaskInstanceApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models.dag_patch_body import DAGPatchBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody
from django.conf import settings

from .errors import (
    ConnectorAuthError,
    ConnectorBadResponse,
    ConnectorError,
    ConnectorNotFound,
    ConnectorRequestError,
    ConnectorTransientError,
)
from .http import request_timed

SYSTEM = "airflow"
TERMINAL_DAG_RUN_STATES = frozenset({"success", "failed"})


class AirflowAlreadyTriggered(ConnectorRequestError):
    """409: a DAG run with this run id exists already (a retried trigger): the first one counts."""


@dataclass(frozen=True)
class AirflowTaskTry:
    """One try of one task instance."""

    try_number: int
    state: str
    duration_s: float | None
    start_date: datetime | None
    end_date: datetime | None


@dataclass(frozen=True)
class AirflowTaskInstance:
    """A task instance of a DAG run with its tries (newest last)."""

    task_id: str
    state: str
    try_number: int
    max_tries: int
    duration_s: float | None
    tries: tuple[AirflowTaskTry, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AirflowDagRun:
    """A DAG run as Airflow reports it."""

    dag_id: str
    run_id: str
    state: str
    start_date: datetime | None = None
    end_date: datetime | None = None
    conf: dict[str, Any] = field(default_factory=dict)

    @property
    def is_finished(self) -> bool:
        return self.state in TERMINAL_DAG_RUN_STATES


@dataclass(frozen=True)
class AirflowDag:
    """A DAG's registration in Airflow: paused or not, schedule, tags, and its parse state."""

    dag_id: str
    is_paused: bool
    schedule: str
    tags: tuple[str, ...]
    owners: tuple[str, ...]
    has_import_errors: bool


def airflow_configured() -> bool:
    """True when the control plane should trigger jobs through Airflow instead of Celery."""
    return bool(settings.AIRFLOW_API_URL)


def _state(value: Any) -> str:
    """SDK enums and plain strings alike, as the lower-case state name ('' for none)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value)).lower()


_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


class AirflowClient:
    """A thin, typed wrapper over the REST client; one instance per use is cheap (the token is cached)."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.base_url = (base_url if base_url is not None else settings.AIRFLOW_API_URL).rstrip("/")
        self.username = username if username is not None else settings.AIRFLOW_USERNAME
        self.password = password if password is not None else settings.AIRFLOW_PASSWORD
        self.token = token if token is not None else settings.AIRFLOW_TOKEN
        self.timeout = timeout if timeout is not None else settings.AIRFLOW_TIMEOUT
        if not self.base_url:
            raise ConnectorRequestError("AIRFLOW_API_URL is not set", system=SYSTEM)

    # --- plumbing -------------------------------------------------------------------------------------------

    def _access_token(self, *, renew: bool = False) -> str:
        """The configured token, or one from ``POST /auth/token`` (cached per URL and user until near expiry)."""
        if self.token:
            return self.token
        key = (self.base_url, self.username, hashlib.sha256(self.password.encode()).hexdigest())
        with _TOKENS_LOCK:
            cached = _TOKENS.get(key)
            if cached and not renew and cached[1] > time.monotonic():
                return cached[0]
        body = json.dumps({"username": self.username, "password": self.password}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's AIRFLOW_API_URL
            f"{self.base_url}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with request_timed(system=SYSTEM, method="POST") as timed:
                try:
                    with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                        timed["status"] = reply.status
                        token = json.loads(reply.read())["access_token"]
                except urllib.error.HTTPError as exc:
                    timed["status"] = exc.code
                    raise
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 401, 403, 422):
                raise ConnectorAuthError(
                    f"Airflow at {self.base_url} refused the credentials of user {self.username!r} "
                    f"(HTTP {exc.code}): check AIRFLOW_USERNAME and AIRFLOW_PASSWORD",
                    status=exc.code,
                    system=SYSTEM,
                ) from exc
            raise ConnectorTransientError(
                f"Airflow at {self.base_url} failed to issue a token (HTTP {exc.code})", status=exc.code, system=SYSTEM
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectorTransientError(
                f"Airflow API at {self.base_url} is unreachable: {reason}", system=SYSTEM
            ) from exc
        except (KeyError, ValueError) as exc:
            raise ConnectorBadResponse(
                f"Airflow's /auth/token reply has no access_token: {exc}", system=SYSTEM
            ) from exc
        with _TOKENS_LOCK:
            # Tokens live 24 h by default; renew well before that.
            _TOKENS[key] = (token, time.monotonic() + settings.AIRFLOW_TOKEN_TTL_S)
        return token

    def _api(self, *, renew: bool = False) -> ApiClient:
        configuration = Configuration(host=self.base_url, access_token=self._access_token(renew=renew))
        configuration.retries = urllib3.util.Retry(total=0, connect=0, read=0, redirect=0)
        api = ApiClient(configuration)
        api.rest_client.request = _timed(api.rest_client.request)  # counts and times requests for monitoring
        return api

    def _call(self, what: str, fn: Any) -> Any:
        """Run ``fn(api_client)``; renew a cached token once on 401/403, and map every failure to our exceptions."""
        for attempt in (1, 2):
            try:
                with self._api(renew=attempt == 2) as api:
                    return fn(api)
            except ApiException as exc:
                status = exc.status or 0
                if status in (401, 403) and attempt == 1 and not self.token:
                    continue
                detail = _detail(exc)
                if status in (401, 403):
                    raise ConnectorAuthError(
                        f"Airflow refused {what} (HTTP {status}): {detail}", status=status, system=SYSTEM
                    ) from exc
                if status == 404:
                    raise ConnectorNotFound(
                        f"Airflow: {what}: not found ({detail})", status=404, system=SYSTEM
                    ) from exc
                if status == 409:
                    raise AirflowAlreadyTriggered(f"Airflow: {what}: {detail}", status=409, system=SYSTEM) from exc
                if status >= 500 or status == 429:
                    raise ConnectorTransientError(
                        f"Airflow failed {what} (HTTP {status}): {detail}", status=status, system=SYSTEM
                    ) from exc
                raise ConnectorRequestError(
                    f"Airflow refused {what} (HTTP {status}): {detail}", status=status, system=SYSTEM
                ) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise ConnectorTransientError(
                    f"Airflow API at {self.base_url} is unreachable ({what}): {exc}", system=SYSTEM
                ) from exc
        raise ConnectorError(f"Airflow: {what} failed", system=SYSTEM)  # pragma: no cover - loop always returns

    # --- DAGs -----------------------------------------------------------------------------------------------

    def dags_list(self, *, tags: list[str] | None = None, limit: int = 100) -> list[AirflowDag]:
        """The DAGs Airflow knows (optionally only those carrying all ``tags``)."""

        def call(api: ApiClient) -> Any:
            return DAGApi(api).get_dags(limit=limit, tags=tags, _request_timeout=self.timeout)

        reply = self._call("listing DAGs", call)
        return [
            AirflowDag(
                dag_id=d.dag_id,
                is_paused=bool(d.is_paused),
                schedule=str(getattr(d, "timetable_summary", "") or ""),
                tags=tuple(sorted(t.name for t in (d.tags or []))),
                owners=tuple(d.owners or []),
                has_import_errors=bool(getattr(d, "has_import_errors", False)),
            )
            for d in reply.dags
        ]

    def dag_pause_set(self, *, dag_id: str, paused: bool) -> None:
        """Pause or unpause one DAG."""

        def call(api: ApiClient) -> Any:
            return DAGApi(api).patch_dag(
                dag_id, DAGPatchBody(is_paused=paused), update_mask=["is_paused"], _request_timeout=self.timeout
            )

        self._call(f"{'pausing' if paused else 'unpausing'} DAG {dag_id!r}", call)

    # --- DAG runs -------------------------------------------------------------------------------------------

    def dag_run_trigger(self, *, dag_id: str, dag_run_id: str, conf: dict[str, Any]) -> AirflowDagRun:
        """Trigger a run with a caller-chosen run id; raises AirflowAlreadyTriggered when that id exists (409)."""

        def call(api: ApiClient) -> Any:
            body = TriggerDAGRunPostBody(conf=conf, logical_date=None, dag_run_id=dag_run_id)
            return DagRunApi(api).trigger_dag_run(dag_id, body, _request_timeout=self.timeout)

        reply = self._call(f"triggering DAG {dag_id!r}", call)
        return _dag_run(reply)

    def dag_run_get(self, *, dag_id: str, dag_run_id: str) -> AirflowDagRun:
        """One DAG run's state."""

        def call(api: ApiClient) -> Any:
            return DagRunApi(api).get_dag_run(dag_id, dag_run_id, _request_timeout=self.timeout)

        return _dag_run(self._call(f"reading DAG run {dag_id}/{dag_run_id}", call))

    def dag_runs_recent(self, *, dag_id: str, limit: int = 10) -> list[AirflowDagRun]:
        """The newest runs of one DAG, newest first."""

        def call(api: ApiClient) -> Any:
            return DagRunApi(api).get_dag_runs(
                dag_id, limit=limit, order_by=["-run_after"], _request_timeout=self.timeout
            )

        return [_dag_run(r) for r in self._call(f"listing runs of DAG {dag_id!r}", call).dag_runs]

    def task_instances(self, *, dag_id: str, dag_run_id: str) -> list[AirflowTaskInstance]:
        """The task instances of a DAG run, each with every try so far."""

        def call(api: ApiClient) -> Any:
            tis = TaskInstanceApi(api)
            result = []
            for ti in tis.get_task_instances(dag_id, dag_run_id, _request_timeout=self.timeout).task_instances:
                tries = tis.get_task_instance_tries(dag_id, dag_run_id, ti.task_id, _request_timeout=self.timeout)
                result.append((ti, tries.task_instances))
            return result

        out = []
        for ti, tries in self._call(f"reading task instances of {dag_id}/{dag_run_id}", call):
            out.append(
                AirflowTaskInstance(
                    task_id=ti.task_id,
                    state=_state(ti.state),
                    try_number=int(ti.try_number or 0),
                    max_tries=int(ti.max_tries or 0),
                    duration_s=ti.duration,
                    tries=tuple(
                        sorted(
                            (
                                AirflowTaskTry(
                                    try_number=int(t.try_number or 0),
                                    state=_state(t.state),
                                    duration_s=t.duration,
                                    start_date=t.start_date,
                                    end_date=t.end_date,
                                )
                                for t in tries
                            ),
                            key=lambda t: t.try_number,
                        )
                    ),
                )
            )
        return out


def task_log_url(*, base_url: str, dag_id: str, dag_run_id: str, task_id: str, try_number: int | None = None) -> str:
    """The Airflow UI page of a task instance (its logs), optionally at one try."""
    url = f"{base_url.rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(dag_run_id, safe='')}/tasks/{quote(task_id)}"
    return f"{url}?try_number={try_number}" if try_number else url


def _timed(send: Any) -> Any:
    """The REST client's ``request`` reporting each call to the monitoring hook (status None without a reply)."""

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        with request_timed(system=SYSTEM, method=method) as timed:
            response = send(method, url, *args, **kwargs)
            timed["status"] = getattr(response, "status", None)
        return response

    return request


def _detail(exc: ApiException) -> str:
    """The server's own 'detail' message when it gave one, else the reason phrase."""
    try:
        body = json.loads(exc.body or "{}")
        detail = body.get("detail")
        if detail:
            return detail if isinstance(detail, str) else json.dumps(detail)[:300]
    except (TypeError, ValueError, AttributeError):
        pass
    return str(exc.reason or exc.status)


def _dag_run(reply: Any) -> AirflowDagRun:
    try:
        return AirflowDagRun(
            dag_id=reply.dag_id,
            run_id=reply.dag_run_id,
            state=_state(reply.state),
            start_date=reply.start_date,
            end_date=reply.end_date,
            conf=dict(reply.conf or {}),
        )
    except AttributeError as exc:
        raise ConnectorBadResponse(f"unexpected DAG run reply from Airflow: {exc}", system=SYSTEM) from exc
