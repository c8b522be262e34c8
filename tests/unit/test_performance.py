"""Performance estimated from calibrated probabilities, and realised once labels arrive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from itsm_ml.performance import estimated_accuracy, estimated_auc, realised_by_close


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


def test_realised_accuracy_counts_closed_records_by_close_time() -> None:
    frame = pd.DataFrame(
        {
            "closed_at": pd.to_datetime(
                ["2025-01-01", "2025-01-02", "2025-01-09", None, "2025-01-10"]
            )
        }
    )
    correct = pd.Series([True, False, True, True, True])
    table = realised_by_close(frame, close_column="closed_at", correct=correct, period="7D")
    assert table.labelled.tolist() == [2, 2]
    assert table.accuracy.tolist() == [0.5, 1.0]
