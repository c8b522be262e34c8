"""Outputs that claim what the tracking store does not hold are found and deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itsm_ml.catalog import Catalog, catalog
from itsm_ml.config import load_params
from itsm_ml.promotion.registry_sync import DRIFT_MARK, stale_outputs, sync
from itsm_ml.tracking import registry

ROOT = Path(__file__).parents[3]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The embedded store at the project root, as `make run` uses it.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture
def known() -> Catalog:
    return catalog(load_params(ROOT / "params.yaml"))


def _claim(root: Path, *, passed: bool = True) -> dict[str, Path]:
    """What a finished pipeline run leaves for routing: registered v1, drift, a decision."""
    paths = {
        "evaluate": root / "reports/models/routing/registered.json",
        "drift": root / "reports/drift/routing/metrics.json",
        "promote": root / "reports/promotion/routing.json",
    }
    contents = {
        "evaluate": {"name": "itsm-routing", "version": "1"},
        "drift": {"windows": 3},
        "promote": {"challenger": "1", "passed": passed, "forced": False},
    }
    for stage, path in paths.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(contents[stage]))
    return paths


def _registered(root: Path, *, drift: bool, champion: bool) -> None:
    client = registry.client(root)
    client.create_registered_model("itsm-routing")
    client.create_model_version("itsm-routing", source=str(root / "model"))
    if drift:
        client.set_model_version_tag("itsm-routing", "1", DRIFT_MARK, "3")
    if champion:
        client.set_registered_model_alias("itsm-routing", "champion", "1")


def test_a_fresh_clone_reruns_evaluate_drift_and_promote(root: Path, known: Catalog) -> None:
    paths = _claim(root)

    stale = sync(root, known)

    assert {(s.stage, s.model) for s in stale} == {
        ("evaluate", "routing"),
        ("drift", "routing"),
        ("promote", "routing"),
    }
    assert all("itsm-routing v1 is not in the store" in str(s) for s in stale)
    assert not any(path.exists() for path in paths.values())
    assert not (root / "mlflow.db").exists(), "looking must not create an empty store"


def test_a_store_that_holds_everything_leaves_everything(root: Path, known: Catalog) -> None:
    paths = _claim(root)
    _registered(root, drift=True, champion=True)
    assert sync(root, known) == []
    assert all(path.exists() for path in paths.values())


def test_a_version_without_drift_figures_reruns_drift_and_the_gate(
    root: Path, known: Catalog
) -> None:
    _claim(root)
    _registered(root, drift=False, champion=True)
    stale = stale_outputs(root, known)
    assert [(s.stage, s.why) for s in stale] == [
        ("drift", "itsm-routing v1 carries no drift figures"),
        ("promote", "itsm-routing v1 carries no drift figures"),
    ]


@pytest.mark.parametrize(("passed", "reruns"), [(True, True), (False, False)])
def test_only_a_promotion_the_store_lost_is_redone(
    root: Path, known: Catalog, passed: bool, reruns: bool
) -> None:
    _claim(root, passed=passed)
    _registered(root, drift=True, champion=False)
    stale = stale_outputs(root, known)
    assert [s.stage for s in stale] == (["promote"] if reruns else [])


def test_a_skipped_model_claims_nothing(root: Path, known: Catalog) -> None:
    path = root / "reports/models/routing/registered.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"skipped": True, "reason": "no label"}))
    assert stale_outputs(root, known) == []
