"""The simple baselines a triage model must beat, fitted on the training split only.

Two cost nothing and stand for what the desk has without us: the majority class, and the
value the ITSM already holds at open (the category the caller picked, the group the ticket
was first assigned to). Two are the strongest simple learners a data scientist would try
first: logistic regression on the one-hot fields and, with text, TF-IDF + LinearSVC. A
quality claim holds only against the best of them on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from itsm_ml.catalog import CatalogEntry
from itsm_ml.triage.model import MIN_TEXT_SHARE

MAJORITY = "majority class"
AT_OPEN = "keep the value set at open"
LOGISTIC = "one-hot logistic regression"
TFIDF_SVC = "TF-IDF words+chars + LinearSVC"


@dataclass(frozen=True)
class Guess:
    """A baseline's answer on the test rows: its labels and, for a yes/no label, a score of
    the positive class (`is_probability`: a Brier score means something)."""

    labels: pd.Series
    score: np.ndarray | None = None
    is_probability: bool = False


def cheap_guesses(
    train: pd.DataFrame, test: pd.DataFrame, entry: CatalogEntry, positive: str | None = None
) -> dict[str, Guess]:
    """Majority class and keep-at-open: what the desk has without a model."""
    labels = train[entry.label].dropna().astype(str)
    majority = labels.value_counts().index[0]
    found = {
        MAJORITY: Guess(
            pd.Series(majority, index=test.index),
            None if positive is None else np.full(len(test), float(np.mean(labels == positive))),
            is_probability=True,
        )
    }
    at_open = entry.keep_at_open(test)
    if at_open:
        kept = test[at_open].astype("string").fillna(majority).astype(str)
        score = None if positive is None else (kept == positive).to_numpy(dtype=float)
        found[AT_OPEN] = Guess(kept, score, is_probability=True)
    return found


def learned_guesses(
    train: pd.DataFrame,
    test: pd.DataFrame,
    entry: CatalogEntry,
    *,
    text_column: str | None,
    positive: str | None = None,
) -> dict[str, Guess]:
    """One-hot logistic regression on the model's fields and, when the tickets have text,
    TF-IDF + LinearSVC on it: scikit-learn's defaults, as a first try would use them."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.svm import LinearSVC

    known = train[entry.label].notna().to_numpy()
    train = train[known]
    y = train[entry.label].astype(str).to_numpy()
    found: dict[str, Guess] = {}
    if len(set(y)) < 2:
        return found
    fields = [c for c in entry.feature_columns(train) if c != text_column and c in test]
    if fields:
        encoder = OneHotEncoder(handle_unknown="ignore")
        logistic = LogisticRegression(max_iter=1000, random_state=0).fit(
            encoder.fit_transform(_strings(train[fields])), y
        )
        proba = logistic.predict_proba(encoder.transform(_strings(test[fields])))
        found[LOGISTIC] = Guess(
            pd.Series(logistic.classes_[proba.argmax(axis=1)], index=test.index),
            _column(proba, logistic.classes_, positive),
            is_probability=True,
        )
    if text_column and text_column in train and _has_text(train[text_column]):
        # Words and characters: the strongest version of this baseline we know (characters
        # catch codes, typos and inflections that word n-grams miss).
        words = make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )
        # Seeded: liblinear's shuffling would move the reports in git from run to run.
        svc = LinearSVC(random_state=0).fit(words.fit_transform(_text(train[text_column])), y)
        margins = svc.decision_function(words.transform(_text(test.get(text_column))))
        if margins.ndim == 1:  # two classes: the margin of the second
            score = margins if positive == str(svc.classes_[1]) else -margins
            labels = np.where(margins > 0, svc.classes_[1], svc.classes_[0])
        else:
            score = _column(margins, svc.classes_, positive)
            labels = svc.classes_[margins.argmax(axis=1)]
        found[TFIDF_SVC] = Guess(pd.Series(labels, index=test.index), score)
    return found


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype("string").fillna("__missing__").astype(str)


def _text(values: pd.Series | None) -> pd.Series:
    if values is None:
        return pd.Series(dtype=str)
    return values.astype("string").fillna("").astype(str)


def _has_text(values: pd.Series) -> bool:
    # The same rule as the model's: a column mostly empty is no text source.
    return bool(_text(values).str.len().gt(0).mean() >= MIN_TEXT_SHARE)


def _column(scores: np.ndarray, classes: np.ndarray, positive: str | None) -> np.ndarray | None:
    if positive is None:
        return None
    index = [str(c) for c in classes].index(positive) if positive in map(str, classes) else None
    return None if index is None else np.asarray(scores[:, index], dtype=float)
