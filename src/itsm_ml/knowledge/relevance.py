"""A neighbour's similarity as a probability a person can read: how often a neighbour with
this score, this far behind the best one and at this rank had the ticket's own resolution.

Raw retrieval scores are sums of per-query z-scores: they rank one ticket's neighbours, but
a 3.2 means nothing across tickets, and showing it as "similarity 97%" is the complaint users
make of out-of-the-box similarity (an irrelevant top 3 at about 100% confidence). A logistic
model of (score, gap to the best, log rank) fitted on validation neighbours maps them to the
observed share of neighbours that shared the resolution, which evaluation checks on test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from itsm_ml.knowledge.retrieval import Neighbours

# Neighbours per validation ticket the mapping learns from: the ones an answer shows.
FIT_DEPTH = 10


def _features(neighbours: Neighbours, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, 3) features of the first `depth` neighbours, and which of them exist."""
    scores = neighbours.scores[:, :depth]
    exists = (neighbours.positions[:, :depth] >= 0) & np.isfinite(scores)
    safe = np.where(exists, scores, 0.0)
    best = safe[:, :1]
    ranks = np.broadcast_to(np.log1p(np.arange(scores.shape[1])), scores.shape)
    features = np.stack([safe, safe - best, ranks], axis=-1)
    return features, exists


@dataclass(frozen=True)
class Relevance:
    """Maps neighbours to the probability that each shares the query's resolution."""

    model: LogisticRegression | None
    base_rate: float

    def probabilities(self, neighbours: Neighbours) -> np.ndarray:
        """(queries, neighbours) probabilities; 0 where there is no neighbour."""
        depth = neighbours.positions.shape[1] if neighbours.positions.ndim == 2 else 0
        features, exists = _features(neighbours, depth)
        if self.model is None or not exists.any():
            return np.where(exists, self.base_rate, 0.0)
        out = np.zeros(exists.shape)
        out[exists] = self.model.predict_proba(features[exists])[:, 1]
        return out


def fit_relevance(
    neighbours: Neighbours, indexed_labels: np.ndarray, query_labels: np.ndarray
) -> Relevance:
    """Fitted on the validation tickets' neighbours: 1 where a neighbour's label equals the
    ticket's (tickets without a label are left out)."""
    features, exists = _features(neighbours, FIT_DEPTH)
    known = np.array([v is not None for v in query_labels], dtype=bool)
    exists &= known[:, None]
    positions = np.where(exists, neighbours.positions[:, :FIT_DEPTH], 0)
    shared = indexed_labels[positions] == query_labels[:, None]
    target = np.asarray(shared, dtype=bool)[exists]
    base_rate = float(target.mean()) if target.size else 0.0
    if target.size == 0 or target.all() or not target.any():
        return Relevance(None, base_rate)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(features[exists], target)
    return Relevance(model, base_rate)
