"""`/v1/similar` and `/v1/resolution`: the knowledge model's answers through the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from itsm_ml.config import Params
from itsm_ml.data.sources.servicenow import incidents_to_canonical
from itsm_ml.knowledge.model import SimilarityModel
from itsm_ml.serving.api import Incident
from itsm_ml.serving.scoring import incident_frame
from tests.fakes.servicenow import FakeServiceNow
from tests.unit.serving.conftest import SIMILARITY as NAME
from tests.unit.serving.conftest import (
    ClientFactory,
    FakeRegistry,
    auth,
    incident_records,
    with_similarity,
)


@pytest.fixture
def registry(registry_with_routing: FakeRegistry, similarity_model: SimilarityModel) -> Any:
    return with_similarity(registry_with_routing, similarity_model)


def expected(model: SimilarityModel, record: dict[str, Any]) -> pd.Series:
    """The model's own answer for the record read as the service reads it."""
    return model.respond(incidents_to_canonical(incident_frame([Incident(**record)]))).iloc[0]


def test_similar_returns_earlier_tickets_with_their_resolution(
    make_client: ClientFactory,
    registry: FakeRegistry,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
    similarity_model: SimilarityModel,
) -> None:
    client = make_client(registry=registry)
    record = {**incident_records(tickets, 1)[0], "opened_at": "2025-03-01 12:00:00"}
    response = client.post("/v1/similar", json=record, headers=auth(tokens["tickets"]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"], body["number"]) == (NAME, "2", record["number"])
    assert response.headers["X-Model-Versions"] == f"{NAME}=2"
    neighbours = body["neighbours"]
    assert len(neighbours) == 4
    assert all(n["opened_at"] < "2025-03-01T12:00:00" for n in neighbours)
    assert [n["id"] for n in neighbours] == [
        n["id"] for n in expected(similarity_model, record)["neighbours"]
    ]
    assert set(neighbours[0]["fields"]) == {
        "label_knowledge",
        "label_resolution_notes",
        "label_category",
    }
    assert 0 <= neighbours[0]["relevance"] <= 1
    more = client.post("/v1/similar?k=7", json=record, headers=auth(tokens["tickets"])).json()
    assert len(more["neighbours"]) == 7
    assert [n["id"] for n in more["neighbours"][:4]] == [n["id"] for n in neighbours]


def test_resolution_suggests_with_its_probability_runbook_and_evidence(
    make_client: ClientFactory,
    registry: FakeRegistry,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
    similarity_model: SimilarityModel,
) -> None:
    client = make_client(registry=registry)
    records = incident_records(tickets, 30)
    batch = client.post(
        "/v1/resolution/batch", json={"records": records}, headers=auth(tokens["tickets"])
    )
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["number"] for r in results] == [r["number"] for r in records]
    for record, result in zip(records, results, strict=True):
        own = expected(similarity_model, record)
        assert result["field"] == "knowledge"
        assert result["suggestions"][0]["value"] == own["label"]
        assert result["probability"] == pytest.approx(own["probability"])
        assert result["decision"] == ("auto_suggest" if own["auto_suggest"] else "suggest")
        assert (result["value"] is not None) == bool(own["auto_suggest"])
        vpn = record.get("business_service") == "VPN"
        assert result["runbook"] == ("RB-VPN" if vpn else None)
        assert len(result["neighbours"]) == 4
    single = client.post("/v1/resolution", json=records[3], headers=auth(tokens["tickets"]))
    # Alone or in a batch, the same answer (float32 products may differ in the last digits).
    alone, batched = single.json(), results[3]
    assert alone["probability"] == pytest.approx(batched["probability"], rel=1e-6)
    assert [n["id"] for n in alone["neighbours"]] == [n["id"] for n in batched["neighbours"]]
    assert [s["value"] for s in alone["suggestions"]] == [
        s["value"] for s in batched["suggestions"]
    ]


def test_knowledge_needs_the_tickets_scope_and_a_champion(
    make_client: ClientFactory,
    registry: FakeRegistry,
    registry_with_routing: FakeRegistry,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
) -> None:
    record = incident_records(tickets, 1)[0]
    client = make_client(registry=registry)
    assert client.post("/v1/similar", json=record).status_code == 401
    denied = client.post("/v1/resolution", json=record, headers=auth(tokens["changes"]))
    assert denied.status_code == 403
    del registry.aliases[NAME]
    missing = make_client(registry=registry).post(
        "/v1/similar", json=record, headers=auth(tokens["tickets"])
    )
    assert missing.status_code == 503
    assert f"itsm-ml promote {NAME}" in missing.json()["detail"]


def test_the_audit_names_neighbours_but_never_their_notes(
    make_client: ClientFactory,
    registry: FakeRegistry,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
    project: Path,
) -> None:
    record = incident_records(tickets, 1)[0]
    answer = (
        make_client(registry=registry)
        .post("/v1/resolution", json=record, headers=auth(tokens["tickets"]))
        .json()
    )
    audit = (project / "reports" / "audit" / "scoring.jsonl").read_text()
    assert answer["neighbours"][0]["id"] in audit
    notes = [n["fields"]["label_resolution_notes"] for n in answer["neighbours"]]
    assert notes and not any(note and note in audit for note in notes)
    assert record["short_description"] not in audit


def test_write_back_adds_one_work_note_and_sets_no_field(
    make_client: ClientFactory,
    registry: FakeRegistry,
    tokens: dict[str, str],
    tickets: pd.DataFrame,
    params: Params,
) -> None:
    from itsm_ml.serving.writeback import ServiceNowWriter

    record = incident_records(tickets, 1)[0]
    with FakeServiceNow(user="bot", password="pw") as itsm:
        itsm.seed(record["sys_id"], short_description=record["short_description"])
        writer = ServiceNowWriter(itsm.url, ("bot", "pw"), sleep=lambda s: None)
        client = make_client(registry=registry, writer=writer)
        for _ in range(2):
            response = client.post(
                "/v1/resolution?write_back=true", json=record, headers=auth(tokens["tickets"])
            )
            assert response.status_code == 200
        journal = itsm.journal(record["sys_id"])
        assert len(journal) == 1
        answer = response.json()
        assert f"{NAME} v2" in journal[0]
        assert answer["suggestions"][0]["value"] in journal[0]
        assert answer["neighbours"][0]["id"] in journal[0]
        assert "close_code" not in itsm.record(record["sys_id"])
