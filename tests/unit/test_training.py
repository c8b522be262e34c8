"""Train and evaluate any model of the catalog; a model this export cannot learn is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest

from itsm_ml import io
from itsm_ml.catalog import ModelLayout, Skipped
from itsm_ml.config import Params, parse_params
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import time_split
from itsm_ml.data.stage import Layout
from itsm_ml.training import evaluate, train

GENERATOR = {"kind": "generator", "rows": 1500, "seed": 3}


def params(models: dict[str, object]) -> Params:
    return parse_params(
        {
            "tickets": {"source": GENERATOR},
            "changes": {"source": GENERATOR},
            "models": models,
            "triage": {"n_jobs": 1, "model": {"n_estimators": 40}},
        }
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    tickets = load_table("tickets", params({}).tickets.source)
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    for part in ("train", "valid", "test"):
        io.write_table(getattr(split, part), Layout(tmp_path, "tickets").split(part))
    return tmp_path


def test_a_new_target_is_a_params_entry_trained_evaluated_and_registered(project: Path) -> None:
    declared = params(
        {
            "impact": {"table": "tickets", "kind": "multiclass", "label": "impact"},
            "sla": {"table": "tickets", "kind": "binary", "label": "made_sla"},
        }
    )
    for name in ("impact", "sla"):
        summary = train(declared, name, project)
        assert summary.figures["model"] == name and summary.figures["classes"] >= 2
        outcome = evaluate(declared, name, project)
        assert outcome.figures["registered"] == f"itsm-{name} v1"
        layout = ModelLayout(project, name)
        headline = json.loads(layout.metrics.read_text())
        # A yes/no label is judged by how its probability ranks: ROC AUC first, beside the
        # best baseline's on the same rows.
        metric = {"impact": "accuracy", "sla": "auc"}[name]
        assert headline[metric] == outcome.figures[metric]
        assert headline[f"best baseline {metric}"] == headline[f"best baseline {metric}"]
        if name == "sla":
            assert {"auc", "pr_auc", "brier"} <= set(outcome.figures)
            # The generator's SLA outcome carries little signal: only that each is measured.
            assert all(0 <= outcome.figures[k] <= 1 for k in ("auc", "pr_auc", "brier"))
        assert (layout.evaluation / "confusion.png").read_bytes()[:4] == b"\x89PNG"
        assert f"# Model card: itsm-{name}" in layout.card.read_text()


def test_a_model_without_its_label_in_this_export_is_skipped_saying_why(project: Path) -> None:
    declared = params({"team": {"table": "tickets", "kind": "multiclass", "label": "team"}})
    skipped = train(declared, "team", project)
    assert isinstance(skipped, Skipped)
    assert "no `label_team` column (models.team.label in params.yaml)" in skipped.reason
    # ... and it says what the export could learn instead
    assert "made-sla: {table: tickets, kind: binary, label: made_sla}" in skipped.reason
    layout = ModelLayout(project, "team")
    assert isinstance(joblib.load(layout.model), Skipped)
    assert isinstance(evaluate(declared, "team", project), Skipped)
    assert json.loads(layout.metrics.read_text())["skipped"] is True
    assert "Not trained" in layout.card.read_text()
    assert json.loads(layout.registered.read_text())["skipped"] is True


def detector_project(root: Path, surges: dict[str, object]) -> Params:
    declared = parse_params(
        {
            "tickets": {"source": {**GENERATOR, "surges": surges}},
            "changes": {"source": GENERATOR},
            "models": {
                "surges": {"table": "tickets", "kind": "detector", "label": "parent_incident"}
            },
        }
    )
    tickets = load_table("tickets", declared.tickets.source)
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    for part in ("train", "valid", "test"):
        io.write_table(getattr(split, part), Layout(root, "tickets").split(part))
    return declared


def test_a_detector_is_judged_by_nab_on_test_and_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    declared = detector_project(tmp_path, {"count": 20, "tickets": 12, "hours": 3})
    trained = train(declared, "surges", tmp_path)
    assert trained.figures["method"] == "volume" and trained.figures["series"] >= 2
    outcome = evaluate(declared, "surges", tmp_path)
    assert outcome.figures["registered"] == "itsm-surges v1"
    assert outcome.figures["windows"] >= 1
    assert (
        outcome.figures["nab_standard"]
        == json.loads(ModelLayout(tmp_path, "surges").metrics.read_text())["nab_standard"]
    )
    card = ModelLayout(tmp_path, "surges").card.read_text()
    assert "sharing a `parent_incident`" in card and "| baseline: seasonal |" in card


def test_a_detector_without_labelled_windows_to_judge_by_is_skipped_saying_why(
    tmp_path: Path, project: Path
) -> None:
    # One surge, in the middle of the year: the test split has no outage to judge by.
    surged = tmp_path / "surged"
    declared = detector_project(surged, {"count": 1, "tickets": 12, "hours": 3})
    skipped = train(declared, "surges", surged)
    assert isinstance(skipped, Skipped)
    assert skipped.reason.startswith("no labelled window in the test split to judge it by")
    assert "`parent_incident`" in skipped.reason and "outage_min_tickets" in skipped.reason
    # An export without the link at all (no surges, no parent incidents): skipped as well.
    unlinked = train(declared, "surges", project)
    assert isinstance(unlinked, Skipped)
    assert "has no `label_parent_incident` column" in unlinked.reason
