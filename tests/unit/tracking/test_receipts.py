"""Receipts: DVC re-runs what a new or reset tracking store does not hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from itsm_ml.tracking import registry
from itsm_ml.tracking.receipts import prune_stale, receipt_path, write_receipt


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The embedded store at the project root, as `make run` uses it.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _real_run(root: Path) -> str:
    import mlflow

    registry.configure(root)
    with mlflow.start_run() as run:
        return str(run.info.run_id)


def test_a_fresh_clone_without_a_store_prunes_every_receipt_naming_a_run(root: Path) -> None:
    write_receipt(root, "routing", "evaluate", {"name": "r", "version": "1", "run_id": "abc"})
    write_receipt(root, "routing", "drift", {"version": "1", "run_id": "abc"})
    write_receipt(root, "priority", "evaluate", {"skipped": True})

    stale = prune_stale(root)

    assert sorted(p.name for p in stale) == ["drift.json", "evaluate.json"]
    assert not receipt_path(root, "routing", "evaluate").exists()
    assert not receipt_path(root, "routing", "drift").exists()
    # A skipped model put nothing in the store: its receipt holds whatever the store is.
    assert receipt_path(root, "priority", "evaluate").exists()
    assert not (root / "mlflow.db").exists(), "pruning must not create an empty store"


def test_receipts_of_runs_the_store_holds_stay_and_others_go(root: Path) -> None:
    held = _real_run(root)
    write_receipt(root, "routing", "evaluate", {"version": "2", "run_id": held})
    write_receipt(root, "category", "evaluate", {"version": "1", "run_id": "0" * 32})

    stale = prune_stale(root)

    assert stale == [receipt_path(root, "category", "evaluate")]
    kept = json.loads(receipt_path(root, "routing", "evaluate").read_text())
    assert kept["run_id"] == held
    assert kept["tracking_uri"] == registry.tracking_uri(root)


def test_an_unreadable_receipt_is_stale(root: Path) -> None:
    _real_run(root)
    path = receipt_path(root, "routing", "drift")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")

    assert prune_stale(root) == [path]
    assert not path.exists()


def test_no_receipts_is_nothing_to_do(root: Path) -> None:
    assert prune_stale(root) == []
