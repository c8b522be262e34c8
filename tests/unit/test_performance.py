"""Performance estimated from calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from itsm_ml.performance import estimated_accuracy, estimated_auc


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
