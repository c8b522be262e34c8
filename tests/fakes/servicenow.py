"""A small in-process ServiceNow Table API for tests of the write-back.

It keeps one table in memory and answers `GET` and `PATCH` of `/api/now/table/<table>/<sys_id>`,
and `POST` (create) and `GET` with an `x=y` `sysparm_query` of `/api/now/table/<table>`, the
way ServiceNow does where the write-back depends on it:

- `work_notes` is a journal: each PATCH carrying it appends an entry; reading it gives an
  empty string unless `sysparm_display_value=true`, then the entries newest first, each as
  `"<time> - <user> (Work notes)\\n<text>\\n\\n"`;
- basic auth is checked, and errors carry ServiceNow's body
  `{"error": {"message": ..., "detail": ...}, "status": "failure"}`;
- faults are scripted ahead (`fail_next`, `slow_next`, `drop_next`) and consumed in order, each
  by the next request of its method, so a test can make a PATCH land and its answer get lost.

Every request is logged (method, path, query, lower-cased headers, JSON body) for assertions.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

_PATH = re.compile(r"/api/now/table/(?P<table>[^/]+)(?:/(?P<sys_id>[^/]+))?")
_JOURNAL_START = datetime(2026, 11, 22, 10, 0, 0)


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Fault:
    kind: Literal["fail", "slow", "drop"]
    method: str | None = None
    apply: bool = False
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error(status: int, message: str, detail: str | None = None) -> _Answer:
    return _Answer(status, {"error": {"message": message, "detail": detail}, "status": "failure"})


class FakeServiceNow:
    """Use as `with FakeServiceNow() as snow:`; `snow.url` is the instance's base URL."""

    def __init__(
        self,
        *,
        user: str = "itsm-ml",
        password: str = "s3cret-Pa55",
        table: str = "incident",
        number_prefix: str | None = None,
    ) -> None:
        self.user = user
        self.password = password
        self.table = table
        # Set: a created record gets a number, as ServiceNow numbers problems (PRB0040001).
        self.number_prefix = number_prefix
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._records: dict[str, dict[str, str]] = {}
        self._journals: dict[str, list[tuple[datetime, str]]] = {}
        self._faults: deque[Fault] = deque()
        self._log: list[LoggedRequest] = []
        self._entries = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        # Wakes handlers still holding back a slow answer, so stopping never waits on them.
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeServiceNow is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- data ------------------------------------------------------------------------------

    def seed(self, sys_id: str, **fields: str) -> None:
        with self._lock:
            self._records[sys_id] = {"sys_id": sys_id, **fields}
            self._journals[sys_id] = []

    def records(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(row) for row in self._records.values()]

    def record(self, sys_id: str) -> dict[str, str]:
        """The stored fields, without the journal."""
        with self._lock:
            return dict(self._records[sys_id])

    def journal(self, sys_id: str) -> list[str]:
        """The work note texts, oldest first."""
        with self._lock:
            return [text for _, text in self._journals[sys_id]]

    # -- faults and log --------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 503,
        *,
        retry_after: float | None = None,
        apply: bool = False,
        method: str | None = None,
    ) -> None:
        """Answer the next request with `status`; with `apply`, after processing it."""
        self._add(Fault("fail", method, apply, status=status, retry_after=retry_after))

    def slow_next(self, seconds: float, *, apply: bool = True, method: str | None = None) -> None:
        """Hold the answer for `seconds`; with `apply` the request was processed first,
        without it the request is dropped unprocessed and a 503 follows the wait."""
        self._add(Fault("slow", method, apply, seconds=seconds))

    def drop_next(self, *, apply: bool = True, method: str | None = None) -> None:
        """Close the connection without answering; with `apply`, after processing."""
        self._add(Fault("drop", method, apply))

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def count(self, method: str) -> int:
        return sum(r.method == method for r in self.requests)

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            if self._faults and self._faults[0].method in (None, method):
                return self._faults.popleft()
            return None

    def _logged(self, request: LoggedRequest) -> None:
        with self._lock:
            self._log.append(request)

    # -- the Table API ---------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except ValueError:
            return False
        return (user, password) == (self.user, self.password)

    def _process(self, method: str, path: str, query: dict[str, str], raw: bytes) -> _Answer:
        found = _PATH.fullmatch(path)
        if found is None:
            return _error(400, "Requested URI does not represent any resource")
        if found["table"] != self.table:
            return _error(400, f"Invalid table {found['table']}")
        sys_id = found["sys_id"]
        if sys_id is None:
            return self._collection(method, query, raw)
        with self._lock:
            if sys_id not in self._records:
                return _error(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            if method == "PATCH":
                body = _json_object(raw)
                if body is None:
                    return _error(400, "Exception while reading request", "Invalid JSON body")
                for name, value in body.items():
                    if name == "work_notes":
                        if str(value).strip():
                            stamp = _JOURNAL_START + timedelta(minutes=self._entries)
                            self._entries += 1
                            self._journals[sys_id].append((stamp, str(value)))
                    else:
                        self._records[sys_id][name] = str(value)
            return _Answer(200, {"result": self._view(sys_id, query)})

    def _collection(self, method: str, query: dict[str, str], raw: bytes) -> _Answer:
        with self._lock:
            if method == "POST":
                body = _json_object(raw)
                if body is None:
                    return _error(400, "Exception while reading request", "Invalid JSON body")
                sys_id = f"{len(self._records) + 1:032x}"
                self._records[sys_id] = {"sys_id": sys_id, **{k: str(v) for k, v in body.items()}}
                if self.number_prefix:
                    number = f"{self.number_prefix}{40_000 + len(self._records):07d}"
                    self._records[sys_id].setdefault("number", number)
                self._journals[sys_id] = []
                return _Answer(201, {"result": self._view(sys_id, query)})
            name, _, value = query.get("sysparm_query", "").partition("=")
            matches = [s for s, row in self._records.items() if not name or row.get(name) == value]
            limit = int(query.get("sysparm_limit", "10000"))
            return _Answer(200, {"result": [self._view(s, query) for s in matches[:limit]]})

    def _view(self, sys_id: str, query: dict[str, str]) -> dict[str, str]:
        display = query.get("sysparm_display_value", "false").lower() == "true"
        notes = (
            "".join(
                f"{stamp:%Y-%m-%d %H:%M:%S} - {self.user} (Work notes)\n{text}\n\n"
                for stamp, text in reversed(self._journals[sys_id])
            )
            if display
            else ""
        )
        row = {**self._records[sys_id], "work_notes": notes}
        wanted = [name for name in query.get("sysparm_fields", "").split(",") if name]
        return {name: row.get(name, "") for name in wanted} if wanted else row


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeServiceNow

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that gave up (the timeout tests) reset their sockets; that is expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each answer waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake._logged(LoggedRequest(method, split.path, query, headers, body))

        fault = fake._take_fault(method)
        answer: _Answer | None = None
        if fault is None or fault.apply:
            answer = (
                fake._process(method, split.path, query, raw)
                if fake._authorized(self.headers.get("Authorization"))
                else _error(401, "User Not Authenticated", "Required to provide Auth information")
            )
        if fault is None:
            self._send(answer)
        elif fault.kind == "fail":
            failed = _error(fault.status, HTTPStatus(fault.status).phrase)
            if fault.retry_after is not None:
                failed.headers["Retry-After"] = f"{fault.retry_after:g}"
            self._send(failed)
        elif fault.kind == "slow":
            fake._stopping.wait(fault.seconds)
            self._send(answer or _error(503, "Service Unavailable"))
            self.close_connection = True
        else:
            self.close_connection = True

    def _send(self, answer: _Answer | None) -> None:
        assert answer is not None
        payload = json.dumps(answer.body).encode("utf-8")
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True
