"""Temperature scaling: one parameter, fitted on the validation split only.

With dozens of classes and a few thousand validation tickets, per-class calibrators
(one-vs-rest sigmoid, isotonic) overfit the small classes; a single temperature keeps the
ranking of classes, and so accuracy, unchanged while fixing over- or under-confidence.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator


class TemperatureScaler(BaseEstimator):  # type: ignore[misc]
    """Softmax of scores divided by a temperature that minimises validation log-loss."""

    def __init__(self, bounds: tuple[float, float] = (0.05, 20.0)) -> None:
        self.bounds = bounds

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> TemperatureScaler:
        """`scores`: (n, classes) logits or log-probabilities; `targets`: class indices, -1 to skip."""
        known = targets >= 0
        scores, targets = scores[known], targets[known]
        if len(targets) == 0:
            self.temperature_ = 1.0
            return self

        def loss(temperature: float) -> float:
            logp = log_softmax(scores / temperature, axis=1)
            return float(-logp[np.arange(len(targets)), targets].mean())

        result = minimize_scalar(loss, bounds=self.bounds, method="bounded")
        self.temperature_ = float(result.x)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(np.exp(log_softmax(scores / self.temperature_, axis=1)))
