"""Write a suggestion back onto the ticket in the ITSM (ServiceNow Table API), or open a
record there (`create`: an incident from an early warning, once per key, see its docstring).

One PATCH of `/api/now/table/{table}/{sys_id}` sets the suggested fields and adds a work
note. Setting a field to an absolute value is idempotent by itself; the note is not:
ServiceNow appends a journal entry on every PATCH that carries `work_notes`, and the Table
API has no idempotency-key header. A PATCH that timed out or lost its connection may still
have landed, so a blind retry could note the same suggestion twice, and the caller (or the
ITSM replaying its outbound call) may send the same request again later.

So every note ends with a marker line `[itsm-ml:<key>]`, the key being the caller's
idempotency key (a hash of sys_id, model version and decision, say). Before the first PATCH,
and before any retry that follows a failure after which the PATCH may have landed, the
client reads the journal and, when the marker is already there, reports `already_written`
instead of writing again. The journal is the record of truth, so this holds across
processes and restarts with no state of our own.

Transient failures (timeouts, dropped connections, 429 and 5xx) are retried with capped
exponential back-off and full jitter, honouring `Retry-After`; other statuses fail at once.
Error messages and logs name the table, sys_id, status and counts, never the credentials or
the ticket content written.
"""

from __future__ import annotations

import logging
import os
import random as _random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from itsm_ml.errors import ConfigError, ItsmMlError

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MARKER_PREFIX = "itsm-ml"
# The marker must read back unchanged from the journal's display value, which ServiceNow
# may HTML-escape: keep to characters no escaping touches, and no `]` to end it early.
_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# sys_id goes into the URL path: a stray `/` or `?` would address another resource.
_SYS_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,79}")
_MAX_REASON = 200


class WriteBackError(ItsmMlError):
    """The ITSM refused the update, or stayed unreachable for every attempt."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        # Lets a caller tell a gone ticket (404) from an outage worth re-queueing.
        self.status = status


@dataclass(frozen=True)
class WriteResult:
    status: Literal["written", "already_written"]
    attempts: int
    sys_id: str


class _TransientError(Exception):
    """A failure worth retrying; `landed` says whether the PATCH may have taken effect."""

    def __init__(
        self,
        cause: str,
        *,
        landed: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.landed = landed
        self.status = status
        self.retry_after = retry_after


class ServiceNowWriter:
    """Updates one ticket per call; safe to call again with the same key."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | tuple[str, str],
        *,
        table: str = "incident",
        timeout: float = 5.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        backoff_cap: float = 8.0,
        input_display_value: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(f"ITSM base URL must be http(s)://host, got scheme {url.scheme!r}")
        if url.userinfo:
            # A URL ends up in logs and error messages; credentials belong in `auth`.
            raise ConfigError("ITSM base URL must not carry credentials; pass them as auth")
        if not _NAME.fullmatch(table):
            raise ConfigError(f"ITSM table must be a table name like 'incident', got {table!r}")
        if timeout <= 0 or max_attempts < 1 or backoff < 0 or backoff_cap < 0:
            raise ConfigError(
                "ITSM write-back needs timeout > 0, max_attempts >= 1 and back-off >= 0; got "
                f"timeout={timeout}, max_attempts={max_attempts}, backoff={backoff}, "
                f"backoff_cap={backoff_cap}"
            )
        self.table = table
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        # Suggestions are labels ("Network"), not sys_ids of the referenced group or the
        # stored value of a choice: ServiceNow resolves them when told they are display values.
        self.input_display_value = input_display_value
        self._sleep = sleep
        self._random = random
        self._client = httpx.Client(
            base_url=str(url).rstrip("/"),
            auth=httpx.BasicAuth(*auth) if isinstance(auth, tuple) else auth,
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json", "Content-Type": "application/json"},
            transport=transport,
        )

    @classmethod
    def from_env(
        cls,
        base_url: str,
        *,
        user_env: str = "ITSM_ML_ITSM_USER",
        password_env: str = "ITSM_ML_ITSM_PASSWORD",
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> ServiceNowWriter:
        """A writer using basic auth from the environment variables named here."""
        env = os.environ if environ is None else environ
        missing = [name for name in (user_env, password_env) if not env.get(name)]
        if missing:
            raise ConfigError(
                f"ITSM write-back: {' and '.join(missing)} unset or empty in the environment; "
                "set them to the ITSM integration user's name and password"
            )
        return cls(base_url, (env[user_env], env[password_env]), **options)

    def update(self, sys_id: str, fields: Mapping[str, str], note: str, key: str) -> WriteResult:
        """Set `fields` on the ticket and add `note` as a work note, at most once per `key`."""
        _check_request(sys_id, fields, key)
        marker = f"[{MARKER_PREFIX}:{key}]"
        body = {**fields, "work_notes": f"{note.rstrip()}\n{marker}"}
        # Ticket content never goes into a message, even when ServiceNow echoes it back.
        content = [note, *fields.values()]
        return self._at_most_once(
            sys_id,
            lambda: sys_id if marker in self._journal(sys_id, content) else None,
            lambda: self._patch(sys_id, body, content),
        )

    def _at_most_once(
        self, target: str, done: Callable[[], str | None], act: Callable[[], str]
    ) -> WriteResult:
        """`act` once, retried on transient failures. `done` (the sys_id of what an earlier
        call already wrote, or None) is asked first, and again after a failure that may have
        landed, so neither a retry nor a replay writes twice."""
        must_check = True
        attempt = 1
        while True:
            try:
                if must_check:
                    found = done()
                    if found is not None:
                        return WriteResult("already_written", attempt, found)
                    must_check = False
                return WriteResult("written", attempt, act())
            except _TransientError as failure:
                self._wait_or_give_up(target, failure, attempt, "written")
                must_check = must_check or failure.landed
                attempt += 1

    def _wait_or_give_up(
        self, target: str, failure: _TransientError, attempt: int, what: str
    ) -> None:
        if attempt >= self.max_attempts:
            raise WriteBackError(
                f"{self.table} {target}: not {what} after {attempt} attempts; "
                f"last failure: {failure.cause}",
                status=failure.status,
            ) from failure.__cause__
        delay = self._delay(attempt, failure.retry_after)
        log.warning(
            "write-back %s %s: %s; attempt %d of %d, retrying in %.2f s",
            self.table,
            target,
            failure.cause,
            attempt,
            self.max_attempts,
            delay,
        )
        self._sleep(delay)

    def rows(self, field: str, value: str, fields: list[str]) -> list[dict[str, str]]:
        """The records whose `field` is `value`, with `fields` as display values (a read:
        retried on transient failures like a write, never written)."""
        params = {
            "sysparm_query": f"{field}={value}",
            "sysparm_fields": ",".join(fields),
            "sysparm_display_value": "true",
        }
        attempt = 1
        while True:
            try:
                response = self._send("GET", None, [], params=params, landed=False)
                found = self._result(response, None)
                return [dict(r) for r in found] if isinstance(found, list) else []
            except _TransientError as failure:
                self._wait_or_give_up(f"(query {field}={value})", failure, attempt, "read")
                attempt += 1

    def create(self, fields: Mapping[str, str], key: str) -> WriteResult:
        """Create a record (an incident from an early warning) at most once per `key`.

        The key goes into `correlation_id`, the field ServiceNow keeps for the id of the
        system that raised a record: before the first POST, and before a retry after which
        the POST may have landed, the table is asked for a record with that correlation id,
        and an existing one is reported as `already_written` instead of a second incident.
        """
        _check_request("new", fields, key)
        body = {**fields, "correlation_id": key, "correlation_display": MARKER_PREFIX}
        content = list(fields.values())
        return self._at_most_once(
            f"(new record {key})",
            lambda: self._find(key, content),
            lambda: self._post(body, content),
        )

    def _find(self, key: str, content: list[str]) -> str | None:
        params = {
            "sysparm_query": f"correlation_id={key}",
            "sysparm_fields": "sys_id",
            "sysparm_limit": "1",
        }
        response = self._send("GET", None, content, params=params, landed=False)
        rows = self._result(response, None)
        return str(rows[0]["sys_id"]) if isinstance(rows, list) and rows else None

    def _post(self, body: dict[str, str], content: list[str]) -> str:
        params = {"sysparm_fields": "sys_id"}
        if self.input_display_value:
            params["sysparm_input_display_value"] = "true"
        response = self._send("POST", None, content, params=params, json=body, landed=True)
        created = self._result(response, None)
        return str(created["sys_id"]) if isinstance(created, dict) else ""

    def _result(self, response: httpx.Response, sys_id: str | None) -> Any:
        try:
            return response.json()["result"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WriteBackError(
                f"{self.table} {sys_id or '(new record)'}: the ITSM answered with something "
                f"other than Table API JSON (content-type "
                f"{response.headers.get('content-type', 'none')!r})",
                status=response.status_code,
            ) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_cap)
        # Full jitter: writers that failed together (an instance restart) do not retry in step.
        return self._random() * min(self.backoff_cap, self.backoff * 2.0 ** (attempt - 1))

    def _journal(self, sys_id: str, content: list[str]) -> str:
        # Journal fields read back empty unless asked for display values.
        params = {"sysparm_fields": "work_notes", "sysparm_display_value": "true"}
        response = self._send("GET", sys_id, content, params=params, landed=False)
        result = self._result(response, sys_id)
        notes = result.get("work_notes") if isinstance(result, dict) else None
        return notes if isinstance(notes, str) else ""

    def _patch(self, sys_id: str, body: dict[str, str], content: list[str]) -> str:
        params = {"sysparm_fields": "sys_id"}
        if self.input_display_value:
            params["sysparm_input_display_value"] = "true"
        self._send("PATCH", sys_id, content, params=params, json=body, landed=True)
        return sys_id

    def _send(
        self,
        method: str,
        sys_id: str | None,
        content: list[str],
        *,
        params: dict[str, str],
        landed: bool,
        json: dict[str, str] | None = None,
    ) -> httpx.Response:
        # No sys_id: the table itself (a query, or a record to create).
        path = f"/api/now/table/{self.table}" + (f"/{sys_id}" if sys_id else "")
        try:
            response = self._client.request(method, path, params=params, json=json)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Never reached the server: nothing can have landed.
            raise _TransientError(f"{method} {type(exc).__name__}", landed=False) from exc
        except httpx.TransportError as exc:
            # Timeouts included: the request may have been processed before the reply was lost.
            raise _TransientError(f"{method} {type(exc).__name__}", landed=landed) from exc
        if response.is_success:
            return response
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            raise _TransientError(
                f"{method} HTTP {status}",
                # A rate-limited request was turned away before any business rule ran.
                landed=landed and status != 429,
                status=status,
                retry_after=_retry_after(response),
            )
        hint = " (check the ITSM user and password)" if status == 401 else ""
        raise WriteBackError(
            f"{self.table} {sys_id or '(new record)'}: {method} refused with HTTP {status}{hint}: "
            f"{_reason(response, content)}",
            status=status,
        )


def _check_request(sys_id: str, fields: Mapping[str, str], key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ItsmMlError(
            "write-back idempotency key must be 1-64 characters of letters, digits and . _ : - "
            f"(no whitespace); got one of length {len(key)}"
        )
    if not _SYS_ID.fullmatch(sys_id):
        raise ItsmMlError(f"write-back sys_id {sys_id!r} is not a ServiceNow sys_id")
    bad = sorted(name for name in fields if not _NAME.fullmatch(name) or name == "work_notes")
    if bad:
        raise ItsmMlError(
            f"write-back fields {bad} are not settable field names (work_notes is the note)"
        )


def _retry_after(response: httpx.Response) -> float | None:
    # Only the seconds form: an HTTP date would need the server's clock to agree with ours.
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _reason(response: httpx.Response, content: list[str]) -> str:
    try:
        error = response.json()["error"]
        parts = [str(error.get("message") or ""), str(error.get("detail") or "")]
        text = " - ".join(part for part in parts if part) or response.reason_phrase
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.reason_phrase or "no error message"
    for value in content:
        if value.strip():
            text = text.replace(value, "<redacted>")
    return text[:_MAX_REASON]
