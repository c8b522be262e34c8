"""POST /v1/micro-records: a sanctioned assistant logs the fixes it made, read back as the
micro_records table, with no free text in the audit trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itsm_ml.config import MicroRecordsFileSource
from itsm_ml.data.sources import load_table
from itsm_ml.serving.tokens import STORE_NAME, TokenStore
from tests.unit.serving.conftest import ClientFactory, auth

SYMPTOM = "VPN client shows error 809 since the Windows update"
FIX = "Reset the network adapter and ran the VPN client repair."


@pytest.fixture
def assistant_token(project: Path) -> str:
    return TokenStore(project / STORE_NAME).create("assistant", ["write:micro-records"])[1]


def record(**changes: object) -> dict[str, object]:
    return {
        "id": "chat-1",
        "timestamp": "2026-11-22T10:14:00+01:00",
        "user": "u-7f3e1b",
        "service": "VPN",
        "symptom": SYMPTOM,
        "fix": FIX,
        "minutes_lost": 20,
        **changes,
    }


def audit_lines(project: Path) -> list[dict[str, object]]:
    path = project / "reports/audit/scoring.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_logged_records_are_read_back_as_micro_records_and_never_twice(
    make_client: ClientFactory, assistant_token: str, project: Path
) -> None:
    client = make_client()
    sent = [record(), record(id=None, user="u-2", symptom="Error 809 on VPN from home")]
    response = client.post(
        "/v1/micro-records", json={"records": sent}, headers=auth(assistant_token)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["logged"], body["duplicates"]) == (2, 0)
    assert body["ids"][0] == "chat-1" and body["ids"][1].startswith("mr-")
    # The assistant retries the same batch (a timeout it was unsure about): nothing new.
    again = client.post("/v1/micro-records", json={"records": sent}, headers=auth(assistant_token))
    assert (again.json()["logged"], again.json()["duplicates"]) == (0, 2)
    assert again.json()["ids"] == body["ids"]

    log = project / "data/external/micro_records.jsonl"
    table = load_table(
        "micro_records", MicroRecordsFileSource(kind="assistant_export", path=str(log))
    )
    assert table["record_id"].tolist() == body["ids"]
    assert str(table["opened_at"].iloc[0]) == "2026-11-22 09:14:00"  # the offset read as UTC
    assert table["text"].iloc[0] == SYMPTOM and table["label_resolution_notes"].iloc[0] == FIX
    assert table["channel"].tolist() == ["chat assistant"] * 2
    assert table["minutes_lost"].iloc[0] == 20

    entries = [e for e in audit_lines(project) if e["endpoint"] == "/v1/micro-records"]
    assert [(e["logged"], e["duplicates"]) for e in entries] == [(2, 0), (0, 2)]
    assert entries[0]["services"] == ["VPN"]
    written = (project / "reports/audit/scoring.jsonl").read_text()
    assert "809" not in written and "u-7f3e1b" not in written and "adapter" not in written


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"symptom": "   "}, "symptom"),
        ({"minutes_lost": -5}, "minutes_lost"),
        ({"timestamp": "0001-01-01T00:00:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"caller_name": "Jane Doe"}, "caller_name"),  # a field it does not take: refused
    ],
)
def test_a_record_breaking_a_rule_is_refused_naming_the_field_and_nothing_is_logged(
    make_client: ClientFactory,
    assistant_token: str,
    project: Path,
    change: dict[str, object],
    field: str,
) -> None:
    client = make_client()
    sent = [record(id="fine"), record(**change)]
    response = client.post(
        "/v1/micro-records", json={"records": sent}, headers=auth(assistant_token)
    )
    assert response.status_code == 422
    assert field in response.text
    assert not (project / "data/external/micro_records.jsonl").exists()


def test_only_a_token_with_the_micro_records_scope_may_log(
    make_client: ClientFactory, tokens: dict[str, str], project: Path
) -> None:
    client = make_client()
    for name in ("tickets", "models"):
        response = client.post(
            "/v1/micro-records", json={"records": [record()]}, headers=auth(tokens[name])
        )
        assert response.status_code == 403, name
    assert client.post("/v1/micro-records", json={"records": [record()]}).status_code == 401
    assert not (project / "data/external/micro_records.jsonl").exists()
