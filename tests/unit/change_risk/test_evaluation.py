"""Metrics, curves and band tables of a failure probability."""

from __future__ import annotations

import numpy as np
import pytest

from itsm_ml.change_risk import evaluation as rev


def test_metrics_of_a_perfect_and_of_a_ranking_only_score() -> None:
    failed = np.array([0, 0, 1, 1])
    perfect = rev.risk_metrics(failed, np.array([0.0, 0.0, 1.0, 1.0]))
    assert perfect["auc"] == 1.0 and perfect["brier"] == 0.0 and perfect["ece"] == 0.0
    ranking = rev.risk_metrics(failed, np.array([1.0, 2.0, 30.0, 40.0]), is_probability=False)
    assert ranking["auc"] == 1.0 and np.isnan(ranking["brier"]) and np.isnan(ranking["ece"])
    one_class = rev.risk_metrics(np.array([0, 0]), np.array([0.1, 0.2]))
    assert np.isnan(one_class["auc"]) and one_class["brier"] == pytest.approx(0.025)


def test_curves_run_from_corner_to_corner_and_stay_small() -> None:
    rng = np.random.default_rng(0)
    failed = rng.random(20_000) < 0.1
    score = rng.random(20_000) + failed * 0.3
    roc = rev.roc_table(failed, score)
    assert (roc.iloc[0].false_positive_rate, roc.iloc[-1].true_positive_rate) == (0.0, 1.0)
    assert roc.false_positive_rate.is_monotonic_increasing and len(roc) <= 202
    pr = rev.precision_recall_table(failed, score)
    assert pr.recall.is_monotonic_increasing and pr.recall.iloc[-1] == 1.0
    assert pr.precision.iloc[-1] == pytest.approx(failed.mean())


def test_band_table_accounts_for_every_change_and_failure() -> None:
    probability = np.array([0.9, 0.7, 0.5, 0.3, 0.2, 0.1])
    failed = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    bands = np.array(["very high", "high", "high", "medium", "low", "low"], dtype=object)
    table = rev.band_table(
        probability, failed, bands, {"very high": 0.8, "high": 0.4, "medium": 0.25}
    )
    assert table.band.tolist() == ["very high", "high", "medium", "low"]
    assert table.changes.sum() == 6 and table.failures.sum() == 3
    assert table.caught_cumulative.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])
    assert table.failure_rate.tolist()[:2] == [1.0, 0.5]
    assert np.isnan(
        rev.band_table(probability, failed, bands, {"empty": 0.99, "very high": 0.8})
        .set_index("band")
        .failure_rate["empty"]
    )
