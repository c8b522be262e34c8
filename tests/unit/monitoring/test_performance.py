"""Performance estimated from calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from itsm_ml.monitoring.performance import (
    accuracy_drift,
    auc_drift,
    estimated_accuracy,
    estimated_auc,
)


def test_estimated_accuracy_matches_the_realised_one_when_calibrated() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4) * 0.7, 20_000)
    truth = np.array([rng.choice(4, p=row) for row in probabilities])
    realised = np.mean(probabilities.argmax(axis=1) == truth)
    assert estimated_accuracy(probabilities) == pytest.approx(realised, abs=0.01)
    assert np.isnan(estimated_accuracy(np.empty((0, 4))))


def test_estimated_auc_equals_a_brute_force_count_with_ties() -> None:
    p = np.array([0.1, 0.4, 0.4, 0.7, 0.2, 0.4, 0.9])
    correct = pairs = 0.0
    for i in range(len(p)):
        for j in range(len(p)):
            if i == j:
                continue
            weight = p[i] * (1 - p[j])
            pairs += weight
            correct += weight * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    assert estimated_auc(p) == pytest.approx(correct / pairs)


def test_estimated_auc_matches_the_realised_one_when_calibrated() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(1.2, 6, 5000)
    realised = np.mean([roc_auc_score(rng.random(len(p)) < p, p) for _ in range(30)])
    assert estimated_auc(p) == pytest.approx(realised, abs=0.01)


def _calibrated_window(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    probabilities = rng.dirichlet(np.ones(5) * 0.5, rows)
    truth = np.array([rng.choice(5, p=row) for row in probabilities])
    return probabilities, truth


def test_accuracy_drift_stays_quiet_when_the_probabilities_are_right() -> None:
    rng = np.random.default_rng(1)
    checks = []
    for _ in range(300):
        probabilities, truth = _calibrated_window(rng, 500)
        correct = probabilities.argmax(axis=1) == truth
        checks.append(accuracy_drift(probabilities, correct, z=3.7, min_drop=0.05, min_rows=200))
    assert all(c.has_verdict for c in checks)
    assert np.mean([c.drifted for c in checks]) <= 0.01
    # The z score has unit spread when calibrated: its standard error is right.
    assert np.std([c.z for c in checks]) == pytest.approx(1.0, abs=0.15)


def test_accuracy_drift_flags_labels_that_moved_with_unchanged_features() -> None:
    rng = np.random.default_rng(2)
    probabilities, truth = _calibrated_window(rng, 500)
    predicted = probabilities.argmax(axis=1)
    moved = truth.copy()
    moved[predicted == 0] = 4  # class 0 now goes elsewhere, whatever the ticket says
    check = accuracy_drift(probabilities, predicted == moved, z=3.7, min_drop=0.05, min_rows=200)
    assert check.drifted
    assert check.drop >= 0.05 and check.z > 3.7
    assert check.to_dict()["drifted"] is True


def test_accuracy_drift_gives_no_verdict_on_a_small_window_or_a_gain() -> None:
    rng = np.random.default_rng(3)
    probabilities, _ = _calibrated_window(rng, 100)
    wrong = np.zeros(100, dtype=bool)
    small = accuracy_drift(probabilities, wrong, z=3.7, min_drop=0.05, min_rows=200)
    assert not small.has_verdict and not small.drifted
    probabilities, _ = _calibrated_window(rng, 500)
    better = accuracy_drift(probabilities, np.ones(500, bool), z=3.7, min_drop=0.05, min_rows=200)
    assert better.drop < 0 and not better.drifted
    empty = accuracy_drift(np.empty((0, 5)), np.empty(0, bool), z=3.7, min_drop=0.05, min_rows=1)
    assert empty.rows == 0 and not empty.drifted


def test_auc_drift_flags_a_risk_score_that_stopped_ranking() -> None:
    rng = np.random.default_rng(4)
    quiet = []
    for _ in range(200):
        p = rng.beta(2, 6, 500)
        failed = rng.random(500) < p
        quiet.append(auc_drift(p, failed, z=3.7, min_drop=0.05, min_rows=200))
    assert np.mean([c.drifted for c in quiet]) <= 0.02
    assert np.std([c.z for c in quiet]) == pytest.approx(1.0, abs=0.2)
    p = rng.beta(2, 6, 500)
    shuffled = rng.random(500) < rng.permutation(p)  # outcomes no longer follow the score
    check = auc_drift(p, shuffled, z=3.7, min_drop=0.05, min_rows=200)
    assert check.drifted and check.realised < 0.6
    one_class = auc_drift(p, np.zeros(500, bool), z=3.7, min_drop=0.05, min_rows=200)
    assert not one_class.has_verdict and np.isnan(one_class.realised)
