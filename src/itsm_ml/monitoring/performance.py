"""Performance of a model in production, estimated before the labels arrive.

Tickets close days after they open and a change's outcome is known weeks after it, so the
realised accuracy of a window of current records is late. A calibrated model can estimate it
at once (confidence-based performance estimation): if the probabilities are right, the
expected accuracy is the mean probability of the predicted class, and the expected ROC AUC
of a risk score follows from every pair's chance of being a (failure, success) pair. The
estimate is only as good as the calibration, which is why it is compared with the realised
figure once the labels are in.

The same comparison catches concept drift, which no feature shows: when the answer to the
same ticket changes (a category now goes to another group), the probabilities still promise
the old accuracy while the realised one falls. `accuracy_drift` and `auc_drift` judge the
gap against the noise a window of that size has when the probabilities are right.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def estimated_accuracy(probabilities: np.ndarray) -> float:
    """Expected accuracy of predicting each row's most probable class."""
    if len(probabilities) == 0:
        return float("nan")
    return float(np.mean(np.max(np.asarray(probabilities, dtype=float), axis=1)))


def estimated_auc(probability: np.ndarray) -> float:
    """Expected ROC AUC of ranking rows by `probability` if each row fails with exactly it.

    AUC is the share of (failure, success) pairs ranked correctly; row i is the failure and
    j the success of a pair with chance p_i (1 - p_j). Sorted by score, the successes below
    each row accumulate in one pass (ties count half).
    """
    p = np.asarray(probability, dtype=float)
    if len(p) < 2:
        return float("nan")
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    success = 1 - ranked
    below = np.cumsum(success) - success  # successes ranked strictly lower (before ties)
    # Ties: a tied pair counts half, whichever side holds the failure.
    _, first, counts = np.unique(ranked, return_index=True, return_counts=True)
    tie_mass = np.add.reduceat(success, first)
    group = np.repeat(np.arange(len(first)), counts)
    start_below = np.repeat(below[first], counts)
    within = tie_mass[group] - success
    correct = np.sum(ranked * (start_below + 0.5 * within))
    pairs = np.sum(p) * np.sum(1 - p) - np.sum(p * (1 - p))
    return float(correct / pairs) if pairs > 0 else float("nan")


@dataclass(frozen=True)
class PerformanceDrift:
    """Realised performance of labelled records against what their probabilities promised."""

    metric: str
    rows: int
    estimated: float
    realised: float
    z: float
    z_threshold: float
    min_drop: float
    has_verdict: bool

    @property
    def drop(self) -> float:
        return self.estimated - self.realised

    @property
    def drifted(self) -> bool:
        # One-sided: a model doing better than it promised harms no one.
        return self.has_verdict and self.drop >= self.min_drop and self.z >= self.z_threshold

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop": self.drop, "drifted": self.drifted}


def accuracy_drift(
    probabilities: np.ndarray, correct: np.ndarray, *, z: float, min_drop: float, min_rows: int
) -> PerformanceDrift:
    """Realised accuracy against the mean top probability of the same rows.

    If the probabilities are right, each row is correct with chance p (its top probability),
    so the realised accuracy has standard error sqrt(sum p (1 - p)) / n around the estimate.
    """
    given = np.asarray(probabilities, dtype=float)
    top = given.max(axis=1) if given.size else np.empty(0)
    hits = np.asarray(correct, dtype=bool)
    rows = len(top)
    if rows == 0:
        return PerformanceDrift("accuracy", 0, np.nan, np.nan, 0.0, z, min_drop, False)
    estimated, realised = float(top.mean()), float(hits.mean())
    error = float(np.sqrt(np.sum(top * (1 - top)))) / rows
    return PerformanceDrift(
        "accuracy",
        rows,
        estimated,
        realised,
        _z(estimated - realised, error),
        z,
        min_drop,
        rows >= min_rows,
    )


def auc_drift(
    probability: np.ndarray, failed: np.ndarray, *, z: float, min_drop: float, min_rows: int
) -> PerformanceDrift:
    """Realised ROC AUC against the AUC the probabilities promise, with the Hanley-McNeil
    standard error of an AUC of that size over the window's failures and successes."""
    from sklearn.metrics import roc_auc_score

    p = np.asarray(probability, dtype=float)
    outcome = np.asarray(failed, dtype=bool)
    failures, successes = int(outcome.sum()), int((~outcome).sum())
    estimated = estimated_auc(p)
    if failures == 0 or successes == 0:
        return PerformanceDrift("ROC AUC", len(p), estimated, np.nan, 0.0, z, min_drop, False)
    realised = float(roc_auc_score(outcome, p))
    a = estimated
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (failures - 1) * (q1 - a * a) + (successes - 1) * (q2 - a * a)) / (
        failures * successes
    )
    return PerformanceDrift(
        "ROC AUC",
        len(p),
        estimated,
        realised,
        _z(estimated - realised, float(np.sqrt(max(variance, 0.0)))),
        z,
        min_drop,
        len(p) >= min_rows,
    )


def _z(gap: float, error: float) -> float:
    if error > 0:
        return gap / error
    return float("inf") if gap > 0 else 0.0
