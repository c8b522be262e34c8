"""Performance of a model in production, estimated before the labels arrive.

Tickets close days after they open and a change's outcome is known weeks after it, so the
realised accuracy of a window of current records is late. A calibrated model can estimate it
at once (confidence-based performance estimation): if the probabilities are right, the
expected accuracy is the mean probability of the predicted class, and the expected ROC AUC
of a risk score follows from every pair's chance of being a (failure, success) pair. The
estimate is only as good as the calibration, which is why it is compared with the realised
figure once the labels are in.
"""

from __future__ import annotations

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
