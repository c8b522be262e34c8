"""POST /v1/anomaly: pushed points scored by a detector's champion, which moves on with them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.early_warning.model import DetectorModel
from itsm_ml.serving.tokens import STORE_NAME, TokenStore
from tests.unit.serving.conftest import DETECTOR, ClientFactory, FakeRegistry, auth, with_detector


@pytest.fixture
def registry(registry_with_routing: FakeRegistry, detector: DetectorModel) -> FakeRegistry:
    return with_detector(registry_with_routing, detector)


@pytest.fixture
def metrics_token(project: Path) -> str:
    return TokenStore(project / STORE_NAME).create("pusher", ["score:metrics"])[1]


def points(detector: DetectorModel, values: list[float], series: str = "service=Email") -> list:
    start = detector.last_seen_ + pd.Timedelta(hours=1)  # type: ignore[operator]
    return [
        {"series": series, "timestamp": (start + pd.Timedelta(hours=i)).isoformat(), "value": v}
        for i, v in enumerate(values)
    ]


def test_pushed_points_are_scored_in_order_by_the_champion_naming_its_version(
    make_client: ClientFactory,
    registry: FakeRegistry,
    detector: DetectorModel,
    metrics_token: str,
    project: Path,
) -> None:
    client = make_client(registry=registry)
    sent = points(detector, [1.0, 0.0, 45.0]) + points(detector, [0.0], "service=VPN")
    response = client.post("/v1/anomaly", json={"points": sent}, headers=auth(metrics_token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == (DETECTOR, "4")
    assert body["threshold"] == pytest.approx(detector.threshold_)
    assert [(p["series"], p["value"]) for p in body["points"]] == [
        (p["series"], p["value"]) for p in sent
    ]
    assert [p["alarm"] for p in body["points"]] == [False, False, True, False]
    assert body["alarms"] == 1 and response.headers["X-Model-Versions"] == f"{DETECTOR}=4"
    # The same scores as the registered detector gives those points.
    expected = detector.fresh().respond(pd.DataFrame(sent))
    assert [p["score"] for p in body["points"]] == pytest.approx(expected.score.tolist())
    audit = [
        json.loads(line)
        for line in (project / "reports/audit/scoring.jsonl").read_text().splitlines()
    ]
    assert audit[-1]["models"] == {DETECTOR: "4"} and audit[-1]["points"] == 4
    assert audit[-1]["decisions"] == {"alarm": ["service=Email"]}
    assert "45.0" not in json.dumps(audit[-1])


def test_the_detector_moves_on_and_a_point_from_the_past_is_refused_without_moving_it(
    make_client: ClientFactory, registry: FakeRegistry, detector: DetectorModel, metrics_token: str
) -> None:
    client = make_client(registry=registry)
    first, second = points(detector, [1.0, 2.0]), points(detector, [1.0, 2.0, 3.0, 4.0])[2:]
    assert client.post(
        "/v1/anomaly", json={"points": first}, headers=auth(metrics_token)
    ).is_success
    stale = client.post(
        "/v1/anomaly", json={"points": [*second, first[0]]}, headers=auth(metrics_token)
    )
    assert stale.status_code == 422
    assert "'service=Email'" in stale.json()["detail"]
    assert "earlier than the last point" in stale.json()["detail"]
    # Nothing of the refused batch was scored: the next points continue from `first`.
    after = client.post("/v1/anomaly", json={"points": second}, headers=auth(metrics_token))
    reference = detector.fresh()
    reference.respond(pd.DataFrame(first))
    expected = reference.respond(pd.DataFrame(second)).score.tolist()
    assert [p["score"] for p in after.json()["points"]] == pytest.approx(expected)


def test_an_offset_is_read_as_utc(
    make_client: ClientFactory, registry: FakeRegistry, detector: DetectorModel, metrics_token: str
) -> None:
    client = make_client(registry=registry)
    sent = points(detector, [3.0])
    local = pd.Timestamp(sent[0]["timestamp"]).tz_localize("UTC").tz_convert("Europe/Paris")
    sent[0]["timestamp"] = local.isoformat()
    response = client.post("/v1/anomaly", json={"points": sent}, headers=auth(metrics_token))
    assert response.status_code == 200, response.text
    scored_at = pd.Timestamp(response.json()["points"][0]["timestamp"])
    assert scored_at == detector.last_seen_ + pd.Timedelta(hours=1)


def test_scope_model_name_and_champion_are_checked(
    make_client: ClientFactory,
    registry: FakeRegistry,
    detector: DetectorModel,
    metrics_token: str,
    tokens: dict[str, str],
) -> None:
    client = make_client(registry=registry)
    body = {"points": points(detector, [1.0])}
    assert client.post("/v1/anomaly", json=body, headers=auth(tokens["tickets"])).status_code == 403
    assert client.post("/v1/anomaly", json=body, headers=auth(tokens["admin"])).is_success
    unknown = client.post(
        "/v1/anomaly", json={**body, "model": "routing"}, headers=auth(metrics_token)
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == (
        "model 'routing' is not a detector of the catalog (detectors: incident-surges)"
    )
    by_name = client.post(
        "/v1/anomaly",
        json={"points": points(detector, [1.0, 1.0])[1:], "model": "incident-surges"},
        headers=auth(metrics_token),
    )
    assert by_name.is_success, by_name.text
    nan = client.post(
        "/v1/anomaly",
        content=b'{"points": [{"series": "a", "timestamp": "2026-01-01T00:00:00", "value": NaN}]}',
        headers={**auth(metrics_token), "Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    # Beyond what a detector's clock holds (pandas' nanoseconds): refused, naming the field.
    ancient = {"points": [{"series": "a", "timestamp": "0782-02-10T15:40:49", "value": 1.0}]}
    old = client.post("/v1/anomaly", json=ancient, headers=auth(metrics_token))
    assert old.status_code == 422 and "timestamp" in old.text and "0782" not in old.text
    registry.aliases.pop(DETECTOR)
    empty = make_client(registry=registry)
    gone = empty.post("/v1/anomaly", json=body, headers=auth(metrics_token))
    assert gone.status_code == 503 and "promote one" in gone.json()["detail"]
