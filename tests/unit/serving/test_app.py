"""The service's contract: auth and scopes, status codes, answers, audit trail, write-back."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from itsm_ml.config import Params, parse_params
from itsm_ml.data.sources.servicenow import incidents_to_canonical
from itsm_ml.data.split import time_split
from itsm_ml.serving.api import Incident
from itsm_ml.serving.app import build_service, create_app
from itsm_ml.serving.scoring import incident_frame
from itsm_ml.serving.tokens import STORE_NAME, TokenStore
from itsm_ml.triage.model import TriageModel
from tests.fakes.servicenow import FakeServiceNow
from tests.unit.serving.conftest import (
    ROOT,
    ClientFactory,
    FakeRegistry,
    auth,
    incident_records,
    with_serving,
)


def test_healthz_needs_no_token_and_readyz_waits_for_the_models(
    project: Path, params: Params, registry_with_routing: FakeRegistry
) -> None:
    from fastapi.testclient import TestClient

    from itsm_ml.serving.champions import Champions

    champions = Champions(
        ["itsm-routing"], resolve=registry_with_routing.resolve, load=registry_with_routing.load
    )
    app = create_app(build_service(params, project, champions=champions), poll=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        champions.refresh()
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["detail"]["champions"] == {"itsm-routing": "1"}


def test_a_ticket_is_answered_by_the_champion_naming_its_version(
    make_client: ClientFactory, tokens: dict[str, str], tickets: pd.DataFrame, routing_model: Any
) -> None:
    client = make_client()
    record = incident_records(tickets, 1)[0]
    response = client.post("/v1/triage", json=record, headers=auth(tokens["tickets"]))
    assert response.status_code == 200, response.text
    body = response.json()
    routing = body["answers"]["routing"]
    assert (routing["model"], routing["version"], routing["field"]) == (
        "itsm-routing",
        "1",
        "assignment_group",
    )
    assert body["unavailable"] == ["category", "priority"]
    assert response.headers["X-Model-Versions"] == "itsm-routing=1"
    # The same answer as the model gives the ticket read by the ingestion adapter.
    canonical = incidents_to_canonical(incident_frame([Incident(**record)]))
    expected = routing_model.respond(canonical).iloc[0]
    assert routing["suggestions"][0]["value"] == expected["label"]
    assert routing["probability"] == pytest.approx(expected["probability"])
    assert routing["decision"] == ("auto_route" if expected["auto_route"] else "suggest")
    assert (routing["value"] is not None) == bool(expected["auto_route"])


def test_reference_fields_use_their_display_value(
    make_client: ClientFactory, tokens: dict[str, str], tickets: pd.DataFrame
) -> None:
    client = make_client()
    record = incident_records(tickets, 1)[0]
    as_reference = {
        **record,
        "caller_id": {"value": "6816f79c", "display_value": record["caller_id"]},
    }
    plain = client.post("/v1/triage", json=record, headers=auth(tokens["tickets"])).json()
    referenced = client.post(
        "/v1/triage", json=as_reference, headers=auth(tokens["tickets"])
    ).json()
    assert referenced["answers"] == plain["answers"]


def test_batch_answers_each_record_in_order(
    make_client: ClientFactory, tokens: dict[str, str], tickets: pd.DataFrame
) -> None:
    client = make_client()
    records = incident_records(tickets, 40)
    batch = client.post(
        "/v1/triage/batch", json={"records": records}, headers=auth(tokens["tickets"])
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["number"] for r in results] == [r["number"] for r in records]
    single = client.post("/v1/triage", json=records[7], headers=auth(tokens["tickets"])).json()
    assert results[7]["answers"] == single["answers"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer itsm_nope_nope"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
    ],
)
def test_missing_or_bad_tokens_get_401(
    make_client: ClientFactory, headers: dict[str, str], status: int
) -> None:
    response = make_client().post("/v1/triage", json={"number": "INC1"}, headers=headers)
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_without_the_scope_gets_403_and_admin_gets_in(
    make_client: ClientFactory, tokens: dict[str, str]
) -> None:
    client = make_client()
    wrong = client.post("/v1/triage", json={"number": "INC1"}, headers=auth(tokens["changes"]))
    assert wrong.status_code == 403
    assert "score:tickets" in wrong.json()["detail"]
    assert client.get("/v1/models", headers=auth(tokens["tickets"])).status_code == 403
    assert client.get("/v1/models", headers=auth(tokens["models"])).status_code == 200
    admin = client.post("/v1/triage", json={"number": "INC1"}, headers=auth(tokens["admin"]))
    assert admin.status_code == 200


def test_a_revoked_token_is_refused_on_the_next_request(
    make_client: ClientFactory, tokens: dict[str, str], project: Path
) -> None:
    client = make_client()
    token = tokens["tickets"]
    assert client.post("/v1/triage", json={}, headers=auth(token)).status_code == 200
    TokenStore(project / STORE_NAME).revoke(token.split("_")[1])
    assert client.post("/v1/triage", json={}, headers=auth(token)).status_code == 401


def test_an_invalid_body_gets_422_naming_the_field_without_echoing_it(
    make_client: ClientFactory, tokens: dict[str, str]
) -> None:
    client = make_client()
    secret_text = "password is hunter2"
    response = client.post(
        "/v1/triage",
        json={"short_description": secret_text, "caller_id": 5},
        headers=auth(tokens["tickets"]),
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "invalid request: caller_id"
    assert secret_text not in response.text
    nested = client.post(
        "/v1/triage/batch",
        json={"records": [{}, {"impact": ["x"]}]},
        headers=auth(tokens["tickets"]),
    )
    assert nested.status_code == 422
    assert nested.json()["detail"] == "invalid request: records.1.impact"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"short_description": "password is hunter2",}', "body is not valid JSON: Expecting "
         "property name enclosed in double quotes at line 1 column 45"),
        (b'{"short_description": "password is hunter2 \xff"}',
         "body is not UTF-8: 0xff at byte 43 (invalid start byte); send JSON encoded as UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested deeper than about "),
        (b'{"short_description": "password is hunter2", "size": ' + b"7" * 5000 + b"}",
         "body holds an integer of 5000 digits, over the 4300 a JSON number may have here; "
         "send it as a string"),
    ],
    ids=["malformed", "not-utf8", "nested-100000-deep", "5000-digit-integer"],
)  # fmt: skip
@pytest.mark.parametrize("endpoint", ["/v1/triage", "/v1/change-risk/batch"])
def test_a_body_that_is_not_json_gets_422_saying_why(
    make_client: ClientFactory, tokens: dict[str, str], endpoint: str, body: bytes, reason: str
) -> None:
    """Not FastAPI's 400 "There was an error parsing the body": the same shape as every 422,
    with a reason the client can act on, and never the body's text."""
    response = make_client().post(
        endpoint,
        content=body,
        headers={**auth(tokens["admin"]), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    found = response.json()
    assert found["detail"].startswith(f"invalid request: {reason}")
    [problem] = found["errors"]
    assert problem["field"] == "body" and problem["type"] == "json_invalid"
    assert problem["message"].startswith(reason)
    assert "hunter2" not in response.text


def test_nesting_within_the_parsers_limit_is_judged_by_the_schema(
    make_client: ClientFactory, tokens: dict[str, str]
) -> None:
    deep = {"impact": json.loads("[" * 50 + "]" * 50), "ignored": json.loads("[" * 200 + "]" * 200)}
    response = make_client().post("/v1/triage", json=deep, headers=auth(tokens["tickets"]))
    assert response.status_code == 422
    assert response.json()["detail"] == "invalid request: impact"


def test_a_batch_over_the_limit_gets_422_naming_records(
    make_client: ClientFactory, tokens: dict[str, str], params: Params
) -> None:
    client = make_client(with_serving(params, max_batch=3))
    response = client.post(
        "/v1/triage/batch", json={"records": [{}] * 4}, headers=auth(tokens["tickets"])
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "records"


def test_a_body_over_the_limit_gets_413(
    make_client: ClientFactory, tokens: dict[str, str], params: Params
) -> None:
    client = make_client(with_serving(params, max_body_bytes=1000))
    big = {"short_description": "x" * 2000}
    declared = client.post("/v1/triage", json=big, headers=auth(tokens["tickets"]))
    assert declared.status_code == 413

    def chunks() -> Any:  # no Content-Length: counted while it streams in
        yield json.dumps(big).encode()[:600]
        yield json.dumps(big).encode()[600:]

    streamed = client.post(
        "/v1/triage",
        content=chunks(),
        headers={**auth(tokens["tickets"]), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_a_body_that_never_fully_arrives_gets_408_within_the_timeout(
    project: Path, params: Params, registry_with_routing: FakeRegistry, tokens: dict[str, str]
) -> None:
    """Content-Length promises 1000 bytes, 10 come: the real server (uvicorn) answers 408 and
    closes once `serving.body_timeout_seconds` passed, instead of holding the connection."""
    import socket
    import threading
    import time

    import uvicorn

    from itsm_ml.catalog import catalog
    from itsm_ml.serving.champions import Champions

    settings = with_serving(params, body_timeout_seconds=0.5)
    champions = Champions(
        [entry.registered_model for entry in catalog(settings)],
        resolve=registry_with_routing.resolve,
        load=registry_with_routing.load,
    )
    champions.refresh()
    app = create_app(build_service(settings, project, champions=champions), poll=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 30 s"
        port = server.servers[0].sockets[0].getsockname()[1]

        def exchange(head: dict[str, str], body: bytes) -> bytes:
            """Send the request, read until the server closes (at most 10 s)."""
            lines = [
                "POST /v1/triage HTTP/1.1",
                "Host: 127.0.0.1",
                "Content-Type: application/json",
                f"Authorization: Bearer {tokens['tickets']}",
                *(f"{k}: {v}" for k, v in head.items()),
            ]
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                answer = b""
                while chunk := conn.recv(65536):
                    answer += chunk
                return answer

        start = time.monotonic()
        answer = exchange({"Content-Length": "1000"}, b'{"number":')  # socket.timeout: failed
        took = time.monotonic() - start
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 408 Request Timeout", answer
        assert b"connection: close" in rest.lower()
        assert json.loads(rest.partition(b"\r\n\r\n")[2])["detail"].startswith(
            "request body not received within 0.5 s (serving.body_timeout_seconds)"
        )
        assert 0.5 <= took < 10
        # A whole body is answered as before, on a server with the same short timeout.
        whole = b'{"number": "INC1"}'
        answer = exchange({"Content-Length": str(len(whole)), "Connection": "close"}, whole)
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_no_champion_gets_503_saying_what_to_promote(
    make_client: ClientFactory, tokens: dict[str, str]
) -> None:
    empty = FakeRegistry()
    response = make_client(registry=empty).post(
        "/v1/change-risk", json={"number": "CHG1"}, headers=auth(tokens["changes"])
    )
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "no champion for itsm-change-risk; promote one with `itsm-ml promote itsm-change-risk`"
    )


def test_a_change_request_gets_probability_band_reasons_and_conflicts(
    make_client: ClientFactory, tokens: dict[str, str], change_scorer: Any
) -> None:
    client = make_client()
    base = {
        "opened_at": "2025-10-01 09:00:00",
        "start_date": "2025-10-03 22:00:00",
        "end_date": "2025-10-04 02:00:00",
        "type": "normal",
        "cmdb_ci": {"display_value": "CI 3", "value": "f00"},
        "size": 12,
    }
    one = client.post(
        "/v1/change-risk", json={**base, "number": "CHG1"}, headers=auth(tokens["changes"])
    )
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["model"], body["version"]) == ("itsm-change-risk", "3")
    assert 0 < body["probability"] < 1
    assert body["band"] in {"very high", "high", "medium", "low"}
    assert len(body["reasons"]) == 3
    # Two changes in the same window on the same CI conflict with each other.
    batch = client.post(
        "/v1/change-risk/batch",
        json={"records": [{**base, "number": "CHG1"}, {**base, "number": "CHG2"}]},
        headers=auth(tokens["changes"]),
    )
    assert batch.status_code == 200, batch.text
    conflicts = [r["conflicts"] for r in batch.json()["results"]]
    assert any("CHG2" in c for c in conflicts[0]), conflicts
    assert (
        client.post("/v1/change-risk", json=base, headers=auth(tokens["tickets"])).status_code
        == 403
    )


def test_every_scored_record_is_audited_without_text_or_token(
    make_client: ClientFactory, tokens: dict[str, str], tickets: pd.DataFrame, project: Path
) -> None:
    client = make_client()
    records = incident_records(tickets, 3)
    client.post("/v1/triage", json=records[0], headers=auth(tokens["tickets"]))
    client.post("/v1/triage/batch", json={"records": records}, headers=auth(tokens["admin"]))
    log = project / "reports" / "audit" / "scoring.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 4
    assert [line["endpoint"] for line in lines] == ["/v1/triage"] + ["/v1/triage/batch"] * 3
    assert lines[0]["token"] == tokens["tickets"].split("_")[1]
    assert lines[0]["models"] == {"itsm-routing": "1"}
    assert lines[0]["number"] == records[0]["number"]
    assert set(lines[0]["decisions"]) == {"routing"}
    assert all(line["latency_ms"] > 0 for line in lines)
    text = log.read_text()
    for record in records:
        assert record["short_description"] not in text
    assert tokens["tickets"].split("_")[2] not in text


def test_every_answer_names_its_request_and_the_audit_trail_uses_that_name(
    make_client: ClientFactory,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
    project: Path,
    params: Params,
) -> None:
    client = make_client(with_serving(params, max_body_bytes=1000))
    record = incident_records(tickets, 1)[0]
    answered = client.post("/v1/triage", json=record, headers=auth(tokens["tickets"]))
    refused = client.post("/v1/triage", json=record)
    too_big = client.post(
        "/v1/triage", json={"short_description": "x" * 2000}, headers=auth(tokens["tickets"])
    )
    assert [answered.status_code, refused.status_code, too_big.status_code] == [200, 401, 413]
    names = [r.headers["X-Request-ID"] for r in (answered, refused, too_big)]
    assert len(set(names)) == 3 and all(len(name) == 16 for name in names)
    log = project / "reports" / "audit" / "scoring.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["request"] == names[0]


def test_the_audit_log_rotates_by_size(
    make_client: ClientFactory, tokens: dict[str, str], params: Params, project: Path
) -> None:
    client = make_client(with_serving(params, audit_max_bytes=2000, audit_backups=3))
    for i in range(30):
        client.post("/v1/triage", json={"number": f"INC{i}"}, headers=auth(tokens["tickets"]))
    folder = project / "reports" / "audit"
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["scoring.jsonl", "scoring.jsonl.1", "scoring.jsonl.2", "scoring.jsonl.3"]
    assert all((folder / f).stat().st_size <= 2000 for f in files)


class Exploding:
    def respond(self, frame: pd.DataFrame) -> pd.DataFrame:
        raise ValueError(f"cannot score {frame['text'].iloc[0]}")


def test_a_model_error_is_a_500_whose_log_names_no_ticket_text(
    make_client: ClientFactory, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeRegistry()
    fake.versions[("itsm-routing", "1")] = Exploding()
    fake.aliases["itsm-routing"] = "1"
    client = make_client(registry=fake)
    with caplog.at_level(logging.INFO):
        response = client.post(
            "/v1/triage",
            json={"short_description": "my salary slip"},
            headers=auth(tokens["tickets"]),
        )
    assert response.status_code == 500
    assert "ValueError" in caplog.text
    assert "salary" not in caplog.text
    assert "salary" not in response.text


def test_write_back_patches_the_ticket_once(
    make_client: ClientFactory, tokens: dict[str, str], tickets: pd.DataFrame, project: Path
) -> None:
    from itsm_ml.serving.writeback import ServiceNowWriter

    record = incident_records(tickets, 1)[0]
    with FakeServiceNow(user="bot", password="pw") as itsm:
        itsm.seed(record["sys_id"], short_description=record["short_description"])
        writer = ServiceNowWriter(itsm.url, ("bot", "pw"), sleep=lambda s: None)
        client = make_client(writer=writer)
        for _ in range(2):  # the ITSM replays its call: still one note
            response = client.post(
                "/v1/triage?write_back=true", json=record, headers=auth(tokens["tickets"])
            )
            assert response.status_code == 200
        journal = itsm.journal(record["sys_id"])
        assert len(journal) == 1
        routing = response.json()["answers"]["routing"]
        assert "itsm-routing v1" in journal[0]
        if routing["decision"] == "auto_route":
            assert itsm.record(record["sys_id"])["assignment_group"] == routing["value"]
        else:
            assert routing["suggestions"][0]["value"] in journal[0]
    audit = (project / "reports" / "audit" / "scoring.jsonl").read_text()
    assert '"write_back":"written"' in audit
    assert '"write_back":"already_written"' in audit


def test_write_back_without_a_target_is_refused(
    make_client: ClientFactory, tokens: dict[str, str]
) -> None:
    response = make_client().post(
        "/v1/triage?write_back=true", json={"sys_id": "a1"}, headers=auth(tokens["tickets"])
    )
    assert response.status_code == 409
    assert "serving.writeback.url" in response.json()["detail"]


def test_the_checked_in_openapi_schema_matches_the_service(project: Path, params: Params) -> None:
    served = create_app(build_service(params, project), poll=False).openapi()
    checked_in = json.loads((ROOT / "reports" / "openapi.json").read_text())
    assert checked_in == served, "run: itsm-ml serve --openapi reports/openapi.json"


def test_concurrent_change_requests_are_not_each_others_calendar(
    project: Path, params: Params, registry_with_routing: FakeRegistry, tokens: dict[str, str]
) -> None:
    import asyncio

    import httpx

    from itsm_ml.serving.champions import Champions

    champions = Champions(
        ["itsm-change-risk"], resolve=registry_with_routing.resolve, load=registry_with_routing.load
    )
    champions.refresh()
    app = create_app(build_service(params, project, champions=champions), poll=False)
    window = {
        "start_date": "2025-10-03 22:00:00",
        "end_date": "2025-10-04 02:00:00",
        "cmdb_ci": "CI 3",
        "opened_at": "2025-10-01 09:00:00",
    }

    async def both() -> list[dict[str, Any]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answers = await asyncio.gather(
                    *(
                        client.post(
                            "/v1/change-risk",
                            json={**window, "number": number},
                            headers=auth(tokens["changes"]),
                        )
                        for number in ("CHG1", "CHG2")
                    )
                )
        return [a.json() for a in answers]

    first, second = asyncio.run(both())
    assert not any("CHG2" in c for c in first["conflicts"])
    assert not any("CHG1" in c for c in second["conflicts"])


# ----------------------------------------------------------------------------- the catalog


def with_models(models: dict[str, Any]) -> Params:
    """params.yaml as checked in with its `models` catalog replaced: a params edit, no code."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    return parse_params({**raw, "models": models})


def watched(params: Params, project: Path) -> list[str]:
    """The registered models the service, built from `params` alone, follows in the registry."""
    service = build_service(params, project)
    try:
        return [status.name for status in service.champions.statuses()]
    finally:
        service.audit.close()


@pytest.fixture(scope="module")
def impact_model(tickets: pd.DataFrame) -> TriageModel:
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    model = TriageModel(categorical=["caller", "channel", "ci", "service"], n_jobs=1)
    label = "label_impact"
    return model.fit(split.train, split.train[label], split.valid, split.valid[label])


def test_a_ticket_model_added_to_the_catalog_is_served_without_code_change(
    make_client: ClientFactory,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
    registry_with_routing: FakeRegistry,
    impact_model: TriageModel,
    project: Path,
) -> None:
    declared = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["models"]
    impact = {"table": "tickets", "kind": "multiclass", "label": "impact"}
    params = with_models({**declared, "impact": impact})
    assert watched(params, project) == [
        "itsm-routing", "itsm-category", "itsm-priority", "itsm-impact", "itsm-change-risk",
        "itsm-ticket-similarity", "itsm-incident-surges",
    ]  # fmt: skip
    registry_with_routing.versions[("itsm-impact", "1")] = impact_model
    registry_with_routing.aliases["itsm-impact"] = "1"
    client = make_client(params)

    record = incident_records(tickets, 1)[0]
    response = client.post("/v1/triage", json=record, headers=auth(tokens["tickets"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["answers"]) == {"routing", "impact"}
    assert body["unavailable"] == ["category", "priority"]
    answer = body["answers"]["impact"]
    assert (answer["model"], answer["version"], answer["field"]) == ("itsm-impact", "1", "impact")
    canonical = incidents_to_canonical(incident_frame([Incident(**record)]))
    expected = impact_model.respond(canonical).iloc[0]
    assert expected["label"] in {"1 - High", "2 - Medium", "3 - Low"}
    assert answer["suggestions"][0]["value"] == expected["label"]
    assert answer["probability"] == pytest.approx(expected["probability"])
    assert response.headers["X-Model-Versions"] == "itsm-impact=1,itsm-routing=1"

    listed = client.get("/v1/models", headers=auth(tokens["models"]))
    assert listed.status_code == 200, listed.text
    served = {m["name"]: (m["serves"], m["version"]) for m in listed.json()["models"]}
    assert served == {
        "itsm-routing": ("tickets: routing", "1"),
        "itsm-category": ("tickets: category", None),
        "itsm-priority": ("tickets: priority", None),
        "itsm-impact": ("tickets: impact", "1"),
        "itsm-change-risk": ("changes: risk", "3"),
        "itsm-ticket-similarity": ("tickets: similar, resolution", None),
        "itsm-incident-surges": ("metrics: anomaly (incident-surges)", None),
    }


def test_a_catalog_of_routing_alone_serves_routing_and_no_change_risk(
    make_client: ClientFactory, tokens: dict[str, str], tickets: pd.DataFrame, project: Path
) -> None:
    params = with_models(
        {"routing": {"table": "tickets", "kind": "multiclass", "label": "assignment_group"}}
    )
    assert watched(params, project) == ["itsm-routing"]
    # The registry still holds an itsm-change-risk champion: the catalog alone decides.
    client = make_client(params)
    assert client.get("/readyz").json()["detail"]["champions"] == {"itsm-routing": "1"}

    record = incident_records(tickets, 1)[0]
    response = client.post("/v1/triage", json=record, headers=auth(tokens["tickets"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["answers"]) == {"routing"}
    assert body["unavailable"] == []
    assert response.headers["X-Model-Versions"] == "itsm-routing=1"

    listed = client.get("/v1/models", headers=auth(tokens["models"])).json()["models"]
    assert [(m["name"], m["serves"], m["version"]) for m in listed] == [
        ("itsm-routing", "tickets: routing", "1")
    ]

    undeclared = "params.yaml declares no model of the changes table under `models`"
    one = client.post("/v1/change-risk", json={"number": "CHG1"}, headers=auth(tokens["changes"]))
    assert one.status_code == 503
    assert one.json()["detail"] == undeclared
    batch = client.post(
        "/v1/change-risk/batch",
        json={"records": [{"number": "CHG1"}]},
        headers=auth(tokens["changes"]),
    )
    assert batch.status_code == 503
    assert batch.json()["detail"] == undeclared
