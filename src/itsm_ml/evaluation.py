"""Metrics, calibration error, precision thresholds and coverage, and their plots.

Everything here is a pure function of predictions: labels, the top class's probability and
the truth. Thresholds are learned on the validation split and applied, unchanged, to test.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NEVER = float("inf")


def classification_metrics(truth: pd.Series, predicted: pd.Series) -> dict[str, float]:
    """Accuracy and macro-F1 over the classes present in the truth."""
    labels = sorted(set(truth))
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "rows": len(truth),
    }


def positive_class(classes: Collection[Any]) -> str:
    """Which of a yes/no label's two values is the event: the last in sorted order, so
    True > False, yes > no, 1 > 0 (the same column `predict_proba` gives it)."""
    return sorted(str(c) for c in classes)[-1]


def binary_metrics(truth: pd.Series, score: np.ndarray, positive: str) -> dict[str, float]:
    """ROC AUC, PR-AUC and Brier score of a score for `positive`; Brier only means something
    for a probability, so pass one (a margin's AUC and PR-AUC are still right)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    event = (truth.astype(str) == positive).to_numpy()
    score = np.asarray(score, dtype=float)
    both = len(set(event.tolist())) == 2
    nan = float("nan")
    inside = bool(len(score)) and bool(np.all((score >= 0) & (score <= 1)))
    return {
        "auc": float(roc_auc_score(event, score)) if both else nan,
        "pr_auc": float(average_precision_score(event, score)) if both else nan,
        "brier": float(brier_score_loss(event, score)) if inside else nan,
    }


def per_class_metrics(truth: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Support, precision, recall and F1 per true class, largest classes first."""
    frame = pd.DataFrame({"truth": truth.to_numpy(), "predicted": predicted.to_numpy()})
    rows = []
    for label in frame.truth.value_counts().index:
        hits = ((frame.truth == label) & (frame.predicted == label)).sum()
        said = (frame.predicted == label).sum()
        support = (frame.truth == label).sum()
        precision = hits / said if said else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((label, int(support), precision, recall, f1))
    return pd.DataFrame(rows, columns=["class", "support", "precision", "recall", "f1"])


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> pd.DataFrame:
    """Accuracy against mean confidence in equal-width confidence bins (empty bins dropped)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "confidence": confidence, "correct": correct.astype(float)})
    table = frame.groupby("bin").agg(
        count=("correct", "size"), confidence=("confidence", "mean"), accuracy=("correct", "mean")
    )
    table["low"], table["high"] = edges[table.index], edges[table.index + 1]
    return table.reset_index(drop=True)[["low", "high", "count", "confidence", "accuracy"]]


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width bins."""
    if len(confidence) == 0:
        return float("nan")
    table = reliability_table(confidence, correct, bins)
    gaps = (table.confidence - table.accuracy).abs()
    return float((gaps * table["count"]).sum() / table["count"].sum())


def wilson_lower_bound(hits: np.ndarray, counts: np.ndarray, z: float) -> np.ndarray:
    """Lower end of the Wilson score interval of a proportion (z=0: the proportion itself)."""
    share = hits / counts
    if z == 0:
        return np.asarray(share)
    centre = share + z * z / (2 * counts)
    margin = z * np.sqrt(share * (1 - share) / counts + z * z / (4 * counts * counts))
    return np.asarray((centre - margin) / (1 + z * z / counts))


def fit_class_thresholds(
    predicted: pd.Series,
    confidence: np.ndarray,
    truth: pd.Series,
    *,
    target_precision: float,
    eligible: Collection[str],
    min_predictions: int = 20,
    z: float = 1.0,
) -> dict[str, float]:
    """Per predicted class, the lowest confidence at which its precision meets the target.

    Among the validation predictions of a class, sorted by confidence, the threshold is the
    confidence of the largest top-k whose precision meets `target_precision` with margin: the
    Wilson lower bound at `z` must reach it, not the observed share. Taking the most
    permissive point where the observed share crosses the target is optimistic: on the
    generator's routing data (`threshold_z: 0`, `dvc repro`) it routed 8.1% of test tickets at
    84.7% precision for a 90% target; the bound keeps the promise.
    k must also be at least `min_predictions`. Classes outside `eligible`, and those that
    never meet the target, get an infinite threshold: never auto-routed.
    """
    frame = pd.DataFrame(
        {
            "predicted": predicted.to_numpy(),
            "confidence": confidence,
            "correct": (predicted.to_numpy() == truth.to_numpy()),
        }
    )
    thresholds: dict[str, float] = {}
    for label, group in frame.groupby("predicted", sort=False):
        key = str(label)
        if key not in eligible:
            thresholds[key] = NEVER
            continue
        ordered = group.sort_values("confidence", ascending=False)
        # A threshold must keep together predictions that share a confidence value.
        last_of_value = ~ordered.confidence.duplicated(keep="last").to_numpy()
        hits = ordered.correct.cumsum().to_numpy()
        counts = np.arange(1, len(ordered) + 1)
        precision = wilson_lower_bound(hits, counts, z)
        ok = (precision >= target_precision) & (counts >= min_predictions) & last_of_value
        thresholds[key] = (
            float(ordered.confidence.to_numpy()[np.flatnonzero(ok)[-1]]) if ok.any() else NEVER
        )
    for label in eligible:
        thresholds.setdefault(str(label), NEVER)
    return thresholds


def auto_route_mask(
    predicted: pd.Series, confidence: np.ndarray, thresholds: dict[str, float]
) -> np.ndarray:
    """True where the predicted class's threshold is met (unknown classes: never)."""
    limits = predicted.astype(str).map(thresholds).fillna(NEVER).to_numpy(dtype=float)
    return np.asarray(confidence >= limits)


@dataclass(frozen=True)
class Coverage:
    coverage: float
    precision: float
    auto_routed: int
    rows: int
    per_class: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {
            "coverage": self.coverage,
            "precision": self.precision,
            "auto_routed": self.auto_routed,
            "rows": self.rows,
        }


def coverage_at_thresholds(
    predicted: pd.Series, confidence: np.ndarray, truth: pd.Series, thresholds: dict[str, float]
) -> Coverage:
    """Share of tickets auto-routed and the precision they reached, overall and per class."""
    routed = auto_route_mask(predicted, confidence, thresholds)
    correct = predicted.to_numpy() == truth.to_numpy()
    frame = pd.DataFrame(
        {"predicted": predicted.astype(str).to_numpy(), "routed": routed, "correct": correct}
    )
    per_class = (
        frame.groupby("predicted")
        .agg(predicted_rows=("routed", "size"), auto_routed=("routed", "sum"))
        .join(frame[frame.routed].groupby("predicted").correct.mean().rename("precision"))
        .assign(threshold=lambda t: t.index.map(thresholds).astype(float))
        .sort_values("predicted_rows", ascending=False)
    )
    per_class["coverage"] = per_class.auto_routed / per_class.predicted_rows
    return Coverage(
        coverage=float(routed.mean()) if len(routed) else 0.0,
        precision=float(correct[routed].mean()) if routed.any() else float("nan"),
        auto_routed=int(routed.sum()),
        rows=len(routed),
        per_class=per_class.reset_index(names="class"),
    )


def precision_coverage_curve(confidence: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Precision of the tickets above each global confidence threshold, against their share."""
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    counts = np.arange(1, len(order) + 1)
    curve = pd.DataFrame(
        {
            "threshold": confidence[order],
            "coverage": counts / len(order),
            "precision": hits / counts,
        }
    )
    # One point per 0.5% of coverage is plenty to draw and keeps the file small.
    step = max(len(curve) // 200, 1)
    return curve.iloc[::step].reset_index(drop=True)


def reliability_figure(
    table: pd.DataFrame,
    title: str,
    *,
    xlabel: str = "confidence of the top class",
    ylabel: str = "accuracy",
) -> Figure:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.plot(table.confidence, table.accuracy, marker="o", label="model")
    for _, row in table.iterrows():
        ax.annotate(
            f"{int(row['count'])}",
            (row.confidence, row.accuracy),
            fontsize=7,
            textcoords="offset points",
            xytext=(4, -10),
        )
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return cast("Figure", fig)


def precision_coverage_figure(
    curve: pd.DataFrame, target_precision: float, achieved: Coverage, title: str
) -> Figure:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(curve.coverage, curve.precision, label="one global threshold")
    ax.axhline(
        target_precision, ls="--", color="grey", lw=1, label=f"target {target_precision:.0%}"
    )
    ax.scatter(
        [achieved.coverage],
        [achieved.precision],
        color="#c0504d",
        zorder=3,
        label=f"per-class thresholds: {achieved.coverage:.0%} at {achieved.precision:.1%}",
    )
    ax.set(
        xlabel="share of tickets auto-routed",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(max(0.0, min(float(curve.precision.min()), target_precision) - 0.05), 1.0),
        title=title,
    )
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return cast("Figure", fig)


def confusion_figure(truth: pd.Series, predicted: pd.Series, title: str, top: int = 12) -> Figure:
    """Row-normalised confusion of the `top` largest true classes (the rest as 'other')."""
    import matplotlib.pyplot as plt

    leaders = truth.value_counts().index[:top]

    def keep(values: pd.Series) -> pd.Series:
        return values.where(values.isin(leaders), "other")

    order = [*leaders, "other"]
    table = pd.crosstab(keep(truth.astype(str)), keep(predicted.astype(str)), normalize="index")
    table = table.reindex(index=order, columns=order, fill_value=0.0).dropna(how="all")
    fig, ax = plt.subplots(figsize=(8, 7))
    image = ax.imshow(table.to_numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true (share of row)", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return cast("Figure", fig)
