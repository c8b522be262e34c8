"""How good the neighbours and the suggestions are, in the field's own measures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from itsm_ml.knowledge.resolution import Suggestions
from itsm_ml.knowledge.retrieval import Neighbours

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CUTOFFS = (1, 5, 10)


def ranks_of(neighbours: Neighbours, relevant: Sequence[int]) -> np.ndarray:
    """Rank (1 = first) of each query's relevant indexed ticket; inf where it is not among
    the neighbours."""
    ranks = np.full(len(relevant), np.inf)
    for row, target in enumerate(relevant):
        hit = np.flatnonzero(neighbours.positions[row] == target)
        if hit.size:
            ranks[row] = hit[0] + 1
    return ranks


def recall_at(ranks: np.ndarray, cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    """Recall@k for each cutoff and the mean reciprocal rank."""
    if not len(ranks):
        return {**{f"recall@{k}": float("nan") for k in cutoffs}, "mrr": float("nan")}
    out = {f"recall@{k}": float(np.mean(ranks <= k)) for k in cutoffs}
    out["mrr"] = float(np.mean(1.0 / ranks))
    return out


def label_precision_at(
    neighbours: Neighbours, indexed_labels: np.ndarray, query_labels: np.ndarray, k: int
) -> float:
    """Mean share of a query's first `k` neighbours whose label equals the query's (queries
    without a label are left out; a missing neighbour counts as a miss)."""
    shares = []
    for row, own in enumerate(query_labels):
        if own is None or own != own:
            continue
        positions = neighbours.positions[row, :k]
        found = indexed_labels[positions[positions >= 0]]
        shares.append(float(np.sum(found == own)) / k)
    return float(np.mean(shares)) if shares else float("nan")


def precision_curve(
    neighbours: Neighbours, indexed_labels: np.ndarray, query_labels: np.ndarray, depth: int
) -> list[float]:
    """Precision@k of the label for k = 1 .. depth: how far down the list stays useful."""
    return [
        label_precision_at(neighbours, indexed_labels, query_labels, k) for k in range(1, depth + 1)
    ]


def suggestion_metrics(suggestions: Suggestions, truth: pd.Series) -> dict[str, float]:
    """Top-1 and top-3 accuracy, and the share auto-suggested with its precision."""
    known = truth.notna().to_numpy()
    values = truth.astype(str).to_numpy()[known]
    classes = suggestions.classes[known]
    hit = classes == values[:, None]
    auto = suggestions.auto[known]
    return {
        "top1_accuracy": float(hit[:, :1].any(axis=1).mean()) if len(values) else float("nan"),
        "top3_accuracy": float(hit[:, :3].any(axis=1).mean()) if len(values) else float("nan"),
        "auto_share": float(auto.mean()) if len(values) else float("nan"),
        "auto_precision": float(hit[auto, 0].mean()) if auto.any() else float("nan"),
        "tickets": len(values),
    }


def precision_at_k_figure(curve: pd.DataFrame, label: str, title: str) -> Figure:
    """Precision@k of each method in `curve` (columns besides `k`), k on the x axis."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for column in (c for c in curve.columns if c != "k"):
        ax.plot(curve["k"], curve[column], marker="o", label=column)
    ax.set(
        xlabel="neighbours shown (k)",
        ylabel=f"share sharing the ticket's {label.removeprefix('label_')}",
        ylim=(0, 1),
        title=title,
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    return cast("Figure", fig)
