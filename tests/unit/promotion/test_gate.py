"""The gate's decision from figures, and the append-only ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.catalog import METRICS
from itsm_ml.config import PromotionParams
from itsm_ml.errors import ItsmMlError
from itsm_ml.promotion.gate import (
    Decision,
    Ledger,
    compare,
    drift_check,
    routing_check,
    validation_check,
    window_metrics,
)

SETTINGS = PromotionParams(margin=0.01, tolerance=0.02)


def test_the_challenger_must_beat_the_champion_by_the_margin() -> None:
    champion = {"accuracy": 0.80, "macro_f1": 0.60, "ece": 0.05}
    better = compare(
        METRICS["triage"],
        {"accuracy": 0.82, "macro_f1": 0.60, "ece": 0.05},
        champion,
        "champion v1",
        SETTINGS,
    )
    assert better.passed and "+0.0200" in better.detail
    marginal = compare(
        METRICS["triage"],
        {"accuracy": 0.805, "macro_f1": 0.7, "ece": 0.0},
        champion,
        "champion v1",
        SETTINGS,
    )
    assert not marginal.passed and "below the margin 0.01" in marginal.detail


def test_other_metrics_may_not_get_worse_beyond_the_tolerance() -> None:
    champion = {"auc": 0.70, "brier": 0.10, "ece": 0.02}
    worse_calibrated = {"auc": 0.75, "brier": 0.10, "ece": 0.05}  # lower is better for ECE
    check = compare(METRICS["change_risk"], worse_calibrated, champion, "champion v3", SETTINGS)
    assert not check.passed and "ece 0.0500 against 0.0200: worse by 0.0300" in check.detail
    # A baseline has no calibration: only the primary metric is compared.
    assert compare(
        METRICS["change_risk"], worse_calibrated, {"auc": 0.72}, "baseline", SETTINGS
    ).passed


def test_classes_below_target_precision_become_suggest_only_without_blocking() -> None:
    answer = pd.DataFrame(
        {
            "label": ["net"] * 30 + ["desk"] * 30 + ["sap"] * 5,
            "auto_route": [True] * 65,
            "probability": 0.95,
        }
    )
    truth = pd.Series(["net"] * 30 + ["desk"] * 20 + ["net"] * 10 + ["net"] * 5)
    check, suggest_only = routing_check(answer, truth, target=0.9, min_routed=20)
    assert check.passed and suggest_only == ("desk",)  # sap: too few to judge
    assert check.figures["desk"] == {"auto_routed": 30, "precision": pytest.approx(2 / 3)}


def test_validation_and_drift_records_are_required() -> None:
    assert validation_check({"validation.passed": "true"}).passed
    assert not validation_check({"validation.passed": "false"}).passed
    assert "no validation record" in validation_check({}).detail
    assert drift_check({"drift.alert_at_end": "False", "drift.alert_windows": "0"}).passed
    assert not drift_check({"drift.alert_at_end": "True"}).passed
    assert "run the drift stage first" in drift_check({}).detail


def test_a_decision_passes_only_if_every_check_does() -> None:
    ok, refused = validation_check({"validation.passed": "true"}), drift_check({})
    assert Decision("m", "2", "1", (ok,)).passed
    decision = Decision("m", "2", "1", (ok, refused))
    assert not decision.passed and decision.to_dict()["checks"][1]["passed"] is False


def test_window_metrics_read_a_pyfunc_answer() -> None:
    answer = pd.DataFrame({"label": ["a", "b", "a"], "probability": [0.9, 0.6, 0.8]})
    found = window_metrics("triage", answer, pd.Series(["a", "a", "a"]))
    assert found["accuracy"] == pytest.approx(2 / 3) and set(found) == {
        "accuracy",
        "macro_f1",
        "ece",
    }
    risk = window_metrics(
        "change_risk", pd.DataFrame({"probability": [0.1, 0.9]}), pd.Series([False, True])
    )
    assert risk["auc"] == 1.0


def test_the_ledger_appends_and_finds_the_previous_champion(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"event": "decision", "model": "m", "passed": True})
    ledger.append({"event": "alias moved", "model": "m", "version": "2", "previous": None})
    ledger.append({"event": "alias moved", "model": "other", "version": "9", "previous": "8"})
    ledger.append({"event": "alias moved", "model": "m", "version": "3", "previous": "2"})
    assert [e["event"] for e in ledger.entries("m")] == ["decision", "alias moved", "alias moved"]
    assert ledger.previous_champion("m") == "2"
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["at"] for line in lines)


def test_a_damaged_ledger_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"event": "decision", "model": "m"}\n{not json\n')
    with pytest.raises(ItsmMlError, match=r"ledger.jsonl, line 2: not a ledger entry"):
        Ledger(path).entries()
