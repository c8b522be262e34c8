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
    performance_check,
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
        "of champion v1",
        SETTINGS,
    )
    assert better.passed and "0.820 > 0.800 of champion v1 (+0.0200)" in better.detail
    marginal = compare(
        METRICS["triage"],
        {"accuracy": 0.805, "macro_f1": 0.7, "ece": 0.0},
        champion,
        "champion v1",
        SETTINGS,
    )
    assert not marginal.passed and "+0.0050, below the required margin of 0.01" in marginal.detail


def test_a_refusal_against_a_baseline_reads_as_a_refusal_in_figures() -> None:
    check = compare(
        METRICS["triage"],
        {"accuracy": 0.932, "macro_f1": 0.5, "ece": 0.05},
        {"accuracy": 0.977},
        "when the category set at open is kept",
        SETTINGS,
        check_name="beats the best simple baseline on the latest labelled window",
    )
    assert not check.passed
    assert check.detail == "accuracy 0.932 < 0.977 when the category set at open is kept"
    decision = Decision("itsm-category", "2", None, (check,))
    assert decision.summary() == (
        "itsm-category v2 refused, beats the best simple baseline on the latest labelled"
        " window failed: accuracy 0.932 < 0.977 when the category set at open is kept"
    )


def test_other_metrics_may_not_get_worse_beyond_the_tolerance() -> None:
    champion = {"auc": 0.70, "brier": 0.10, "ece": 0.02}
    worse_calibrated = {"auc": 0.75, "brier": 0.10, "ece": 0.05}  # lower is better for ECE
    check = compare(METRICS["change_risk"], worse_calibrated, champion, "of champion v3", SETTINGS)
    assert not check.passed
    assert "ece 0.0500 against 0.0200 of champion v3: worse by 0.0300" in check.detail
    # A baseline has no calibration: only the primary metric is compared.
    assert compare(
        METRICS["change_risk"], worse_calibrated, {"auc": 0.72}, "of a baseline", SETTINGS
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
    assert suggest_only == ("desk",)  # sap: too few to judge
    assert not check.passed and not check.blocking and check.verdict == "warn"
    assert check.figures["desk"] == {"auto_routed": 30, "precision": pytest.approx(2 / 3)}


def test_suggestions_applied_automatically_are_held_to_the_same_precision() -> None:
    answer = pd.DataFrame(
        {
            "label": ["KB1"] * 25 + ["KB2"] * 25,
            "auto_suggest": [True] * 25 + [False] * 25,
            "probability": 0.95,
        }
    )
    truth = pd.Series(["KB1"] * 15 + ["KB9"] * 10 + ["KB9"] * 25)
    check, suggest_only = routing_check(
        answer, truth, target=0.9, min_routed=20, flag="auto_suggest"
    )
    assert suggest_only == ("KB1",)  # KB2 was never applied automatically: not judged
    assert check.figures == {"KB1": {"auto_routed": 25, "precision": pytest.approx(0.6)}}


def test_validation_and_drift_records_are_required() -> None:
    assert validation_check({"validation.passed": "true"}).passed
    assert not validation_check({"validation.passed": "false"}).passed
    assert "no validation record" in validation_check({}).detail
    for check in (drift_check({}), performance_check({})):
        assert not check.passed and check.blocking and "run the drift stage" in check.detail


def test_data_drift_alone_warns_unless_the_params_say_it_blocks() -> None:
    tags = {"drift.data_alert_at_end": "True", "drift.drifted_windows": "7", "drift.windows": "8"}
    warned = drift_check(tags)
    assert not warned.passed and not warned.blocking and warned.verdict == "warn"
    assert warned.detail == "7 of 8 windows drifted, persistent at the end: yes"
    assert drift_check(tags, blocking=True).verdict == "FAIL"
    ok = validation_check({"validation.passed": "true"})
    decision = Decision("itsm-routing", "3", None, (ok, warned))
    assert decision.passed and decision.promoted and decision.warnings == (warned,)
    assert decision.summary().startswith("itsm-routing v3 promoted to champion (warning, current")
    assert not Decision("m", "3", None, (ok, drift_check(tags, blocking=True))).passed


def test_performance_drift_blocks_with_its_figures() -> None:
    tags = {
        "drift.performance_alert_at_end": "True",
        "drift.performance_drifted_windows": "3",
        "drift.windows": "8",
        "drift.performance_metric": "accuracy",
        "drift.last_estimated": "0.81",
        "drift.last_realised": "0.62",
    }
    check = performance_check(tags)
    assert not check.passed and check.blocking
    assert "3 of 8 windows fell short" in check.detail
    assert "accuracy 0.620 realised against 0.810 promised" in check.detail
    held = performance_check({**tags, "drift.performance_alert_at_end": "False"})
    assert held.passed


def test_a_decision_passes_only_if_every_blocking_check_does() -> None:
    ok, refused = validation_check({"validation.passed": "true"}), drift_check({})
    assert Decision("m", "2", "1", (ok,)).passed
    decision = Decision("m", "2", "1", (ok, refused))
    assert not decision.passed and decision.to_dict()["checks"][1]["passed"] is False
    assert not decision.promoted and not decision.forced


def test_a_forced_decision_keeps_its_failed_checks_and_reason() -> None:
    ok, refused = validation_check({"validation.passed": "true"}), drift_check({})
    forced = Decision("m", "2", "1", (ok, refused), forced_reason="incident 42: rollout now")
    assert forced.forced and forced.promoted and not forced.passed
    record = forced.to_dict()
    assert record["forced"] is True and record["reason"] == "incident 42: rollout now"
    assert record["checks"][1]["verdict"] == "FAIL"
    assert "FORCED to champion past" in forced.summary()
    # A reason on a decision that passed anyway is not a forced promotion.
    assert not Decision("m", "2", "1", (ok,), forced_reason="x").forced


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
