from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itsm_ml.evaluation import (
    NEVER,
    coverage_at_thresholds,
    expected_calibration_error,
    fit_class_thresholds,
    precision_coverage_curve,
)


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.05, 1, 200_000)
    correct = rng.uniform(0, 1, confidence.size) < confidence
    assert expected_calibration_error(confidence, correct) < 0.01
    assert expected_calibration_error(np.full(1000, 0.9), np.arange(1000) < 500) == pytest.approx(
        0.4
    )


def test_thresholds_meet_the_target_on_the_data_they_were_learned_on() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    confidence = rng.uniform(0, 1, n)
    predicted = pd.Series(rng.choice(["a", "b"], n))
    correct = rng.uniform(0, 1, n) < confidence
    truth = predicted.where(correct, "c")
    thresholds = fit_class_thresholds(
        predicted, confidence, truth, target_precision=0.9, eligible={"a", "b"}, min_predictions=20
    )
    for label in ("a", "b"):
        above = (predicted == label).to_numpy() & (confidence >= thresholds[label])
        assert (predicted[above] == truth[above]).mean() >= 0.9
        assert 0.7 < thresholds[label] < 0.9  # precision of the top slice ~ (1 + t) / 2


def test_ineligible_and_hopeless_classes_are_never_routed() -> None:
    predicted = pd.Series(["a"] * 50 + ["b"] * 50)
    truth = pd.Series(["a"] * 50 + ["x"] * 50)  # b is always wrong
    confidence = np.linspace(0.5, 1.0, 100)
    thresholds = fit_class_thresholds(
        predicted, confidence, truth, target_precision=0.9, eligible={"b", "z"}
    )
    assert thresholds == {"a": NEVER, "b": NEVER, "z": NEVER}


def test_coverage_counts_only_routed_predictions() -> None:
    predicted = pd.Series(["a", "a", "b", "b"])
    truth = pd.Series(["a", "x", "b", "b"])
    confidence = np.array([0.95, 0.5, 0.9, 0.99])
    result = coverage_at_thresholds(predicted, confidence, truth, {"a": 0.9, "b": NEVER})
    assert (result.coverage, result.precision, result.auto_routed) == (0.25, 1.0, 1)
    row = result.per_class.set_index("class").loc["a"]
    assert row.predicted_rows == 2 and row.auto_routed == 1


def test_precision_coverage_curve_runs_from_confident_to_all() -> None:
    curve = precision_coverage_curve(
        np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, True, False, True])
    )
    assert curve.coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert curve.precision.tolist() == [1.0, 1.0, pytest.approx(2 / 3), 0.75]


def test_wilson_bound_is_below_the_share_and_tightens_with_evidence() -> None:
    from itsm_ml.evaluation import wilson_lower_bound

    few, many = wilson_lower_bound(np.array([19.0, 950.0]), np.array([20.0, 1000.0]), 1.0)
    assert few < many < 0.95
    assert wilson_lower_bound(np.array([19.0]), np.array([20.0]), 0.0)[0] == 0.95
