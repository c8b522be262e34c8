"""Ticket triage: predict a ticket's final label (group, category, priority) at open time.

Two estimators, chosen by what the source has:
- with text: TF-IDF of word and character n-grams, plus the open-time fields one-hot encoded
  (weighted down, values seen once pooled), into a linear SVM whose class weights lift the
  small classes. Stacking the text scores into a booster instead was tried during
  development and was both less accurate and far slower on ticket-assignment;
- without text: LightGBM on the open-time fields, rare values bucketed so high-cardinality
  codes (callers, locations) cannot be memorised.
The scores are calibrated by a temperature fitted on the validation split, and per-class
thresholds for the target precision are learned there too: `respond` says which
predictions may be auto-routed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax
from sklearn.base import BaseEstimator

from itsm_ml.evaluation import NEVER, fit_class_thresholds
from itsm_ml.triage.calibration import TemperatureScaler

OTHER = "__other__"
MISSING = "__missing__"
_MIN_TEXT_SHARE = 0.1  # below this share of non-empty texts, the source counts as text-less


class NotFittedError(RuntimeError):
    pass


class TriageModel(BaseEstimator):  # type: ignore[misc]
    """A calibrated classifier of canonical tickets with the scikit-learn contract."""

    def __init__(
        self,
        *,
        categorical: Sequence[str] = (),
        text_column: str | None = "text",
        target_precision: float = 0.9,
        threshold_z: float = 1.0,
        min_class_support: int = 30,
        top_k: int = 3,
        min_category_count: int = 20,
        text_c: float = 1.0,
        categorical_weight: float = 0.5,
        class_weight_power: float = 0.5,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 30,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.categorical = categorical
        self.text_column = text_column
        self.target_precision = target_precision
        self.threshold_z = threshold_z
        self.min_class_support = min_class_support
        self.top_k = top_k
        self.min_category_count = min_category_count
        self.text_c = text_c
        self.categorical_weight = categorical_weight
        self.class_weight_power = class_weight_power
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ----------------------------------------------------------------------------- fitting

    def fit(
        self, X: pd.DataFrame, y: pd.Series, X_valid: pd.DataFrame, y_valid: pd.Series
    ) -> TriageModel:
        """Fit on train; calibrate, early-stop and learn thresholds on validation only."""
        X, y = _labelled(X, y)
        X_valid, y_valid = _labelled(X_valid, y_valid)
        if y.nunique() < 2:
            raise ValueError(f"need at least two classes to learn from, got {sorted(set(y))}")
        self.classes_ = np.array(sorted(set(y)))
        self._index = {label: i for i, label in enumerate(self.classes_)}
        self.class_support_ = y.value_counts().reindex(self.classes_, fill_value=0)
        self.categorical_ = [c for c in self.categorical if c in X and X[c].notna().any()]
        self.__dict__.pop("_level_cache", None)  # levels change with every fit
        self.levels_ = {c: _frequent(X[c], self.min_category_count) for c in self.categorical_}
        self.uses_text_ = bool(
            self.text_column
            and self.text_column in X
            and _texts(X, self.text_column).str.len().gt(0).mean() >= _MIN_TEXT_SHARE
        )
        if not self.uses_text_ and not self.categorical_:
            raise ValueError(
                "no usable feature: the tickets have neither text nor open-time fields"
            )
        y_index = y.map(self._index).to_numpy()
        if self.uses_text_:
            self._fit_linear(X, y_index)
        else:
            self._fit_booster(X, y_index, X_valid, y_valid)

        valid_scores = self._scores(X_valid)
        valid_targets = y_valid.map(self._index).fillna(-1).astype(int).to_numpy()
        self.calibrator_ = TemperatureScaler().fit(valid_scores, valid_targets)
        proba = self.calibrator_.transform(valid_scores)
        eligible = self.class_support_[self.class_support_ >= self.min_class_support].index
        self.thresholds_ = fit_class_thresholds(
            pd.Series(self.classes_[proba.argmax(axis=1)]),
            proba.max(axis=1),
            y_valid.reset_index(drop=True),
            target_precision=self.target_precision,
            eligible={str(c) for c in eligible},
            z=self.threshold_z,
        )
        return self

    def _fit_linear(self, X: pd.DataFrame, y_index: np.ndarray) -> None:
        from sklearn.svm import LinearSVC

        counts = np.bincount(y_index, minlength=len(self.classes_)).astype(float)
        # (largest / own size) ** power: small classes count more, without drowning the big ones.
        weights = (counts.max() / np.maximum(counts, 1)) ** self.class_weight_power
        self.linear_ = _linear_features(
            self.categorical_, self.text_column, self.categorical_weight
        )
        features = self.linear_.fit_transform(self._prepared(X))
        # Integer labels: LinearSVC refuses string-keyed class weights on two classes.
        self.svm_ = LinearSVC(C=self.text_c, class_weight=dict(enumerate(weights)))
        self.svm_.fit(features, y_index)

    def _fit_booster(
        self, X: pd.DataFrame, y_index: np.ndarray, X_valid: pd.DataFrame, y_valid: pd.Series
    ) -> None:
        import lightgbm as lgb

        known = y_valid.isin(self._index).to_numpy()
        valid = self._structured(X_valid[known])
        has_valid = len(valid) > 0
        # Two classes: LightGBM's multiclass objective refuses them; binary gives one log-odds.
        self.booster_ = lgb.LGBMClassifier(
            objective="binary" if len(self.classes_) == 2 else "multiclass",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            cat_smooth=10,
            min_data_per_group=20,
            max_cat_to_onehot=8,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        )
        self.booster_.fit(
            self._structured(X),
            y_index,
            eval_X=(valid,) if has_valid else None,
            eval_y=(y_valid[known].map(self._index).to_numpy(),) if has_valid else None,
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
            if has_valid
            else None,
        )
        # LightGBM numbers only the classes it saw; its columns map back onto ours.
        self._booster_columns = np.asarray(self.booster_.classes_, dtype=int)

    # ------------------------------------------------------------------------- features

    def _prepared(self, X: pd.DataFrame) -> pd.DataFrame:
        """Text as plain strings and fields with missing values spelled out, for sklearn."""
        frame = pd.DataFrame(index=X.index)
        if self.uses_text_:
            frame[self.text_column] = _texts(X, self.text_column).astype(str)
        for column in self.categorical_:
            frame[column] = X[column].astype("string").fillna(MISSING).astype(str)
        return frame

    def _structured(self, X: pd.DataFrame) -> pd.DataFrame:
        columns = {
            c: pd.Categorical.from_codes(self._bucket_codes(X, c), dtype=self._levels(c))
            for c in self.categorical_
        }
        return pd.DataFrame(columns, index=X.index)

    def _levels(self, column: str) -> pd.CategoricalDtype:
        """The column's known levels, then OTHER (rare, unseen and missing values)."""
        return self._cached(
            "dtype", column, lambda: pd.CategoricalDtype([*self.levels_[column], OTHER])
        )

    def _codes(self, X: pd.DataFrame, column: str) -> np.ndarray:
        """Each value's index among the column's known levels; -1 if rare, unseen or missing.

        A dict lookup, built once per column: pandas' fixed cost per call was most of the time
        of scoring one ticket, and on large inputs the lookup keeps pace with it."""
        lookup = self._cached(
            "lookup", column, lambda: {v: i for i, v in enumerate(self.levels_[column])}
        )
        values = X[column]
        if values.dtype != "string":
            values = values.astype("string")
        raw = values.to_numpy(dtype=object, na_value=None)
        return np.fromiter((lookup.get(v, -1) for v in raw), dtype=np.int64, count=len(raw))

    def _bucket_codes(self, X: pd.DataFrame, column: str) -> np.ndarray:
        codes = self._codes(X, column)
        codes[codes < 0] = len(self.levels_[column])  # OTHER
        return codes

    def _cached(self, kind: str, column: str, build: Any) -> Any:
        cache = self.__dict__.setdefault("_level_cache", {})
        if (kind, column) not in cache:
            cache[kind, column] = build()
        return cache[kind, column]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_level_cache", None)  # rebuilt on first use
        return state

    def _complete(self, X: pd.DataFrame) -> pd.DataFrame:
        """Add the feature columns a caller left out, as missing values."""
        needed = [*self.categorical_, *([self.text_column] if self.uses_text_ else [])]
        absent = [c for c in needed if c not in X]
        if not absent:
            return X
        filled = X.copy()
        for column in absent:
            filled[column] = pd.Series(pd.NA, index=X.index, dtype="string")
        return filled

    # ----------------------------------------------------------------------------- scoring

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrator_"):
            raise NotFittedError("TriageModel is not fitted yet: call fit() first")

    def _scores(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated scores (n, classes): SVM margins, or log-odds from the booster."""
        X = self._complete(X)
        if self.uses_text_:
            features = self.linear_.transform(self._prepared(X))
            margins = np.asarray(self.svm_.decision_function(features))
            if margins.ndim == 1:  # two classes: one margin, for the second
                margins = np.column_stack([-margins, margins])
            return margins
        # The booster gets the category codes directly: they are the codes LightGBM's pandas
        # path would compute from the same fixed categories, without its per-call overhead
        # (most of the time of a one-ticket request).
        codes = np.column_stack([self._bucket_codes(X, c) for c in self.categorical_])
        raw = np.asarray(self.booster_.booster_.predict(codes.astype(float), raw_score=True))
        if raw.ndim == 1:  # binary: log-odds of the second class; softmax([0, r]) = sigmoid(r)
            raw = np.column_stack([np.zeros_like(raw), raw])
        raw = raw.reshape(len(X), -1)
        scores = np.full((len(X), len(self.classes_)), -1e3)
        scores[:, self._booster_columns] = raw
        return scores

    def predict_proba(self, X: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        """Class probabilities; `calibrated=False` gives the raw softmax, for comparison."""
        self._check_fitted()
        scores = self._scores(X)
        if calibrated:
            return self.calibrator_.transform(scores)
        return np.asarray(np.exp(log_softmax(scores, axis=1)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])

    def notes(self, X: pd.DataFrame) -> pd.Series:
        """What each ticket had that the model never saw, and how it fell back."""
        self._check_fitted()
        X = self._complete(X)
        per_ticket: list[list[str]] = [[] for _ in range(len(X))]
        for column in self.categorical_:
            missing = X[column].isna().to_numpy()
            known = self._codes(X, column) >= 0
            for i in np.flatnonzero(missing):
                per_ticket[i].append(f"no {column}")
            for i in np.flatnonzero(~missing & ~known):
                per_ticket[i].append(f"unseen {column} (treated as rare)")
        if self.uses_text_:
            empty = _texts(X, self.text_column).str.strip().str.len().eq(0).to_numpy()
            fallback = "structured fields only" if self.categorical_ else "class priors only"
            for i in np.flatnonzero(empty):
                per_ticket[i].append(f"no text ({fallback})")
        return pd.Series(["; ".join(parts) for parts in per_ticket], index=X.index, dtype=str)

    def respond(self, X: pd.DataFrame) -> pd.DataFrame:
        """What the ITSM receives: label, probability, auto-route flag, top-k, notes."""
        proba = self.predict_proba(X)
        top = np.argsort(-proba, axis=1)[:, : self.top_k]
        label = self.classes_[top[:, 0]]
        confidence = proba[np.arange(len(proba)), top[:, 0]]
        limits = np.array([self.thresholds_.get(str(c), NEVER) for c in label], dtype=float)
        return pd.DataFrame(
            {
                "label": label.astype(str),
                "probability": confidence,
                "auto_route": confidence >= limits,
                "suggestions": [list(self.classes_[row].astype(str)) for row in top],
                "suggestion_probabilities": [
                    [float(p) for p in proba[i, row]] for i, row in enumerate(top)
                ],
                "notes": self.notes(X).to_numpy(),
            },
            index=X.index,
        )


def _labelled(X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    known = y.notna().to_numpy()
    return X.loc[known].reset_index(drop=True), y[known].astype(str).reset_index(drop=True)


def _frequent(values: pd.Series, min_count: int) -> list[str]:
    counts = values.dropna().astype(str).value_counts()
    return sorted(counts[counts >= min_count].index)


def _texts(X: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None or column not in X:
        return pd.Series("", index=X.index, dtype="string")
    return X[column].astype("string").fillna("")


def _linear_features(categorical: Sequence[str], text: str | None, weight: float) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import OneHotEncoder

    parts: list[tuple[str, Any, Any]] = []
    if text:
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        parts += [("words", words, text), ("chars", chars, text)]
    if categorical:
        # Values seen once carry no pattern; pooled, they and unseen values share one column.
        fields = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2)
        parts.append(("fields", fields, list(categorical)))
    return ColumnTransformer(
        parts, transformer_weights={"fields": weight} if categorical else None, sparse_threshold=1.0
    )
