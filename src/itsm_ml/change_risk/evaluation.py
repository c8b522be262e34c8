"""Evaluation of a failure probability: ranking, calibration, curves and the risk bands.

Pure functions of the outcome (failed or not) and the predicted probability of failure; the
plots are what a change manager or a reviewer looks at before trusting the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from itsm_ml.evaluation import expected_calibration_error, reliability_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CURVE_POINTS = 200


def risk_metrics(
    failed: np.ndarray, score: np.ndarray, *, is_probability: bool = True
) -> dict[str, float]:
    """ROC AUC, PR-AUC (average precision), Brier score, ECE, and the rates behind them.

    A score that only ranks (the size of a change) gets AUC and PR-AUC; its Brier score and
    calibration error are missing, as they would mean nothing.
    """
    failed = np.asarray(failed, dtype=int)
    both = len(set(failed.tolist())) == 2
    nan = float("nan")
    calibrated = is_probability and len(failed) > 0
    return {
        "auc": float(roc_auc_score(failed, score)) if both else nan,
        "pr_auc": float(average_precision_score(failed, score)) if both else nan,
        "brier": float(brier_score_loss(failed, score, labels=[0, 1])) if calibrated else nan,
        # Reliability of the failure probability itself: predicted against observed rate.
        "ece": expected_calibration_error(score, failed.astype(bool)) if calibrated else nan,
        "failure_rate": float(failed.mean()) if len(failed) else nan,
        "mean_probability": float(np.mean(score)) if calibrated else nan,
        "rows": len(failed),
    }


def _thinned(frame: pd.DataFrame) -> pd.DataFrame:
    """At most about `_CURVE_POINTS` evenly spread rows, first and last kept: enough to draw."""
    keep = np.unique(np.linspace(0, len(frame) - 1, _CURVE_POINTS + 1).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def roc_table(failed: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    fpr, tpr, thresholds = roc_curve(np.asarray(failed, dtype=int), probability)
    return _thinned(
        pd.DataFrame(
            {"false_positive_rate": fpr, "true_positive_rate": tpr, "threshold": thresholds}
        ).replace([np.inf], 1.0)
    )


def precision_recall_table(failed: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    precision, recall, thresholds = precision_recall_curve(
        np.asarray(failed, dtype=int), probability
    )
    return _thinned(
        pd.DataFrame(
            {"recall": recall[:-1], "precision": precision[:-1], "threshold": thresholds}
        ).iloc[::-1]
    )


def calibration_table(failed: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    """Observed failure rate against mean predicted probability, in equal-width bins."""
    table = reliability_table(probability, np.asarray(failed, dtype=bool))
    return table.rename(columns={"confidence": "predicted", "accuracy": "observed"})


def band_table(
    probability: np.ndarray,
    failed: np.ndarray,
    bands: np.ndarray,
    thresholds: dict[str, float],
) -> pd.DataFrame:
    """Per band, highest first: its threshold, share of changes, failures caught, failure rate.

    `caught_cumulative` is the share of all failures in this band or a higher one: the recall
    of treating this band and above as risky.
    """
    failed = np.asarray(failed, dtype=bool)
    order: Sequence[str] = [*thresholds, "low"]
    total_failures = max(int(failed.sum()), 1)
    rows = []
    caught = 0
    for name in order:
        inside = bands == name
        failures = int(failed[inside].sum())
        caught += failures
        rows.append(
            {
                "band": name,
                "threshold": thresholds.get(name, 0.0),
                "changes": int(inside.sum()),
                "share_of_changes": float(inside.mean()) if len(bands) else 0.0,
                "failures": failures,
                "share_of_failures": failures / total_failures,
                "caught_cumulative": caught / total_failures,
                "failure_rate": failures / inside.sum() if inside.any() else float("nan"),
                "mean_probability": float(probability[inside].mean())
                if inside.any()
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def risk_curves_figure(roc: pd.DataFrame, pr: pd.DataFrame, base_rate: float, title: str) -> Figure:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.plot(roc.false_positive_rate, roc.true_positive_rate, label="model")
    left.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    left.set(xlabel="false positive rate", ylabel="share of failures caught", title="ROC")
    left.legend(loc="lower right")
    right.plot(pr.recall, pr.precision, label="model")
    right.axhline(base_rate, ls="--", color="grey", lw=1, label=f"failure rate {base_rate:.1%}")
    right.set(xlabel="recall", ylabel="precision", ylim=(0, 1), title="Precision-recall")
    right.legend(loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    return cast("Figure", fig)


def band_figure(table: pd.DataFrame, title: str) -> Figure:
    """Share of changes against share of failures per band: where review effort pays."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table.share_of_changes, width=0.4, label="share of changes")
    ax.bar(x + 0.2, table.share_of_failures, width=0.4, label="share of failures", color="#c0504d")
    tops = np.maximum(table.share_of_changes, table.share_of_failures)
    for i, (rate, top) in enumerate(zip(table.failure_rate, tops, strict=True)):
        if not np.isnan(rate):
            ax.annotate(f"{rate:.0%} fail", (i, top + 0.02), ha="center", fontsize=8)
    ax.set_xticks(x, table.band)
    ax.set(ylabel="share", ylim=(0, 1), title=title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return cast("Figure", fig)
