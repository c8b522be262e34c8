"""What fixed the neighbours, as a suggestion for the new ticket.

The neighbours vote for their resolution (a closure code, a knowledge article, a runbook):
each vote weighs exp(score - best score), so a neighbour far behind the best counts little,
and every class keeps a share of its frequency (`prior_weight` pseudo-votes), so that three
neighbours agreeing by chance do not make a certainty. The log of the smoothed shares goes
through the same calibrators and per-class precision thresholds as triage: a suggestion is
`auto_suggest` only where validation showed the target precision with margin.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from itsm_ml.calibration import ChosenCalibrator, choose_calibrator
from itsm_ml.evaluation import auto_route_mask, fit_class_thresholds
from itsm_ml.knowledge.retrieval import Neighbours


@dataclass(frozen=True)
class Suggestions:
    """Per ticket, the classes best first with calibrated probabilities, and whether the
    first may be applied without a person (`auto`)."""

    classes: np.ndarray  # (tickets, top) object
    probabilities: np.ndarray  # (tickets, top)
    auto: np.ndarray  # (tickets,) bool

    @property
    def first(self) -> pd.Series:
        return pd.Series(self.classes[:, 0] if self.classes.size else [], dtype=object)


def neighbour_votes(
    neighbours: Neighbours,
    labels: np.ndarray,
    classes: np.ndarray,
    prior: np.ndarray,
    prior_weight: float,
) -> np.ndarray:
    """(tickets, classes) log of the smoothed, score-weighted vote shares."""
    index = {c: i for i, c in enumerate(classes)}
    votes = np.tile(prior * prior_weight, (len(neighbours), 1))
    positions, scores = neighbours.positions, neighbours.scores
    for row in range(len(neighbours)):
        valid = positions[row] >= 0
        if not valid.any():
            continue
        weight = np.exp(scores[row, valid] - scores[row, valid].max())
        for label, w in zip(labels[positions[row, valid]], weight, strict=True):
            column = index.get(label)
            if column is not None:
                votes[row, column] += w
    return np.asarray(np.log(votes / votes.sum(axis=1, keepdims=True)))


class ResolutionSuggester:
    """Learns the classes and their frequencies from the indexed tickets' labels, then the
    calibration and thresholds from a validation set's neighbours."""

    def __init__(
        self,
        prior_weight: float = 1.0,
        top: int = 3,
        target_precision: float = 0.9,
        threshold_z: float = 1.0,
        min_class_support: int = 30,
        seed: int = 0,
    ) -> None:
        self.prior_weight = prior_weight
        self.top = top
        self.target_precision = target_precision
        self.threshold_z = threshold_z
        self.min_class_support = min_class_support
        self.seed = seed

    def fit(self, indexed_labels: pd.Series) -> ResolutionSuggester:
        known = indexed_labels.dropna().astype(str)
        counts = known.value_counts()
        self.classes_ = counts.index.to_numpy(dtype=object)
        self.prior_ = (counts / counts.sum()).to_numpy(dtype=float)
        self.labels_ = indexed_labels.astype("string").to_numpy(dtype=object, na_value=None)
        self.eligible_ = [str(c) for c, n in counts.items() if n >= self.min_class_support]
        self.calibrator_: ChosenCalibrator | None = None
        self.thresholds_: dict[str, float] = {}
        return self

    def with_labels(self, indexed_labels: pd.Series) -> ResolutionSuggester:
        """The same classes, calibration and thresholds over a rebuilt index's labels (a
        class the index gained since is not voted for until the next fit)."""
        rebuilt = copy.copy(self)
        rebuilt.labels_ = indexed_labels.astype("string").to_numpy(dtype=object, na_value=None)
        return rebuilt

    def logits(self, neighbours: Neighbours) -> np.ndarray:
        return neighbour_votes(
            neighbours, self.labels_, self.classes_, self.prior_, self.prior_weight
        )

    def calibrate(self, neighbours: Neighbours, truth: pd.Series) -> ResolutionSuggester:
        """Calibration and auto-suggest thresholds from validation tickets' neighbours."""
        logits = self.logits(neighbours)
        index = {c: i for i, c in enumerate(self.classes_)}
        targets = np.array([index.get(v, -1) for v in truth.astype(str)], dtype=np.int64)
        targets[truth.isna().to_numpy()] = -1
        self.calibrator_ = choose_calibrator(logits, targets, seed=self.seed)
        proba = self.calibrator_.transform(logits)
        labelled = targets >= 0
        predicted = pd.Series(self.classes_[proba.argmax(axis=1)][labelled])
        self.thresholds_ = fit_class_thresholds(
            predicted,
            proba.max(axis=1)[labelled],
            truth[labelled].astype(str).reset_index(drop=True),
            target_precision=self.target_precision,
            eligible=self.eligible_,
            z=self.threshold_z,
        )
        return self

    def probabilities(self, neighbours: Neighbours) -> np.ndarray:
        logits = self.logits(neighbours)
        if self.calibrator_ is None:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
        return np.asarray(self.calibrator_.transform(logits))

    def suggest(self, neighbours: Neighbours) -> Suggestions:
        proba = self.probabilities(neighbours)
        top = min(self.top, proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :top]
        classes = self.classes_[order]
        best = np.take_along_axis(proba, order, axis=1)
        auto = (
            auto_route_mask(pd.Series(classes[:, 0]), best[:, 0], self.thresholds_)
            if top
            else np.zeros(len(proba), dtype=bool)
        )
        return Suggestions(classes=classes, probabilities=best, auto=auto)
