"""BM25 over ticket words and field values, with bm25s doing the scoring.

bm25s keeps the index as a sparse matrix of precomputed term scores, so scoring a query is a
sum of a few columns. We tokenize ourselves: field values become single tokens
(`ci=sap erp`), which bm25s' word tokenizer would split, and long queries keep only their
most telling terms, because a ticket pasted with a log would otherwise touch every posting
list of the index.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.utils.validation import check_is_fitted

WORD = re.compile(r"(?u)\b\w\w+\b")


def words(text: str) -> list[str]:
    """Lower-cased words of two characters or more, English stop words left out."""
    return [w for w in WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS]


def field_tokens(columns: Sequence[str], values: Iterable[Sequence[object]]) -> list[list[str]]:
    """One token per known field value of each record: `column=value`, lower-cased."""
    out = []
    for row in values:
        out.append(
            [
                f"{column}={str(value).strip().lower()}"
                for column, value in zip(columns, row, strict=True)
                if not pd.isna(value) and str(value).strip()
            ]
        )
    return out


class Bm25Index(BaseEstimator):  # type: ignore[misc]
    """BM25 (Lucene's variant) over token lists; `scores` gives one value per document."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, max_query_terms: int = 64) -> None:
        self.k1 = k1
        self.b = b
        self.max_query_terms = max_query_terms

    def fit(self, documents: Sequence[list[str]]) -> Bm25Index:
        import bm25s

        # bm25s sets its own logger to DEBUG on import, so once anything configures the root
        # logger (DVC and MLflow do), every index build prints "Building index from tokens".
        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.retriever_ = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        # An empty index still needs one token for bm25s; an empty document is scored 0.
        self.retriever_.index(
            [list(d) for d in documents] or [[]], show_progress=False, leave_progress=False
        )
        vocabulary = self.retriever_.vocab_dict
        documents_with = np.diff(self.retriever_.scores["indptr"])
        total = max(len(documents), 1)
        self.idf_ = {
            term: float(np.log(1 + (total - documents_with[i] + 0.5) / (documents_with[i] + 0.5)))
            for term, i in vocabulary.items()
            if term
        }
        self.documents_ = len(documents)
        return self

    def query_terms(self, tokens: Sequence[str]) -> list[str]:
        """The distinct known terms of a query, its `max_query_terms` most telling ones."""
        counts = Counter(t for t in tokens if t in self.idf_)
        weight = {t: self.idf_[t] * (1 + np.log(c)) for t, c in counts.items()}
        return sorted(weight, key=lambda t: (-weight[t], t))[: self.max_query_terms]

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        check_is_fitted(self, "retriever_")
        terms = self.query_terms(tokens)
        if not terms or not self.documents_:
            return np.zeros(self.documents_, dtype=np.float32)
        return np.asarray(self.retriever_.get_scores(terms), dtype=np.float32)
