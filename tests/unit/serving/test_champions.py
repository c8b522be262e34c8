"""Champions follow the registry's alias: loaded before the swap, old versions keep serving."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from itsm_ml.serving.champions import Champions, champion_version, load_version
from itsm_ml.tracking import registry
from itsm_ml.triage.model import TriageModel
from tests.registering import register
from tests.unit.serving.conftest import FakeRegistry


def test_a_moved_alias_is_loaded_then_swapped_and_the_old_version_still_answers(
    routing_model: TriageModel, tickets: pd.DataFrame
) -> None:
    fake = FakeRegistry()
    first, second = routing_model, copy.deepcopy(routing_model)
    fake.versions.update({("m", "1"): first, ("m", "2"): second})
    fake.aliases["m"] = "1"
    champions = Champions(["m"], resolve=fake.resolve, load=fake.load)
    assert not champions.ready
    assert champions.refresh() == ["m: none -> 1"]
    assert champions.ready
    in_flight = champions.get("m")
    assert in_flight is not None and in_flight.model is first
    assert champions.refresh() == []  # unchanged alias: nothing loaded again
    assert fake.loads == 1
    fake.aliases["m"] = "2"
    assert champions.refresh() == ["m: 1 -> 2"]
    now = champions.get("m")
    assert now is not None and (now.version, now.model) == ("2", second)
    # A request that took version 1 before the swap finishes with it.
    assert len(in_flight.model.respond(tickets.head(3))) == 3
    assert in_flight.version == "1"


def test_a_version_that_fails_to_load_leaves_the_old_one_serving() -> None:
    fake = FakeRegistry()
    fake.versions[("m", "1")] = object()
    fake.aliases["m"] = "1"
    champions = Champions(["m"], resolve=fake.resolve, load=fake.load)
    champions.refresh()
    fake.aliases["m"] = "2"  # not loadable: missing from the fake
    assert champions.refresh() == []
    loaded = champions.get("m")
    assert loaded is not None and loaded.version == "1"
    (status,) = champions.statuses()
    assert status.error is not None and "version 2 failed to load" in status.error


def test_an_unreachable_registry_keeps_the_champion_and_says_so() -> None:
    fake = FakeRegistry()
    fake.versions[("m", "1")] = object()
    fake.aliases["m"] = "1"
    reachable = True

    def resolve(name: str) -> str | None:
        if not reachable:
            raise ConnectionError("registry down")
        return fake.resolve(name)

    champions = Champions(["m"], resolve=resolve, load=fake.load)
    champions.refresh()
    reachable = False
    champions.refresh()
    assert champions.get("m") is not None
    assert "registry not reachable" in (champions.statuses()[0].error or "")


def test_a_removed_alias_stops_serving_that_model() -> None:
    fake = FakeRegistry()
    fake.versions[("m", "1")] = object()
    fake.aliases["m"] = "1"
    champions = Champions(["m"], resolve=fake.resolve, load=fake.load)
    champions.refresh()
    del fake.aliases["m"]
    assert champions.refresh() == ["m: 1 -> none (alias removed)"]
    assert champions.get("m") is None


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def test_champions_are_read_from_the_mlflow_registry(
    tracking: Path, routing_model: TriageModel, tickets: pd.DataFrame
) -> None:
    import mlflow

    example = tickets[["caller", "channel", "ci", "service", "text"]].head(3)
    versions = register(routing_model, tracking, "itsm-routing", example, times=2)
    assert champion_version("itsm-routing") is None
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("itsm-routing", registry.CHAMPION, versions[0])
    champions = Champions(["itsm-routing", "itsm-category"])
    assert champions.refresh() == ["itsm-routing: none -> 1"]
    assert champions.get("itsm-category") is None
    client.set_registered_model_alias("itsm-routing", registry.CHAMPION, versions[1])
    assert champions.refresh() == ["itsm-routing: 1 -> 2"]
    loaded: Any = load_version("itsm-routing", "2")
    expected = routing_model.respond(example)
    pd.testing.assert_frame_equal(loaded.respond(example), expected)
