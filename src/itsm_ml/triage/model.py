"""Ticket triage: predict a ticket's final label (group, category, priority) at open time.

A small set of candidates is fitted on the training split and the best on the validation
split, by the target's primary metric, is kept:
- `text`: TF-IDF of word and character n-grams, plus the open-time fields one-hot encoded
  (weighted down, values seen once pooled), into a linear SVM whose class weights lift the
  small classes (only when the source has text);
- `logistic`: regularised multinomial logistic regression on the fields one-hot encoded;
  on wide code fields (callers, locations, event-log codes) it is often the strongest;
- `booster`: LightGBM on the fields, rare values bucketed so high-cardinality codes cannot
  be memorised; early stopping on validation error that cannot stop in the first
  `min_boosting_rounds` (on hundreds of rare classes the validation log-loss rises after a
  dozen rounds while accuracy still improves);
- `blend`: the mean of the candidates' log-probabilities (each tempered on validation).
No candidate sees the test split. The chosen scores are calibrated by a method chosen on
validation too (`calibration.choose_calibrator`), and per-class thresholds for the target
precision are learned there: `respond` says which predictions may be auto-routed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_softmax
from sklearn.base import BaseEstimator

from itsm_ml.calibration import TemperatureScaler, choose_calibrator
from itsm_ml.evaluation import NEVER, fit_class_thresholds
from itsm_ml.triage.encoding import LinearEncoder, UnsupportedTransformerError

OTHER = "__other__"
MISSING = "__missing__"
MIN_TEXT_SHARE = 0.1  # below this share of non-empty texts, the source counts as text-less
CANDIDATES = ("text", "logistic", "booster", "blend")
SELECTION_METRICS = ("accuracy", "auc")


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
        text_c: float | Sequence[float] = (0.3, 1.0),
        categorical_weight: float = 0.5,
        class_weight_power: float = 0.5,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 30,
        min_boosting_rounds: int = 50,
        logistic_c: float = 1.0,
        candidates: Sequence[str] = CANDIDATES,
        selection_metric: str = "accuracy",
        at_open: str | None = None,
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
        self.min_boosting_rounds = min_boosting_rounds
        self.logistic_c = logistic_c
        self.candidates = candidates
        self.selection_metric = selection_metric
        self.at_open = at_open
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
            and _texts(X, self.text_column).str.len().gt(0).mean() >= MIN_TEXT_SHARE
        )
        if not self.uses_text_ and not self.categorical_:
            raise ValueError(
                "no usable feature: the tickets have neither text nor open-time fields"
            )
        unknown = set(self.candidates) - set(CANDIDATES)
        if unknown or self.selection_metric not in SELECTION_METRICS:
            raise ValueError(
                f"candidates {sorted(unknown)} or selection metric {self.selection_metric!r}"
                f" unknown; expected some of {CANDIDATES} and one of {SELECTION_METRICS}"
            )
        y_index = y.map(self._index).to_numpy()
        valid_targets = y_valid.map(self._index).fillna(-1).astype(int).to_numpy()
        fitters = {
            "text": (
                self.uses_text_,
                lambda: self._fit_linear(X, y_index, X_valid, valid_targets),
            ),
            "logistic": (bool(self.categorical_), lambda: self._fit_logistic(X, y_index)),
            "booster": (
                bool(self.categorical_),
                lambda: self._fit_booster(X, y_index, X_valid, y_valid),
            ),
        }
        members = [m for m in self.candidates if m in fitters and fitters[m][0]]
        if "text" in members:
            # The text candidate already has the fields beside the words; fields alone lost
            # to it on every text dataset of the bench, at twice its fitting time.
            members = ["text"]
        if not members:
            raise ValueError(
                f"no candidate among {list(self.candidates)} can learn from these tickets"
                " (text candidates need text, the others open-time fields)"
            )
        valid_logp: dict[str, np.ndarray] = {}
        self.member_temperatures_: dict[str, float] = {}
        for member in members:
            fitters[member][1]()
            scores = self._member_scores(member, _Columns(X_valid))
            tempered = TemperatureScaler().fit(scores, valid_targets)
            self.member_temperatures_[member] = tempered.temperature_
            valid_logp[member] = np.log(np.clip(tempered.transform(scores), 1e-12, None))
        if "blend" in self.candidates and len(members) > 1:
            valid_logp["blend"] = np.mean([valid_logp[m] for m in members], axis=0)
        self.selection_ = {
            name: _validation_scores(logp, valid_targets, len(self.classes_))
            for name, logp in valid_logp.items()
        }
        self.chosen_ = max(self.selection_, key=self._rank)
        self.members_ = tuple(members if self.chosen_ == "blend" else [self.chosen_])
        for member in set(members) - set(self.members_):  # kept small and fast to load
            for attribute in _FITTED[member]:
                delattr(self, attribute)

        valid_scores = self._scores(_Columns(X_valid))
        # Within 0.01 of the best cross-fitted ECE the simpler method wins: a 15-bin ECE on
        # small folds rewards isotonic's steps, which then do worse on new tickets.
        self.calibrator_ = choose_calibrator(
            valid_scores, valid_targets, seed=self.random_state, tolerance=0.01
        )
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
        self._learn_deferral(X_valid, y_valid)
        self._stable_bytes()
        return self

    def _stable_bytes(self) -> None:
        """The same fit pickles to the same bytes (dvc.lock records them, and a second run on
        the same data must leave it unchanged). scikit-learn's text vectorizers keep the
        terms min_df dropped as a set, pickled in hash order and kept for introspection
        only, and a memory address as a cache key (`_stop_words_id`, recomputed if absent)."""
        for part in getattr(getattr(self, "linear_", None), "named_transformers_", {}).values():
            if hasattr(part, "stop_words_"):
                part.stop_words_ = None
            part.__dict__.pop("_stop_words_id", None)

    def _learn_deferral(self, X_valid: pd.DataFrame, y_valid: pd.Series) -> None:
        """Where to keep the value set at open instead of the model's answer.

        The person who opened the ticket often set the label right, and a class the model
        never saw, or saw on fewer than `min_class_support` tickets, it cannot predict well.
        On the ServiceNow log 4% of test tickets were such, and keeping their category at
        open was right for 97% of them where the model was right for 2%. Validation decides,
        value by value: the value at open is kept where it was right at least as often as the
        model on the validation tickets opened with it; values validation never saw are kept
        when the model knows their class too little.
        """
        self.defers_ = False
        self.defer_probability_ = float("nan")
        self.keep_values_: dict[str, float] = {}  # value at open -> chance it is right
        self.model_values_: set[str] = set()
        if not self.at_open or self.at_open not in X_valid:
            return
        values = X_valid[self.at_open].astype("string")
        truth = y_valid.astype(str).reset_index(drop=True)
        frame = pd.DataFrame(
            {
                "value": values.reset_index(drop=True),
                "kept": (values.reset_index(drop=True) == truth).fillna(False).astype(bool),
                "model": self._argmax_labels(_Columns(X_valid)) == truth.to_numpy(),
            }
        ).dropna(subset=["value"])
        if frame.empty:
            return
        overall = float(frame["kept"].mean())
        per_value = frame.groupby("value")[["kept", "model"]].agg(["sum", "size"])
        self.defers_ = True
        self.defer_probability_ = overall
        prior = 5  # tickets' worth of the overall rate, so one ticket cannot say 0% or 100%
        for value, row in per_value.iterrows():
            kept, model, size = row[("kept", "sum")], row[("model", "sum")], row[("kept", "size")]
            if kept >= model:
                self.keep_values_[str(value)] = float((kept + prior * overall) / (size + prior))
            else:
                self.model_values_.add(str(value))

    def _deferrable(self, columns: _Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows where the value set at open is kept, that value, and its chance to be right."""
        empty = np.zeros(columns.rows, dtype=bool)
        if not getattr(self, "defers_", False) or not self.at_open or not columns.has(self.at_open):
            return empty, np.full(columns.rows, "", dtype=object), np.zeros(columns.rows)
        values = columns.strings(self.at_open)
        well_known = self._cached(
            "classes",
            "well known",
            lambda: set(self.class_support_[self.class_support_ >= self.min_class_support].index),
        )
        mask = np.array(
            [
                v is not None
                and (
                    v in self.keep_values_ or (v not in self.model_values_ and v not in well_known)
                )
                for v in values
            ],
            dtype=bool,
        )
        chance = np.array(
            [
                self.keep_values_.get(v, self.defer_probability_) if m else 0.0
                for v, m in zip(values, mask, strict=True)
            ]
        )
        return mask, np.array(["" if v is None else v for v in values], dtype=object), chance

    def _argmax_labels(self, columns: _Columns) -> np.ndarray:
        return np.asarray(self.classes_[self._probabilities(columns).argmax(axis=1)]).astype(str)

    def _rank(self, name: str) -> tuple[float, float, int]:
        """The primary metric, then macro-F1; on a tie the simpler candidate (fewer models)."""
        found = self.selection_[name]
        primary = found[self.selection_metric]
        primary = -np.inf if np.isnan(primary) else primary
        return (round(primary, 6), round(found["macro_f1"], 6), -int(name == "blend"))

    def _fit_linear(
        self, X: pd.DataFrame, y_index: np.ndarray, X_valid: pd.DataFrame, valid_targets: np.ndarray
    ) -> None:
        """The linear SVM on words, characters and fields, at each `text_c` in turn; the one
        most accurate on validation is kept (how much to regularise depends on the desk's
        wording: on the built-in data 0.3 beat 1.0 by 0.02, on others the reverse)."""
        from sklearn.svm import LinearSVC

        counts = np.bincount(y_index, minlength=len(self.classes_)).astype(float)
        # (largest / own size) ** power: small classes count more, without drowning the big ones.
        weights = (counts.max() / np.maximum(counts, 1)) ** self.class_weight_power
        self.linear_ = _linear_features(
            self.categorical_, self.text_column, self.categorical_weight
        )
        features = self.linear_.fit_transform(self._prepared(X))
        valid = self.linear_.transform(self._prepared(self._complete(X_valid)))
        known = valid_targets >= 0
        self.text_c_scores_: dict[float, float] = {}
        best = None
        for c in np.atleast_1d(np.asarray(self.text_c, dtype=float)):
            # Integer labels: LinearSVC refuses string-keyed class weights on two classes.
            # liblinear shuffles with an unseeded generator otherwise: reports in git would
            # change in the eighth decimal from one run to the next.
            svm = LinearSVC(
                C=float(c), class_weight=dict(enumerate(weights)), random_state=self.random_state
            ).fit(features, y_index)
            hits = svm.predict(valid[known]) == valid_targets[known] if known.any() else []
            self.text_c_scores_[float(c)] = float(np.mean(hits)) if known.any() else float("nan")
            if best is None or self.text_c_scores_[float(c)] > self.text_c_scores_[best[0]]:
                best = (float(c), svm)
        assert best is not None  # text_c holds at least one value
        self.chosen_text_c_, self.svm_ = best

    def _fit_logistic(self, X: pd.DataFrame, y_index: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        # Values seen once carry no pattern: pooled with unseen ones in each column's OTHER.
        self.onehot_levels_ = {c: _frequent(X[c], 2) for c in self.categorical_}
        self.logistic_ = LogisticRegression(
            C=self.logistic_c, max_iter=500, random_state=self.random_state
        )
        self.logistic_.fit(self._onehot(_Columns(X)), y_index)
        self._logistic_columns = np.asarray(self.logistic_.classes_, dtype=int)

    def _onehot(self, columns: _Columns) -> Any:
        """The fields one-hot encoded from cached dict lookups: scikit-learn's OneHotEncoder
        rebuilds its lookup on every call, most of the time of scoring one ticket."""
        from scipy.sparse import csr_matrix

        blocks, offset = [], 0
        for column in self.categorical_:
            lookup = self._cached(
                "onehot",
                column,
                lambda c=column: {v: i for i, v in enumerate(self.onehot_levels_[c])},
            )
            width = len(lookup) + 1  # the last: rare, unseen or missing
            raw = columns.strings(column)
            codes = np.fromiter((lookup.get(v, width - 1) for v in raw), np.int64, len(raw))
            blocks.append(codes + offset)
            offset += width
        entries = np.column_stack(blocks).ravel()
        rows = np.repeat(np.arange(columns.rows), len(blocks))
        return csr_matrix((np.ones(len(entries)), (rows, entries)), shape=(columns.rows, offset))

    def _fit_booster(
        self, X: pd.DataFrame, y_index: np.ndarray, X_valid: pd.DataFrame, y_valid: pd.Series
    ) -> None:
        import lightgbm as lgb

        known = y_valid.isin(self._index).to_numpy()
        valid = self._structured(X_valid[known])
        has_valid = len(valid) > 0
        binary = len(self.classes_) == 2
        # Two classes: LightGBM's multiclass objective refuses them; binary gives one log-odds.
        self.booster_ = lgb.LGBMClassifier(
            objective="binary" if binary else "multiclass",
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
            eval_metric="binary_error" if binary else "multi_error",
            callbacks=[_StopAfter(self.min_boosting_rounds, self.early_stopping_rounds, "_error")]
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
        found = _Columns(X)
        columns = {
            c: pd.Categorical.from_codes(self._bucket_codes(found, c), dtype=self._levels(c))
            for c in self.categorical_
        }
        return pd.DataFrame(columns, index=X.index)

    def _levels(self, column: str) -> pd.CategoricalDtype:
        """The column's known levels, then OTHER (rare, unseen and missing values)."""
        return self._cached(
            "dtype", column, lambda: pd.CategoricalDtype([*self.levels_[column], OTHER])
        )

    def _codes(self, columns: _Columns, column: str) -> np.ndarray:
        """Each value's index among the column's known levels; -1 if rare, unseen or missing.

        A dict lookup, built once per column: pandas' fixed cost per call was most of the time
        of scoring one ticket, and on large inputs the lookup keeps pace with it."""
        lookup = self._cached(
            "lookup", column, lambda: {v: i for i, v in enumerate(self.levels_[column])}
        )
        raw = columns.strings(column)
        return np.fromiter((lookup.get(v, -1) for v in raw), dtype=np.int64, count=len(raw))

    def _bucket_codes(self, columns: _Columns, column: str) -> np.ndarray:
        codes = self._codes(columns, column)
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

    def _scores(self, columns: _Columns) -> np.ndarray:
        """Uncalibrated scores (n, classes) of the chosen candidate: one member's margins or
        log-odds, or the blend's mean tempered log-probability."""
        if len(self.members_) == 1:
            return self._member_scores(self.members_[0], columns)
        return np.asarray(
            np.mean(
                [
                    log_softmax(
                        self._member_scores(m, columns) / self.member_temperatures_[m], axis=1
                    )
                    for m in self.members_
                ],
                axis=0,
            )
        )

    def _member_scores(self, member: str, columns: _Columns) -> np.ndarray:
        if member == "text":
            margins = self._margins(self._text_features(columns))
            if margins.ndim == 1:  # two classes: one margin, for the second
                margins = np.column_stack([-margins, margins])
            return margins
        if member == "logistic":
            found = self.logistic_.predict_log_proba(self._onehot(columns))
            scores = np.full((columns.rows, len(self.classes_)), -1e3)
            scores[:, self._logistic_columns] = found
            return scores
        # The booster gets the category codes directly: they are the codes LightGBM's pandas
        # path would compute from the same fixed categories, without its per-call overhead
        # (most of the time of a one-ticket request).
        codes = np.column_stack([self._bucket_codes(columns, c) for c in self.categorical_])
        raw = np.asarray(self.booster_.booster_.predict(codes.astype(float), raw_score=True))
        if raw.ndim == 1:  # binary: log-odds of the second class; softmax([0, r]) = sigmoid(r)
            raw = np.column_stack([np.zeros_like(raw), raw])
        raw = raw.reshape(columns.rows, -1)
        scores = np.full((columns.rows, len(self.classes_)), -1e3)
        scores[:, self._booster_columns] = raw
        return scores

    def _text_features(self, columns: _Columns) -> Any:
        """Words, characters and fields as the fitted transformers make them, replayed by
        `LinearEncoder` (identical entries at a fraction of the cost); scikit-learn's own
        transform for a fitted form the encoder does not know."""
        encoder = self._cached("encoder", "linear", self._linear_encoder)
        if encoder is None:
            return self.linear_.transform(self._prepared(self._complete(columns.frame)))
        inputs = {c: columns.strings(c) for c in self.categorical_}
        if self.uses_text_:
            inputs[str(self.text_column)] = columns.texts(str(self.text_column))
        return encoder.transform(inputs, columns.rows)

    def _linear_encoder(self) -> LinearEncoder | None:
        try:
            return LinearEncoder(self.linear_, missing=MISSING)
        except UnsupportedTransformerError:
            return None

    def _margins(self, features: Any) -> np.ndarray:
        """LinearSVC.decision_function without its input checks: the same product with the
        same coefficients (kept C-ordered once, where it would copy them on every call)."""
        coefficients = self._cached(
            "svm", "coefficients", lambda: np.ascontiguousarray(self.svm_.coef_.T)
        )
        margins = np.asarray(features @ coefficients) + self.svm_.intercept_
        return np.asarray(margins.reshape(-1) if margins.shape[1] == 1 else margins)

    def _probabilities(self, columns: _Columns, *, calibrated: bool = True) -> np.ndarray:
        self._check_fitted()
        scores = self._scores(columns)
        if calibrated:
            return self.calibrator_.transform(scores)
        return np.asarray(np.exp(log_softmax(scores, axis=1)))

    def predict_proba(self, X: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        """Class probabilities; `calibrated=False` gives the raw softmax, for comparison."""
        return self._probabilities(_Columns(X), calibrated=calibrated)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most probable class, or the value set at open where the model defers to it."""
        columns = _Columns(X)
        labels = self._argmax_labels(columns).astype(object)
        mask, kept, _ = self._deferrable(columns)
        labels[mask] = kept[mask]
        return labels

    def notes(self, X: pd.DataFrame) -> pd.Series:
        """What each ticket had that the model never saw, and how it fell back."""
        self._check_fitted()
        return pd.Series(self._notes(_Columns(X)), index=X.index, dtype=str)

    def _notes(self, columns: _Columns) -> list[str]:
        per_ticket: list[list[str]] = [[] for _ in range(columns.rows)]
        for column in self.categorical_:
            for i, (value, code) in enumerate(
                zip(columns.strings(column), self._codes(columns, column), strict=True)
            ):
                if value is None:
                    per_ticket[i].append(f"no {column}")
                elif code < 0:
                    per_ticket[i].append(f"unseen {column} (treated as rare)")
        if self.uses_text_:
            fallback = "structured fields only" if self.categorical_ else "class priors only"
            for i, text in enumerate(columns.texts(str(self.text_column))):
                if not text.strip():
                    per_ticket[i].append(f"no text ({fallback})")
        return ["; ".join(parts) for parts in per_ticket]

    def respond(self, X: pd.DataFrame) -> pd.DataFrame:
        """What the ITSM receives: label, probability, auto-route flag, top-k, notes."""
        columns = _Columns(X)
        proba = self._probabilities(columns)
        top = np.argsort(-proba, axis=1)[:, : self.top_k]
        label = self.classes_[top[:, 0]].astype(str).astype(object)
        confidence = proba[np.arange(len(proba)), top[:, 0]]
        limits = np.array([self.thresholds_.get(str(c), NEVER) for c in label], dtype=float)
        suggestions = [list(self.classes_[row].astype(str)) for row in top]
        chances = [[float(p) for p in proba[i, row]] for i, row in enumerate(top)]
        notes = np.array(self._notes(columns), dtype=object)
        mask, kept, kept_chance = self._deferrable(columns)
        for i in np.flatnonzero(mask & (kept != label)):
            # Where the model already answers the kept value, its own calibrated probability
            # stays (the per-value rate is coarser: on the ServiceNow log it cost routing
            # 0.011 of ECE). Elsewhere the kept value leads; the model's guesses follow.
            rest = [(c, p) for c, p in zip(suggestions[i], chances[i], strict=True) if c != kept[i]]
            suggestions[i] = [kept[i], *[c for c, _ in rest]][: self.top_k]
            share = 1 - kept_chance[i]
            chances[i] = [kept_chance[i], *[p * share for _, p in rest]][: self.top_k]
            label[i], confidence[i], limits[i] = kept[i], kept_chance[i], NEVER
            note = (
                f"kept the {self.at_open} set at open (right at least as often as the model"
                " for this value, or a class the model knows too little)"
            )
            notes[i] = f"{notes[i]}; {note}" if notes[i] else note
        return pd.DataFrame(
            {
                "label": label.astype(str),
                "probability": confidence,
                "auto_route": confidence >= limits,
                "suggestions": suggestions,
                "suggestion_probabilities": chances,
                "notes": notes.astype(str),
            },
            index=X.index,
        )


class _Columns:
    """A request's columns as Python strings, None where missing, each converted once per
    call: pandas' cost per column and call (`astype("string")` took 70 us on one ticket)
    was most of the time of scoring one ticket. Absent columns read as all missing."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.rows = len(frame)
        self._strings: dict[str, np.ndarray] = {}

    def has(self, column: str | None) -> bool:
        return column is not None and column in self.frame

    def strings(self, column: str) -> np.ndarray:
        if column not in self._strings:
            self._strings[column] = (
                _strings(self.frame[column])
                if column in self.frame
                else np.full(self.rows, None, dtype=object)
            )
        return self._strings[column]

    def texts(self, column: str) -> np.ndarray:
        """The text as the model fitted it: '' where missing."""
        found = self.strings(column)
        return np.array(["" if text is None else text for text in found], dtype=object)


def _strings(values: pd.Series) -> np.ndarray:
    """`values.astype("string")` as Python strings and None: read as they are when they
    already are strings (what every source and request sends), pandas' conversion otherwise."""
    if isinstance(values.dtype, pd.StringDtype):
        return np.asarray(values.to_numpy(dtype=object, na_value=None))
    if values.dtype == object:
        raw = values.to_numpy(dtype=object)
        if all(type(v) is str or v is None for v in raw):
            return np.asarray(raw)
    return np.asarray(values.astype("string").to_numpy(dtype=object, na_value=None))


_FITTED = {
    "text": ("svm_", "linear_"),
    "logistic": ("logistic_",),
    "booster": ("booster_",),
}


class _StopAfter:
    """Early stopping on the first validation metric ending in `suffix` (lower is better),
    never before `min_rounds`: LightGBM's own callback can stop after a handful of rounds."""

    def __init__(self, min_rounds: int, patience: int, suffix: str) -> None:
        self.min_rounds, self.patience, self.suffix = min_rounds, patience, suffix
        self.best_score, self.best_iteration = np.inf, 0
        self.best_results: list[Any] = []
        self.order = 20  # after LightGBM's own callbacks

    def __call__(self, env: Any) -> None:
        import lightgbm as lgb

        found = [e for e in env.evaluation_result_list if e[1].endswith(self.suffix)]
        if not found:
            return
        _, _, score, _ = found[0][:4]
        if score < self.best_score:
            self.best_score, self.best_iteration = score, env.iteration
            self.best_results = env.evaluation_result_list
        rounds = env.iteration + 1
        if rounds >= self.min_rounds and env.iteration - self.best_iteration >= self.patience:
            raise lgb.callback.EarlyStopException(self.best_iteration, self.best_results)


def _validation_scores(logp: np.ndarray, targets: np.ndarray, classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and (two classes) ROC AUC of log-probabilities on validation."""
    from sklearn.metrics import f1_score, roc_auc_score

    known = targets >= 0
    logp, targets = logp[known], targets[known]
    predicted = logp.argmax(axis=1)
    found = {
        "accuracy": float(np.mean(predicted == targets)) if len(targets) else float("nan"),
        "macro_f1": float(
            f1_score(targets, predicted, labels=sorted(set(targets)), average="macro")
        )
        if len(targets)
        else float("nan"),
        "auc": float("nan"),
    }
    if classes == 2 and len(set(targets.tolist())) == 2:
        found["auc"] = float(roc_auc_score(targets, logp[:, 1] - logp[:, 0]))
    return found


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
