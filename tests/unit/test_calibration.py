from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from itsm_ml.calibration import (
    CALIBRATORS,
    METHODS,
    PlattCalibrator,
    TemperatureScaler,
    choose_calibrator,
)
from itsm_ml.errors import ConfigError
from itsm_ml.evaluation import expected_calibration_error


def test_overconfident_scores_are_cooled_and_ranking_kept() -> None:
    rng = np.random.default_rng(0)
    n, classes = 5000, 4
    truth = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), truth] += 1.0
    scaler = TemperatureScaler().fit(logits * 5, truth)  # 5x too sharp
    assert 4 < scaler.temperature_ < 6
    proba = scaler.transform(logits * 5)
    assert np.allclose(proba.sum(axis=1), 1)
    assert (proba.argmax(axis=1) == logits.argmax(axis=1)).all()


def test_unknown_targets_are_skipped() -> None:
    scaler = TemperatureScaler().fit(np.zeros((3, 2)), np.array([-1, -1, -1]))
    assert scaler.temperature_ == 1.0


def tickets(n: int, classes: int, sharpness: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores `sharpness` times too sharp for labels drawn from their softmax (1: calibrated)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), rng.integers(0, classes, n)] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (proba.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return logits * sharpness, np.minimum(labels, classes - 1)


def ece(proba: np.ndarray, targets: np.ndarray) -> float:
    return expected_calibration_error(proba.max(axis=1), proba.argmax(axis=1) == targets)


def softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("classes", [2, 5])
def test_every_method_keeps_the_argmax_and_sums_to_one(method: str, classes: int) -> None:
    rng = np.random.default_rng(1)
    # Coarse scores make ties; random labels make fits that would flip decisions if allowed.
    scores = np.round(rng.normal(0, 3, (600, classes)), 1)
    if classes == 2:
        scores[:300, 0] = 0.0  # a booster's binary output: column 1 holds the log-odds
    targets = rng.integers(0, classes, 600)
    for fit_scores in (scores, scores * 4 + 2):
        proba = CALIBRATORS[method]().fit(fit_scores, targets).transform(scores)
        assert np.allclose(proba.sum(axis=1), 1)
        assert ((proba > 0) & (proba < 1)).all()
        if classes > 2:  # a yes/no answer follows its calibrated probability instead
            assert (proba.argmax(axis=1) == scores.argmax(axis=1)).all()


@pytest.mark.parametrize("sharpness", [3.0, 0.4, 1.0], ids=["over", "under", "calibrated"])
@pytest.mark.parametrize("n", [60, 400, 3000])
def test_chosen_is_never_less_calibrated_than_none_on_validation(sharpness: float, n: int) -> None:
    for seed in range(5):
        scores, targets = tickets(n, 6, sharpness, seed)
        chosen = choose_calibrator(scores, targets, seed=seed)
        assert ece(chosen.transform(scores), targets) <= ece(softmax(scores), targets) + 1e-12
        assert chosen.ece_[chosen.method_] <= chosen.ece_["none"]


def test_overconfident_multiclass_is_cooled_by_a_parametric_map() -> None:
    scores, targets = tickets(3000, 6, 3.0, seed=0)
    chosen = choose_calibrator(scores, targets)
    assert chosen.method_ in {"temperature", "platt"}
    assert set(chosen.scores_) == set(METHODS)
    assert chosen.ece_[chosen.method_] < chosen.ece_["none"] / 4
    if chosen.method_ == "temperature":
        assert 2.5 < chosen.temperature_ < 3.5
    else:
        assert chosen.temperature_ == 1.0
    test_scores, test_targets = tickets(20000, 6, 3.0, seed=99)
    assert (
        ece(chosen.transform(test_scores), test_targets)
        < ece(softmax(test_scores), test_targets) / 4
    )


def test_temperature_reported_when_chosen() -> None:
    scores, targets = tickets(2000, 6, 0.4, seed=3)
    chosen = choose_calibrator(scores, targets, methods=("none", "temperature"))
    assert chosen.method_ == "temperature"
    assert chosen.temperature_ == pytest.approx(
        TemperatureScaler().fit(scores, targets).temperature_
    )
    assert chosen.temperature_ < 0.6  # scores 0.4x too flat are sharpened


def test_biased_binary_platt_keeps_the_ranking_and_moves_decisions_with_the_probability() -> None:
    rng = np.random.default_rng(2)
    true_logit = rng.normal(0, 1.5, 4000)
    outcome = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(int)
    raw = 2 * true_logit + 1.5  # too sharp and shifted towards class 1
    scores = np.column_stack([np.zeros_like(raw), raw])
    platt = PlattCalibrator().fit(scores, outcome)
    moved = (platt.slope_ * raw + platt.intercept_ > 0) != (raw > 0)
    assert moved.any()  # the shift towards class 1 is undone for the rows it carried over 0.5
    proba = platt.transform(scores)
    assert roc_auc_score(outcome, proba[:, 1]) == roc_auc_score(outcome, raw)
    assert ((proba[:, 1] > 0.5) == (platt.slope_ * raw + platt.intercept_ > 0)).all()
    accuracy = ((proba[:, 1] > 0.5) == outcome).mean()
    assert accuracy > ((raw > 0) == outcome).mean()  # the decisions it moved were mostly wrong
    assert ece(proba, outcome) < ece(softmax(scores), outcome) / 2


def test_binary_isotonic_is_monotone_in_the_score() -> None:
    rng = np.random.default_rng(4)
    raw = rng.normal(0.5, 2, 3000)
    outcome = (rng.random(3000) < 1 / (1 + np.exp(-raw / 2))).astype(int)
    scores = np.column_stack([np.zeros_like(raw), raw])
    proba = CALIBRATORS["isotonic"]().fit(scores, outcome).transform(scores)
    by_score = proba[np.argsort(raw), 1]
    assert (np.diff(by_score) >= 0).all()  # ties at most, never a reversal
    tied = (by_score[1:] == by_score[:-1]).mean()
    assert roc_auc_score(outcome, proba[:, 1]) >= roc_auc_score(outcome, raw) - tied / 2


def test_same_seed_same_choice() -> None:
    scores, targets = tickets(500, 4, 2.0, seed=5)
    first, second = (choose_calibrator(scores, targets, seed=7) for _ in range(2))
    assert first.method_ == second.method_
    assert first.scores_ == second.scores_
    assert np.array_equal(first.transform(scores), second.transform(scores))


def test_unlabelled_rows_change_nothing() -> None:
    scores, targets = tickets(500, 4, 2.0, seed=6)
    noise = np.random.default_rng(0).normal(0, 10, (300, 4))
    padded = choose_calibrator(np.vstack([scores, noise]), np.r_[targets, np.full(300, -1)])
    plain = choose_calibrator(scores, targets)
    assert (padded.method_, padded.scores_, padded.ece_) == (
        plain.method_,
        plain.scores_,
        plain.ece_,
    )


@pytest.mark.parametrize("case", ["few", "one class", "unlabelled"])
def test_no_calibration_without_enough_evidence(case: str) -> None:
    scores, targets = tickets(500, 4, 3.0, seed=8)  # far too sharp: any fit would help
    if case == "few":
        scores, targets = scores[:49], targets[:49]
    elif case == "one class":
        scores, targets = scores[targets == 0], targets[targets == 0]
    else:
        targets = np.full_like(targets, -1)
    chosen = choose_calibrator(scores, targets)
    assert (chosen.method_, chosen.scores_, chosen.temperature_) == ("none", {}, 1.0)
    assert np.allclose(chosen.transform(scores), softmax(scores))


def test_tolerance_prefers_the_simpler_method() -> None:
    scores, targets = tickets(3000, 6, 1.0, seed=0)  # calibrated: differences are noise
    chosen = choose_calibrator(scores, targets, tolerance=1.0)
    assert chosen.method_ == "none"


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ConfigError, match="beta"):
        choose_calibrator(np.zeros((60, 3)), np.zeros(60, dtype=int), methods=("none", "beta"))
