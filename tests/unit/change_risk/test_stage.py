"""The change-risk stages on a generated split, in a temporary project with its own store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml import io
from itsm_ml.catalog import ModelLayout, Skipped
from itsm_ml.config import Params, parse_params
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import time_split
from itsm_ml.data.stage import Layout
from itsm_ml.training import evaluate, train


def params(**change_risk: object) -> Params:
    generator = {"kind": "generator", "rows": 2500, "seed": 5}
    return parse_params(
        {
            "tickets": {"source": generator},
            "changes": {"source": generator},
            "change_risk": {"n_jobs": 1, **change_risk},
        }
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    changes = load_table("changes", params().changes.source)
    split = time_split(changes, "opened_at", 0.2, 0.2)
    layout = Layout(tmp_path, "changes")
    for part in ("train", "valid", "test"):
        io.write_table(getattr(split, part), layout.split(part))
    return tmp_path


def test_train_then_evaluate_writes_reports_card_and_registers(project: Path) -> None:
    import mlflow

    summary = train(params(), "change-risk", project)
    layout = ModelLayout(project, "change-risk")
    assert layout.model.exists() and summary.figures["boosting_rounds"] >= 1
    assert list(summary.figures["band_thresholds"]) == ["very high", "high", "medium"]
    outcome = evaluate(params(), "change-risk", project)
    assert outcome.figures["registered"] == "itsm-change-risk v1"
    headline = json.loads(layout.metrics.read_text())
    assert headline["skipped"] is False and headline["auc"] == outcome.figures["auc"]
    assert headline["best baseline auc"] < headline["auc"]
    metrics = json.loads((layout.evaluation / "metrics.json").read_text())
    assert 0.5 < metrics["auc"] <= 1 and "failure rate of its change type" in metrics["baselines"]
    for name in ("curves.png", "reliability.png", "bands.png"):
        assert (layout.evaluation / name).read_bytes()[:4] == b"\x89PNG"
    bands = pd.read_csv(layout.evaluation / "bands.csv")
    assert bands.changes.sum() == metrics["rows"]
    card = layout.card.read_text()
    assert "## Risk bands" in card and "| very high | >= " in card
    listing = pd.read_csv(layout.evaluation / "test_changes.csv")
    assert listing.probability.is_monotonic_decreasing
    version = mlflow.MlflowClient().get_model_version_by_alias("itsm-change-risk", "challenger")
    run = mlflow.get_run(version.run_id)
    assert run.data.tags["model"] == "change-risk"
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {
        "changes-training",
        "changes-validation",
        "changes-testing",
    }


def test_a_training_split_without_failures_is_skipped_saying_why(project: Path) -> None:
    import joblib

    layout = Layout(project, "changes")
    train_rows = io.read_table(layout.split("train"))
    io.write_table(train_rows.assign(label_failed=False), layout.split("train"))
    outcome = train(params(), "change-risk", project)
    assert isinstance(outcome, Skipped) and "one value only" in outcome.reason
    assert isinstance(joblib.load(ModelLayout(project, "change-risk").model), Skipped)
    assert isinstance(evaluate(params(), "change-risk", project), Skipped)
    card = ModelLayout(project, "change-risk").card.read_text()
    assert "Not trained" in card and "label_failed" in card


def test_bands_by_precision_come_from_params(project: Path) -> None:
    summary = train(
        params(bands={"act now": {"precision": 0.4}, "look": {"recall": 0.8}}),
        "change-risk",
        project,
    )
    thresholds = summary.figures["band_thresholds"]
    assert list(thresholds) == ["act now", "look"]
    assert thresholds["act now"] >= thresholds["look"]
