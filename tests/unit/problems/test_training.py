"""A `recurrence` model through the catalog's stages: trained with its threshold chosen on
validation, judged on test beside the key baseline, registered with its state, watched for
its review load, gated against the key baseline; skipped when test has no problem."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pandas as pd
import pytest

from itsm_ml import io
from itsm_ml.catalog import ModelLayout, Skipped
from itsm_ml.config import Params, parse_params
from itsm_ml.data.stage import Layout
from itsm_ml.training import evaluate, train
from tests.unit.problems.test_model import TEST_START, VALID_START, history

GENERATOR = {"kind": "generator", "rows": 200, "seed": 3}


def declared(budget: float = 12.0) -> Params:
    return parse_params(
        {
            "tickets": {"source": GENERATOR},
            "changes": {"source": GENERATOR},
            "models": {"issues": {"table": "tickets", "kind": "recurrence", "label": "problem_id"}},
            "problems": {
                "threshold": 0.95,
                "tried": [0.5],
                "rule": {"min_records": 4, "min_callers": 3, "window_days": 14},
                "max_candidates_per_month": budget,
            },
        }
    )


def write_splits(root: Path, tickets: pd.DataFrame) -> None:
    opened = tickets["opened_at"]
    parts = {
        "train": tickets[opened < VALID_START],
        "valid": tickets[(opened >= VALID_START) & (opened < TEST_START)],
        "test": tickets[opened >= TEST_START],
    }
    for name, frame in parts.items():
        io.write_table(frame.reset_index(drop=True), Layout(root, "tickets").split(name))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    write_splits(tmp_path, history())
    # What the validate stage would have recorded: the gate's first check reads it.
    io.write_json({"passed": True}, tmp_path / "reports/validation/tickets.metrics.json")
    return tmp_path


def test_a_recurrence_model_is_tuned_judged_registered_watched_and_gated(project: Path) -> None:
    import mlflow

    from itsm_ml.monitoring.stage import drift
    from itsm_ml.promotion.stage import promote

    params = declared()
    trained = train(params, "issues", project)
    assert trained.figures["threshold"] == 0.5 and len(trained.figures["tried"]) == 2
    outcome = evaluate(params, "issues", project)
    assert outcome.figures["registered"] == "itsm-issues v1"
    assert outcome.figures["problems_raised"] == 1
    layout = ModelLayout(project, "issues")
    headline = json.loads(layout.metrics.read_text())
    assert headline["problems_raised_share"] == 1.0
    assert headline["best baseline problems_raised_share"] == 0.0  # the key raised nothing
    card = layout.card.read_text()
    assert "| baseline: key (service) |" in card and "| 0.95 |" in card
    table = pd.read_csv(layout.evaluation / "per_problem.csv")
    assert table["problem"].tolist() == ["PRB1"] and table["raised"].tolist() == [True]
    assert (layout.evaluation / "candidates.png").read_bytes()[:4] == b"\x89PNG"

    # The registered version carries the groups open when training stopped.
    loaded = mlflow.pyfunc.load_model("models:/itsm-issues@challenger")
    answer = loaded.predict(
        pd.DataFrame(
            {
                "ticket_id": ["NEW1"],
                "opened_at": [TEST_START],
                "text": ["Password reset request"],
                "caller": ["x"],
                "service": ["Identity"],
            }
        )
    )
    assert answer["new_group"].tolist() == [False]

    watched = drift(params, "issues", project)
    assert watched.figures["performance_metric"] == "candidates per month"
    assert watched.figures["windows"] >= 1 and watched.figures["alert_windows"] == 0
    decision = promote(params, "issues", project)
    assert decision.promoted
    compared = next(c for c in decision.checks if "key baseline" in c.name)
    assert "problems_raised_share 1.000 > 0.000 of the key baseline (service)" in compared.detail
    # The same model again: no better than the champion it would replace, so refused.
    evaluate(params, "issues", project)
    again = promote(params, "issues", project)
    assert not again.promoted
    against = next(c for c in again.checks if "champion v1" in c.name)
    assert "below the required margin" in against.detail


def test_a_review_load_over_budget_period_after_period_alerts() -> None:
    from itsm_ml.monitoring.recurrence import periods, summary_of
    from itsm_ml.problems.model import RecurrenceModel

    params = declared(budget=0.1)
    frame = history()
    model = RecurrenceModel(label="label_problem_id", settings=params.problems)
    model.fit(frame[frame["opened_at"] < TEST_START], None, VALID_START)
    reports, _ = periods(model, params, frame, None, TEST_START)
    # Forty days of test in two periods, the fault raised in the first: over budget there.
    first = reports[0]
    assert first["over_budget"] and "candidates per month" in first["drifted_features"]
    assert first["performance"]["problems_raised"] == 1
    summary = summary_of(reports, {"name": "itsm-issues", "version": "1"}, "issues", params)
    assert summary["performance_drifted_windows"] >= 1 and summary["last_estimated"] == 0.1
    lenient = periods(model, declared(budget=50.0), frame, None, TEST_START)[0]
    assert not any(r["over_budget"] for r in lenient)


def test_without_a_problem_in_test_the_model_is_skipped_saying_why(project: Path) -> None:
    write_splits(project, history(fault_days=(95,)))
    skipped = train(declared(), "issues", project)
    assert isinstance(skipped, Skipped)
    assert skipped.reason.startswith("no problem to judge it by in the test split")
    assert isinstance(joblib.load(ModelLayout(project, "issues").model), Skipped)
