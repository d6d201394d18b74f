"""Reusable base for the local HTTP emulators (Looker today; BigQuery and Sheets later).

An emulator is a werkzeug WSGI app served by a threaded werkzeug server on loopback. The base
class gives every emulator the same test hooks:

* per-endpoint request counters, keyed by the werkzeug Rule pattern
  (``"PATCH /api/4.0/dashboards/<dashboard_id>"``) plus ``"total"``;
* fault injection (:class:`FaultRule`): fail, throttle (429 + Retry-After) or delay matching
  requests, optionally only after the first N matches;
* a global latency applied to every request;
* control endpoints under ``/__emulator/`` (health, counters, faults, latency) that are never
  counted, faulted or delayed, so another process can drive the emulator over HTTP.

Subclasses pass a ``werkzeug.routing.Map`` whose Rule endpoints are callables
``handler(request, **url_values) -> Response`` and may override :meth:`EmulatorServer.error_body`
to shape error replies like the real API, and :meth:`EmulatorServer.before_dispatch` for
authentication.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from types import TracebackType
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__emulator/"
TOTAL_KEY = "total"

Handler = Callable[..., Response]


class EmulatorHTTPError(Exception):
    """Raised by route handlers to answer with an error status and a message.

    ``extra`` is merged into the JSON error body; ``headers`` are added to the reply.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON reply with ``application/json; charset=utf-8``."""
    return Response(
        json.dumps(data, separators=(",", ":")),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json; charset=utf-8",
    )


def request_json(request: Request) -> Any:
    """The request body parsed as JSON; a 400 :class:`EmulatorHTTPError` if it is not JSON."""
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmulatorHTTPError(400, f"Request body is not valid JSON: {exc}") from exc


# --------------------------------------------------------------------------------------------
# `fields` projection, shared by APIs that accept "a,b,c(d,e)" field lists (Looker, Google).
# --------------------------------------------------------------------------------------------

FieldTree = dict[str, "FieldTree | None"]


def parse_fields(spec: str | None) -> FieldTree | None:
    """Parse a field list like ``"id,title,folder(id,name)"`` into a tree.

    Returns ``None`` for an empty spec (meaning "all fields"). A key maps to ``None`` when the
    whole value is wanted, or to a sub-tree for nested selections. Raises ``ValueError`` on
    unbalanced parentheses.
    """
    if spec is None or not spec.strip():
        return None
    pos = 0

    def parse_level(depth: int) -> FieldTree:
        nonlocal pos
        tree: FieldTree = {}
        name = ""
        while pos < len(spec):
            ch = spec[pos]
            pos += 1
            if ch == ",":
                if name.strip():
                    tree.setdefault(name.strip(), None)
                name = ""
            elif ch == "(":
                sub = parse_level(depth + 1)
                key = name.strip()
                if not key:
                    raise ValueError(f"field selection without a name at {pos}")
                tree[key] = sub
                name = ""
            elif ch == ")":
                if depth == 0:
                    raise ValueError(f"unbalanced ')' at {pos}")
                if name.strip():
                    tree.setdefault(name.strip(), None)
                return tree
            else:
                name += ch
        if depth > 0:
            raise ValueError("unbalanced '(' in fields")
        if name.strip():
            tree.setdefault(name.strip(), None)
        return tree

    return parse_level(0)


def apply_fields(value: Any, tree: FieldTree | None) -> Any:
    """Keep only the selected keys of ``value`` (a dict, or a list of dicts), recursively."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: apply_fields(value[key], sub) for key, sub in tree.items() if key in value}


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


@dataclass
class FaultRule:
    """One injected fault.

    A request matches when ``method`` (or any method, when None) and ``path_pattern`` (an
    fnmatch pattern on the concrete path, or any path, when None) match. The first ``after``
    matching requests pass untouched; the rule then fires ``times`` times (forever when None).
    Firing sleeps ``delay_s`` first; then, when ``status`` is set, answers with that status
    (``retry_after`` adds a Retry-After header, ``body`` replaces the default JSON error body),
    otherwise lets the request through late (useful to provoke client timeouts).
    """

    method: str | None = None
    path_pattern: str | None = None
    status: int | None = 500
    times: int | None = 1
    after: int = 0
    delay_s: float = 0.0
    retry_after: float | None = None
    body: Any = None
    # Runtime bookkeeping, not configuration.
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.method is not None:
            self.method = self.method.upper()
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.after < 0:
            raise ValueError("after must be >= 0")
        if self.delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from a JSON object with the constructor's field names."""
        allowed = {f.name for f in fields(cls)} - {"seen", "fired"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The rule as a JSON-able dict, bookkeeping included."""
        return asdict(self)

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and concrete path is one this rule watches."""
        if self.method is not None and self.method != method.upper():
            return False
        return self.path_pattern is None or fnmatch.fnmatchcase(path, self.path_pattern)


class FaultSet:
    """A thread-safe, ordered collection of :class:`FaultRule`; the first firing rule wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        """Install a rule (evaluated after the ones already installed) and return it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def extend(self, rules: Iterable[FaultRule]) -> None:
        """Install several rules in order."""
        with self._lock:
            self._rules.extend(rules)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Snapshot of the installed rules with their seen/fired counts."""
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """Record a request against every matching rule and return the rule that fires, if any.

        Every matching rule counts the request (so ``after`` means "the first N requests this
        rule saw"), but at most one rule fires per request.
        """
        chosen: FaultRule | None = None
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                rule.seen += 1
                if chosen is not None or rule.seen <= rule.after:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                rule.fired += 1
                chosen = rule
        return chosen


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _QuietRequestHandler(WSGIRequestHandler):
    """Route werkzeug's per-request access log to our logger at DEBUG instead of stderr."""

    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug("%s " + message.rstrip(), self.address_string(), *args)


class EmulatorServer:
    """A threaded werkzeug server on 127.0.0.1 with counters, faults, latency and control routes.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``port=0`` picks a free port.
    """

    def __init__(
        self,
        *,
        name: str,
        url_map: Map,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
    ) -> None:
        self.name = name
        self.url_map = url_map
        self.host = host
        self.port = port
        self.faults = FaultSet()
        self._latency_ms = float(latency_ms)
        self._counters: dict[str, int] = {}
        self._counter_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._control_map = Map(
            [
                Rule(f"{CONTROL_PREFIX}health", endpoint=self._control_health, methods=["GET"]),
                Rule(
                    f"{CONTROL_PREFIX}counters",
                    endpoint=self._control_counters,
                    methods=["GET", "DELETE"],
                ),
                Rule(
                    f"{CONTROL_PREFIX}faults",
                    endpoint=self._control_faults,
                    methods=["GET", "POST", "DELETE"],
                ),
                Rule(
                    f"{CONTROL_PREFIX}latency",
                    endpoint=self._control_latency,
                    methods=["GET", "POST"],
                ),
            ]
        )

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._server is None:
            raise RuntimeError(f"{self.name} emulator is not started")
        return f"http://{self.host}:{self._server.port}"

    def start(self) -> str:
        """Bind the socket, serve in a background daemon thread, and return the base URL."""
        if self._server is not None:
            return self.base_url
        self._stopping.clear()
        self._server = make_server(
            self.host, self.port, self.wsgi_app, threaded=True, request_handler=_QuietRequestHandler
        )
        self.port = self._server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.name}-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("%s emulator listening on %s", self.name, self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving; wakes up requests sleeping in injected delays. Safe to call twice."""
        server, self._server = self._server, None
        self._stopping.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- counters and latency ---------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """A copy of the request counters: ``{"GET /api/...": n, ..., "total": n}``."""
        with self._counter_lock:
            return dict(self._counters)

    def reset_counters(self) -> None:
        """Zero every counter."""
        with self._counter_lock:
            self._counters.clear()

    def _count(self, key: str) -> None:
        with self._counter_lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            self._counters[TOTAL_KEY] = self._counters.get(TOTAL_KEY, 0) + 1

    @property
    def latency_ms(self) -> float:
        """Delay added to every (non-control) request, in milliseconds."""
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if value < 0:
            raise ValueError("latency_ms must be >= 0")
        self._latency_ms = float(value)

    # ---- hooks for subclasses ---------------------------------------------------------------

    def error_body(self, status: int, message: str, request: Request) -> dict[str, Any]:
        """The JSON body of an error reply; override to mimic the real API's shape."""
        return {"error": {"code": status, "message": message}}

    def before_dispatch(self, request: Request, rule: Rule) -> None:
        """Called before a matched handler runs (after counting, latency and faults).

        Override to authenticate; raise :class:`EmulatorHTTPError` to refuse.
        """

    # ---- WSGI ---------------------------------------------------------------------------------

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The WSGI entry point."""
        request = Request(environ)
        if request.path.startswith(CONTROL_PREFIX):
            response = self._handle_control(request)
        else:
            response = self._handle_api(request)
        return response(environ, start_response)

    def _error(
        self,
        status: int,
        message: str,
        request: Request,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body = self.error_body(status, message, request)
        if extra:
            body.update(extra)
        return json_response(body, status=status, headers=headers)

    def _handle_api(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        rule: Rule | None = None
        values: Mapping[str, Any] = {}
        match_error: HTTPException | None = None
        try:
            rule, values = adapter.match(return_rule=True)
        except HTTPException as exc:  # NotFound, MethodNotAllowed
            match_error = exc
        key = f"{request.method} {rule.rule if rule is not None else '<unmatched>'}"
        self._count(key)

        if self._latency_ms > 0:
            self._stopping.wait(self._latency_ms / 1000.0)
        fault = self.faults.pick(request.method, request.path)
        if fault is not None:
            if fault.delay_s > 0:
                self._stopping.wait(fault.delay_s)
            if fault.status is not None:
                return self._fault_response(fault, request)

        if rule is None:
            if isinstance(match_error, MethodNotAllowed):
                return self._error(405, f"Method {request.method} not allowed", request)
            return self._error(404, f"Not found: {request.path}", request)
        try:
            self.before_dispatch(request, rule)
            handler: Handler = rule.endpoint  # type: ignore[assignment]
            return handler(request, **values)
        except EmulatorHTTPError as exc:
            return self._error(exc.status, exc.message, request, extra=exc.extra, headers=exc.headers)
        except HTTPException as exc:  # werkzeug's own, e.g. a malformed form body
            return self._error(exc.code or 500, exc.description or exc.name, request)
        except Exception:  # an emulator bug must still answer, like a real server's 500
            logger.exception("%s emulator: handler for %s crashed", self.name, key)
            return self._error(500, "Internal emulator error", request)

    def _fault_response(self, fault: FaultRule, request: Request) -> Response:
        assert fault.status is not None
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            retry_after = fault.retry_after
            headers["Retry-After"] = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        if fault.body is not None:
            return json_response(fault.body, status=fault.status, headers=headers)
        return self._error(fault.status, f"Injected fault: HTTP {fault.status}", request, headers=headers)

    # ---- control endpoints ------------------------------------------------------------------

    def _handle_control(self, request: Request) -> Response:
        adapter = self._control_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except HTTPException as exc:
            code = exc.code or 404
            return json_response({"error": {"code": code, "message": exc.name}}, status=code)
        try:
            return endpoint(request, **values)  # type: ignore[operator]
        except EmulatorHTTPError as exc:
            return json_response({"error": {"code": exc.status, "message": exc.message}}, status=exc.status)

    def _control_health(self, request: Request) -> Response:
        return json_response({"ok": True, "name": self.name, "pid": os.getpid()})

    def _control_counters(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.reset_counters()
            return json_response({"ok": True})
        return json_response(self.counters())

    def _control_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.clear()
            return json_response({"ok": True})
        if request.method == "GET":
            return json_response(self.faults.rules())
        payload = request_json(request)
        if isinstance(payload, dict):
            payload = [payload]
        if not isinstance(payload, list) or not all(isinstance(p, dict) for p in payload):
            raise EmulatorHTTPError(400, "Expected a JSON list of fault rules")
        try:
            rules = [FaultRule.from_dict(p) for p in payload]
        except (TypeError, ValueError) as exc:
            raise EmulatorHTTPError(400, f"Invalid fault rule: {exc}") from exc
        self.faults.extend(rules)
        return json_response({"ok": True, "installed": len(rules)})

    def _control_latency(self, request: Request) -> Response:
        if request.method == "POST":
            payload = request_json(request)
            if not isinstance(payload, dict) or not isinstance(payload.get("ms"), (int, float)):
                raise EmulatorHTTPError(400, 'Expected {"ms": <number>}')
            try:
                self.latency_ms = payload["ms"]
            except ValueError as exc:
                raise EmulatorHTTPError(400, str(exc)) from exc
        return json_response({"ms": self.latency_ms})


def serve_until_signalled(emulator: EmulatorServer, *, host: str, port: int, on_close: Callable[[], None]) -> int:
    """The emulators' command-line loop: start, print the URL, serve until SIGTERM/SIGINT, then clean up.

    Returns 2 when the port cannot be bound (another emulator has it), 0 after a clean stop.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        url = emulator.start()
    except OSError as exc:
        print(f"{emulator.name} emulator: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        on_close()
        return 2
    print(url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        on_close()
    return 0
