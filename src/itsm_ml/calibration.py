"""Calibrators of class scores, and the choice among them made on the validation split.

Four candidates, from least to most flexible, all fitted on validation rows only:

- "none": the softmax of the scores, the reference every other method must beat;
- "temperature": one parameter for all classes. With dozens of classes and a few thousand
  validation tickets, per-class calibrators (one-vs-rest sigmoid, isotonic) overfit the small
  classes; a single temperature fixes uniform over- or under-confidence;
- "platt": a sigmoid of the top label's log-odds, two parameters, so it also corrects a
  confidence that is off by an offset, which one temperature cannot;
- "isotonic": any increasing map of the top label's confidence, for miscalibration no
  parametric curve fits, at the price of needing many rows.

On more than two classes every method keeps the ranking of classes (argmax unchanged, so
accuracy and predicted labels never move). On two classes they are increasing in the class-1
score, so ROC AUC is kept (exactly by temperature and Platt; isotonic may tie scores, never
reverse them), and the answer follows the calibrated probability: a shifted score that said
"yes" at 0.45 now says "no", which is what calibrating a yes/no score is for.

Which one fits best depends on the data, so it is measured: each candidate is fitted on one
part of the validation rows and its calibration error (ECE) taken on the other part, folds
swapped and averaged (cross-fitting). Scoring a method on the rows it was fitted to would
always favour isotonic, which can memorise them. The winner is then refitted on all rows, and
if it is still worse than no calibration on those rows it gives way to "none": a calibrator
must never make the probabilities the thresholds and reports rely on less trustworthy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_softmax, logsumexp
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from itsm_ml.errors import ConfigError
from itsm_ml.evaluation import expected_calibration_error

METHODS = ("none", "temperature", "platt", "isotonic")
# Below this many labelled rows a 15-bin ECE is noise: no calibrator can be shown to help.
MIN_ROWS = 50
# Keeps a recalibrated top class strictly above the runner-up despite rounding.
_MARGIN = 1e-9


class Calibrator(Protocol):
    def fit(self, scores: np.ndarray, targets: np.ndarray) -> Calibrator: ...
    def transform(self, scores: np.ndarray) -> np.ndarray: ...


def _softmax(scores: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(log_softmax(scores, axis=1)))


def _labelled(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    known = targets >= 0
    return scores[known], targets[known]


def _top_logit(scores: np.ndarray) -> np.ndarray:
    """logit of the top softmax probability, computed without rounding it to 1 first."""
    ordered = np.sort(scores, axis=1)
    return np.asarray(ordered[:, -1] - logsumexp(ordered[:, :-1], axis=1))


def _binary_logit(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores[:, 1] - scores[:, 0])


def _replace_top(scores: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Softmax with the top probability set to `confidence`, the others scaled to fit.

    The top class stays the argmax when c' >= p2 / (rest + p2), rest = 1 - c being the mass of
    the other classes; that bound is at most 1/2 since p2 <= rest. A row whose other classes
    underflowed to 0 carries no information on how to share mass out, and is left as it is.
    """
    proba = _softmax(scores)
    rows = np.arange(len(proba))
    top = proba.argmax(axis=1)
    others = proba.copy()
    others[rows, top] = 0.0
    rest, second = others.sum(axis=1), others.max(axis=1)
    floor = np.divide(second, rest + second, out=np.zeros_like(rest), where=rest > 0)
    new = np.clip(confidence, floor + _MARGIN, 1 - _MARGIN)
    new = np.where(rest > 0, new, proba[rows, top])
    out = others * np.divide(1 - new, rest, out=np.zeros_like(rest), where=rest > 0)[:, None]
    out[rows, top] = new
    return np.asarray(out)


def _binary_proba(logit: np.ndarray) -> np.ndarray:
    """Class probabilities from class-1 log-odds. A yes/no answer follows its calibrated
    probability (that is the decision a calibrated score is for), so rows may cross 0.5."""
    return np.column_stack([expit(-logit), expit(logit)])


def _fit_sigmoid(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope >= 0 and intercept of P(y | x) = sigmoid(a x + b), by log-loss.

    Platt's smoothed targets keep the fit finite on a fold where every label is the same.
    """
    positives = y.sum()
    smooth = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (len(y) - positives + 2))

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        t = params[0] * x + params[1]
        residual = expit(t) - smooth
        value = float(np.mean(np.logaddexp(0, t) - smooth * t))
        return value, np.array([np.mean(residual * x), np.mean(residual)])

    result = minimize(
        loss, [1.0, 0.0], jac=True, method="L-BFGS-B", bounds=[(0, None), (None, None)]
    )
    slope, intercept = result.x
    # A flat map would erase the ranking of confidences: keep the raw scores instead.
    return (float(slope), float(intercept)) if slope > 1e-6 else (1.0, 0.0)


class SoftmaxCalibrator(BaseEstimator):  # type: ignore[misc]
    """No calibration: the softmax of the scores, the reference the others must beat."""

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> SoftmaxCalibrator:
        self.fitted_ = True
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        return _softmax(scores)


class TemperatureScaler(BaseEstimator):  # type: ignore[misc]
    """Softmax of scores divided by a temperature that minimises validation log-loss."""

    def __init__(self, bounds: tuple[float, float] = (0.05, 20.0)) -> None:
        self.bounds = bounds

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> TemperatureScaler:
        """`scores`: (n, classes) logits or log-probabilities; `targets`: class indices, -1 to skip."""
        scores, targets = _labelled(scores, targets)
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
        return _softmax(scores / self.temperature_)


class PlattCalibrator(BaseEstimator):  # type: ignore[misc]
    """Top-label Platt: sigmoid(a logit(c) + b) as the top class's probability, a >= 0.

    On two classes, ordinary Platt scaling of the class-1 log-odds. The confidence is that of
    the plain softmax, not of temperature-scaled scores: the slope already does what the
    temperature would, and stacking two fits would spend the same validation rows twice.
    """

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> PlattCalibrator:
        scores, targets = _labelled(scores, targets)
        if scores.shape[1] == 2:
            x, y = _binary_logit(scores), targets == 1
        else:
            x, y = _top_logit(scores), scores.argmax(axis=1) == targets
        self.slope_, self.intercept_ = _fit_sigmoid(x, y.astype(float)) if len(y) else (1.0, 0.0)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "slope_")
        if scores.shape[1] == 2:
            raw = _binary_logit(scores)
            return _binary_proba(self.slope_ * raw + self.intercept_)
        return _replace_top(scores, expit(self.slope_ * _top_logit(scores) + self.intercept_))


class IsotonicCalibrator(BaseEstimator):  # type: ignore[misc]
    """Top-label isotonic regression of correctness on confidence (class 1 on two classes)."""

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> IsotonicCalibrator:
        scores, targets = _labelled(scores, targets)
        if scores.shape[1] == 2:
            x, y = _softmax(scores)[:, 1], targets == 1
        else:
            x, y = _softmax(scores).max(axis=1), scores.argmax(axis=1) == targets
        if len(y) == 0:  # nothing to learn from: the identity map
            x, y = np.array([0.0, 1.0]), np.array([False, True])
        self.isotonic_ = IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip")
        self.isotonic_.fit(x, y.astype(float))
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "isotonic_")
        proba = _softmax(scores)
        if scores.shape[1] == 2:
            p = np.clip(self.isotonic_.predict(proba[:, 1]), 1e-12, 1 - 1e-12)
            return _binary_proba(np.log(p) - np.log1p(-p))
        return _replace_top(scores, self.isotonic_.predict(proba.max(axis=1)))


CALIBRATORS: dict[str, Callable[[], Calibrator]] = {
    "none": SoftmaxCalibrator,
    "temperature": TemperatureScaler,
    "platt": PlattCalibrator,
    "isotonic": IsotonicCalibrator,
}


def top_label_ece(proba: np.ndarray, targets: np.ndarray) -> float:
    """ECE of the top class's probability, as the reports compute it; -1 targets skipped."""
    known = targets >= 0
    proba, targets = proba[known], targets[known]
    return expected_calibration_error(proba.max(axis=1), proba.argmax(axis=1) == targets)


class ChosenCalibrator(BaseEstimator):  # type: ignore[misc]
    """The calibrator with the lowest cross-fitted ECE, never worse than none on validation.

    `tolerance`: the first of `methods` (listed simplest first) whose cross-fitted ECE is within
    this much of the lowest is chosen. 0 takes the lowest; a little (0.01) keeps a flexible
    method from winning on fold noise alone, which on small validation sets it often does.
    """

    def __init__(
        self,
        methods: Sequence[str] = METHODS,
        folds: int = 2,
        seed: int = 0,
        tolerance: float = 0.0,
    ) -> None:
        self.methods = methods
        self.folds = folds
        self.seed = seed
        self.tolerance = tolerance

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> ChosenCalibrator:
        unknown = sorted(set(self.methods) - set(CALIBRATORS))
        if unknown or not self.methods or self.folds < 2:
            raise ConfigError(
                f"calibration: methods must be a non-empty subset of {list(CALIBRATORS)} "
                f"(got unknown {unknown}) and folds at least 2 (got {self.folds})"
            )
        scores, targets = _labelled(scores, targets)
        # Too few rows, or one class only (a fit would learn that class, not the model's
        # calibration: a temperature sharpens to its bound): nothing can beat the softmax.
        self.scores_: dict[str, float] = {}
        if len(targets) >= max(MIN_ROWS, self.folds) and len(np.unique(targets)) > 1:
            parts = np.array_split(
                np.random.default_rng(self.seed).permutation(len(targets)), self.folds
            )
            for name in self.methods:
                errors = []
                for held in parts:
                    train = np.setdiff1d(np.arange(len(targets)), held)
                    fitted = CALIBRATORS[name]().fit(scores[train], targets[train])
                    errors.append(top_label_ece(fitted.transform(scores[held]), targets[held]))
                self.scores_[name] = float(np.mean(errors))
        fitted_all = {
            name: CALIBRATORS[name]().fit(scores, targets)
            for name in dict.fromkeys(["none", *self.scores_])
        }
        self.ece_ = {
            name: top_label_ece(model.transform(scores), targets)
            for name, model in fitted_all.items()
        }
        lowest = min(self.scores_.values(), default=0.0)
        best = next((m for m, e in self.scores_.items() if e <= lowest + self.tolerance), "none")
        self.method_ = best if self.ece_[best] <= self.ece_["none"] else "none"
        self.calibrator_ = fitted_all[self.method_]
        self.temperature_ = float(getattr(self.calibrator_, "temperature_", 1.0))
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        return self.calibrator_.transform(scores)


def choose_calibrator(
    scores: np.ndarray,
    targets: np.ndarray,
    *,
    methods: Sequence[str] = METHODS,
    folds: int = 2,
    seed: int = 0,
    tolerance: float = 0.0,
) -> ChosenCalibrator:
    """Fit a `ChosenCalibrator` on validation `scores` (n, classes) and `targets` (-1 skips)."""
    return ChosenCalibrator(methods=methods, folds=folds, seed=seed, tolerance=tolerance).fit(
        scores, targets
    )
