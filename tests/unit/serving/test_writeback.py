"""The write-back: one journal entry per key however the call is retried or replayed."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from itsm_ml.errors import ConfigError, ItsmMlError
from itsm_ml.serving.writeback import ServiceNowWriter, WriteBackError, WriteResult
from tests.fakes.servicenow import FakeServiceNow

SYS_ID = "9d385017c611228701d22104cc95c371"
FIELDS = {"assignment_group": "Network", "category": "Network"}
NOTE = "itsm-ml suggests Network (p=0.93, model triage v7): VPN drops at Lyon site"
KEY = "3f2a9c1e0b7d4a55"


@pytest.fixture
def snow() -> Iterator[FakeServiceNow]:
    with FakeServiceNow() as fake:
        fake.seed(SYS_ID, assignment_group="Service Desk", category="Inquiry")
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_writer(
    snow: FakeServiceNow, sleeps: list[float], *, random: float = 0.5, **options: Any
) -> ServiceNowWriter:
    return ServiceNowWriter(
        snow.url,
        (snow.user, snow.password),
        sleep=sleeps.append,
        random=lambda: random,
        **options,
    )


def test_fields_are_set_and_the_note_ends_with_the_marker(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    with make_writer(snow, sleeps) as writer:
        result = writer.update(SYS_ID, FIELDS, NOTE, KEY)
    assert result == WriteResult(status="written", attempts=1, sys_id=SYS_ID)
    assert snow.record(SYS_ID)["assignment_group"] == "Network"
    assert snow.record(SYS_ID)["category"] == "Network"
    assert snow.journal(SYS_ID) == [f"{NOTE}\n[itsm-ml:{KEY}]"]
    check, patch = snow.requests
    assert (check.method, patch.method) == ("GET", "PATCH")
    assert check.query == {"sysparm_fields": "work_notes", "sysparm_display_value": "true"}
    assert patch.path == f"/api/now/table/incident/{SYS_ID}"
    assert patch.query["sysparm_fields"] == "sys_id"
    assert patch.query["sysparm_input_display_value"] == "true"
    assert patch.body == {**FIELDS, "work_notes": f"{NOTE}\n[itsm-ml:{KEY}]"}
    assert patch.headers["authorization"].startswith("Basic ")
    assert patch.headers["accept"] == "application/json"
    assert patch.headers["content-type"] == "application/json"
    assert sleeps == []


def test_a_replayed_key_is_not_written_twice_even_by_another_writer(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    with make_writer(snow, sleeps) as writer:
        writer.update(SYS_ID, FIELDS, NOTE, KEY)
    snow.seed("a" * 32)  # another ticket, so the journal check is per ticket
    with make_writer(snow, sleeps) as again:
        replay = again.update(SYS_ID, FIELDS, NOTE, KEY)
        other_key = again.update(SYS_ID, FIELDS, NOTE, KEY + "-v8")
    assert replay == WriteResult(status="already_written", attempts=1, sys_id=SYS_ID)
    assert other_key.status == "written"
    assert [n.splitlines()[-1] for n in snow.journal(SYS_ID)] == [
        f"[itsm-ml:{KEY}]",
        f"[itsm-ml:{KEY}-v8]",
    ]
    assert snow.count("PATCH") == 2


def test_a_503_is_retried_after_its_retry_after_and_the_journal_rechecked(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    snow.fail_next(503, retry_after=3, method="PATCH")
    with make_writer(snow, sleeps) as writer:
        result = writer.update(SYS_ID, FIELDS, NOTE, KEY)
    assert result == WriteResult(status="written", attempts=2, sys_id=SYS_ID)
    assert sleeps == [3.0]
    # A 5xx may come after the PATCH landed: the journal is read again before re-sending.
    assert [r.method for r in snow.requests] == ["GET", "PATCH", "GET", "PATCH"]
    assert len(snow.journal(SYS_ID)) == 1


def test_retry_after_is_capped_and_a_429_needs_no_recheck(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    snow.fail_next(429, retry_after=3600, method="PATCH")
    with make_writer(snow, sleeps, backoff_cap=8.0) as writer:
        assert writer.update(SYS_ID, FIELDS, NOTE, KEY).attempts == 2
    assert sleeps == [8.0]
    assert [r.method for r in snow.requests] == ["GET", "PATCH", "PATCH"]


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda s: s.slow_next(2.0, apply=True, method="PATCH"), id="timeout"),
        pytest.param(lambda s: s.drop_next(apply=True, method="PATCH"), id="dropped"),
        pytest.param(lambda s: s.fail_next(500, apply=True, method="PATCH"), id="500"),
    ],
)
def test_a_patch_that_landed_but_failed_is_found_by_the_retry(
    snow: FakeServiceNow, sleeps: list[float], script: Callable[[FakeServiceNow], None]
) -> None:
    script(snow)
    with make_writer(snow, sleeps, timeout=0.2) as writer:
        result = writer.update(SYS_ID, FIELDS, NOTE, KEY)
    assert result == WriteResult(status="already_written", attempts=2, sys_id=SYS_ID)
    assert snow.journal(SYS_ID) == [f"{NOTE}\n[itsm-ml:{KEY}]"]
    assert snow.count("PATCH") == 1 and len(sleeps) == 1


def test_an_unknown_ticket_fails_at_once_naming_it(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    with make_writer(snow, sleeps) as writer, pytest.raises(WriteBackError) as caught:
        writer.update("0" * 32, FIELDS, NOTE, KEY)
    message = str(caught.value)
    assert "0" * 32 in message and "incident" in message
    assert "HTTP 404" in message and "No Record found" in message
    assert caught.value.status == 404
    assert len(snow.requests) == 1 and sleeps == []


def test_bad_credentials_fail_at_once_without_leaking_them(
    snow: FakeServiceNow, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-Secret-42"
    with (
        ServiceNowWriter(snow.url, (snow.user, wrong), sleep=sleeps.append) as writer,
        pytest.raises(WriteBackError) as caught,
    ):
        writer.update(SYS_ID, FIELDS, NOTE, KEY)
    sent = snow.requests[0].headers["authorization"]
    message = str(caught.value)
    assert "HTTP 401" in message and "User Not Authenticated" in message
    assert caught.value.status == 401
    for secret in (wrong, snow.password, sent, sent.split()[1]):
        assert secret not in message and secret not in caplog.text
    assert len(snow.requests) == 1 and sleeps == []


def test_persistent_500_gives_up_after_the_attempts_without_leaking_content(
    snow: FakeServiceNow, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="itsm_ml")
    for _ in range(4):
        snow.fail_next(500)
    with make_writer(snow, sleeps, max_attempts=3) as writer, pytest.raises(WriteBackError) as e:
        writer.update(SYS_ID, FIELDS, NOTE, KEY)
    assert "after 3 attempts" in str(e.value) and "HTTP 500" in str(e.value)
    assert e.value.status == 500
    assert len(snow.requests) == 3 and len(sleeps) == 2
    assert caplog.text.count("retrying") == 2 and SYS_ID in caplog.text
    for content in (NOTE, "Network", KEY):
        assert content not in str(e.value) and content not in caplog.text
    assert snow.journal(SYS_ID) == []


@pytest.mark.parametrize("jitter", [1.0, 0.25])
def test_backoff_doubles_under_full_jitter_and_stays_under_the_cap(
    snow: FakeServiceNow, sleeps: list[float], jitter: float
) -> None:
    for _ in range(7):
        snow.fail_next(502)  # the journal read is retried from the same budget
    with make_writer(snow, sleeps, random=jitter, max_attempts=8) as writer:
        assert writer.update(SYS_ID, FIELDS, NOTE, KEY).attempts == 8
    assert sleeps == [jitter * d for d in (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)]
    assert [r.method for r in snow.requests] == ["GET"] * 8 + ["PATCH"]


def test_an_unreachable_itsm_is_retried_then_reported(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    writer = ServiceNowWriter(
        f"http://127.0.0.1:{port}", ("u", "p"), max_attempts=2, sleep=sleeps.append
    )
    with writer, pytest.raises(WriteBackError, match=r"after 2 attempts.*ConnectError"):
        writer.update(SYS_ID, FIELDS, NOTE, KEY)
    assert len(sleeps) == 1


def test_an_error_echoing_ticket_content_is_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"result": {"work_notes": ""}})
        error = {"message": "Invalid update", "detail": f"Field rejected: {NOTE}"}
        return httpx.Response(400, json={"error": error, "status": "failure"})

    writer = ServiceNowWriter(
        "https://example.service-now.com", ("u", "p"), transport=httpx.MockTransport(handler)
    )
    with writer, pytest.raises(WriteBackError, match="Invalid update") as caught:
        writer.update(SYS_ID, FIELDS, NOTE, KEY)
    assert NOTE not in str(caught.value) and "<redacted>" in str(caught.value)


def test_an_html_page_instead_of_json_is_an_error() -> None:
    page = httpx.Response(200, text="<html>Your instance is hibernating</html>")
    writer = ServiceNowWriter(
        "https://example.service-now.com",
        ("u", "p"),
        transport=httpx.MockTransport(lambda request: page),
    )
    with writer, pytest.raises(WriteBackError, match="other than Table API JSON"):
        writer.update(SYS_ID, FIELDS, NOTE, KEY)


def test_from_env_names_the_missing_variable(snow: FakeServiceNow) -> None:
    with pytest.raises(ConfigError, match="ITSM_ML_ITSM_PASSWORD") as caught:
        ServiceNowWriter.from_env(snow.url, environ={"ITSM_ML_ITSM_USER": "itsm-ml"})
    assert "ITSM_ML_ITSM_USER" not in str(caught.value)
    env = {"SNOW_USER": snow.user, "SNOW_PASSWORD": snow.password}
    writer = ServiceNowWriter.from_env(
        snow.url, user_env="SNOW_USER", password_env="SNOW_PASSWORD", environ=env
    )
    with writer:
        assert writer.update(SYS_ID, FIELDS, NOTE, KEY).status == "written"


@pytest.mark.parametrize("key", ["has space", "tab\there", "", "x" * 65, "close]bracket"])
def test_a_key_that_cannot_mark_the_journal_is_rejected(
    snow: FakeServiceNow, sleeps: list[float], key: str
) -> None:
    with make_writer(snow, sleeps) as writer, pytest.raises(ItsmMlError, match="key"):
        writer.update(SYS_ID, FIELDS, NOTE, key)
    assert snow.requests == []


@pytest.mark.parametrize(
    ("sys_id", "fields"),
    [("../sys_user/x", FIELDS), (SYS_ID, {"work_notes": "x"}), (SYS_ID, {"Bad Name": "x"})],
)
def test_a_sys_id_or_field_that_would_address_something_else_is_rejected(
    snow: FakeServiceNow, sleeps: list[float], sys_id: str, fields: dict[str, str]
) -> None:
    with make_writer(snow, sleeps) as writer, pytest.raises(ItsmMlError):
        writer.update(sys_id, fields, NOTE, KEY)
    assert snow.requests == []


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(ConfigError, match="must not carry credentials") as caught:
        ServiceNowWriter("https://bob:hunter2@example.service-now.com", ("u", "p"))
    assert "hunter2" not in str(caught.value)


WARNING_FIELDS = {"short_description": "Early warning: service=VPN", "assignment_group": "Network"}


def test_a_record_is_created_once_per_key_even_when_asked_again(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    writer = make_writer(snow, sleeps)
    first = writer.create(WARNING_FIELDS, "EW-0a1b2c3d4e5f")
    again = make_writer(snow, sleeps).create(WARNING_FIELDS, "EW-0a1b2c3d4e5f")
    assert (first.status, again.status) == ("written", "already_written")
    assert again.sys_id == first.sys_id
    created = snow.record(first.sys_id)
    assert (
        created["correlation_id"] == "EW-0a1b2c3d4e5f" and created["assignment_group"] == "Network"
    )
    assert snow.count("POST") == 1


def test_a_create_that_landed_but_lost_its_answer_is_found_by_the_retry(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    snow.fail_next(503, apply=True, method="POST")
    result = make_writer(snow, sleeps).create(WARNING_FIELDS, "EW-ffff00001111")
    assert result.status == "already_written" and result.attempts == 2
    made = [r for r in snow.records() if r.get("correlation_id") == "EW-ffff00001111"]
    assert len(made) == 1 and snow.count("POST") == 1


def test_a_create_refused_by_the_itsm_fails_at_once_naming_the_key(
    snow: FakeServiceNow, sleeps: list[float]
) -> None:
    snow.fail_next(403, method="POST")
    with pytest.raises(
        WriteBackError, match=r"incident \(new record\): POST refused with HTTP 403"
    ):
        make_writer(snow, sleeps).create(WARNING_FIELDS, "EW-123456789abc")
    assert sleeps == []
