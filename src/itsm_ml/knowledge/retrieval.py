"""Similar past tickets: lexical, dense and fused retrieval over an in-process index.

Each *signal* scores every indexed ticket for a query: BM25 on the whole text or on its first
line (the short description of most exports), static embeddings on the same two views, and
BM25 on the field values (`ci=...`, `category=...`), the only view of a text-less export.
A *method* sums the signals it uses, each standardised over the tickets the query may see
(a z-score per query): BM25 grows with query length and cosines do not, so raw sums would
let one signal decide. The method is chosen on validation (`knowledge/stage.py`).

A query never sees itself, a ticket opened at or after it, or a ticket whose filter fields
disagree with its own; boost fields add to the score of tickets that share the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from itsm_ml.errors import ConfigError
from itsm_ml.knowledge.embedding import StaticEmbedder
from itsm_ml.knowledge.lexical import Bm25Index, field_tokens, words

# signal -> (scorer, view)
SIGNALS: dict[str, tuple[str, str]] = {
    "bm25": ("lexical", "text"),
    "bm25_title": ("lexical", "title"),
    "dense": ("dense", "text"),
    "dense_title": ("dense", "title"),
    "fields": ("lexical", "fields"),
}
# method -> the signals it sums. Field values are a method of their own, alone and added to
# the text: on ticket-assignment the caller as a token lowered precision@5 of the text fusion
# from 0.620 to 0.596, while on a text-less export the fields are all there is.
TEXT_SIGNALS = ("bm25", "bm25_title", "dense", "dense_title")
METHODS: dict[str, tuple[str, ...]] = {
    "bm25": ("bm25",),
    "dense": ("dense",),
    "fusion": TEXT_SIGNALS,
    "fields": ("fields",),
    "fusion_fields": (*TEXT_SIGNALS, "fields"),
}


def views(tickets: pd.DataFrame, text_column: str) -> dict[str, list[str]]:
    """The text views of tickets: the whole text and its first line."""
    text = (
        tickets[text_column].astype("string").fillna("").tolist()
        if text_column in tickets
        else [""] * len(tickets)
    )
    return {"text": text, "title": [t.split("\n", 1)[0] for t in text]}


@dataclass(frozen=True)
class Neighbours:
    """Per query, the positions of its nearest indexed tickets (-1: none) and their scores,
    best first."""

    positions: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.positions)


class TicketIndex(BaseEstimator):  # type: ignore[misc]
    """An index of tickets answering "which earlier tickets are most like this one".

    `fields`: columns whose values are matched as tokens (the `fields` signal); `boost`:
    column -> score added when a ticket shares the query's value; `filter`: columns whose
    value, when both tickets have one, must be equal.
    """

    def __init__(
        self,
        method: str = "fusion",
        text_column: str = "text",
        time_column: str | None = "opened_at",
        fields: Sequence[str] = (),
        boost: Mapping[str, float] | None = None,
        filter: Sequence[str] = (),
        k1: float = 1.2,
        b: float = 0.75,
        max_query_terms: int = 64,
        max_tokens: int = 512,
    ) -> None:
        self.method = method
        self.text_column = text_column
        self.time_column = time_column
        self.fields = fields
        self.boost = boost
        self.filter = filter
        self.k1 = k1
        self.b = b
        self.max_query_terms = max_query_terms
        self.max_tokens = max_tokens

    def fit(self, tickets: pd.DataFrame) -> TicketIndex:
        if self.method not in METHODS:
            raise ConfigError(f"retrieval method {self.method!r}; expected one of {list(METHODS)}")
        text = views(tickets, self.text_column)
        self.fields_ = [c for c in self.fields if c in tickets]
        self.has_text_ = any(t.strip() for t in text["text"])
        self.signals_ = [s for s in SIGNALS if self._usable(s)]
        self.lexical_: dict[str, Bm25Index] = {}
        self.dense_: dict[str, np.ndarray] = {}
        needs_embedder = any(SIGNALS[s][0] == "dense" for s in self.signals_)
        self.embedder_ = (
            StaticEmbedder(self.max_tokens).fit(text["text"]) if needs_embedder else None
        )
        for signal in self.signals_:
            scorer, view = SIGNALS[signal]
            if scorer == "lexical":
                tokens = self._tokens(tickets, view, text)
                self.lexical_[signal] = Bm25Index(self.k1, self.b, self.max_query_terms).fit(tokens)
            else:
                assert self.embedder_ is not None
                self.dense_[signal] = self.embedder_.transform(text[view])
        group_columns = dict.fromkeys([*(self.boost or {}), *self.filter])
        self.groups_ = {
            c: tickets[c].astype("string").to_numpy(dtype=object, na_value=None)
            for c in group_columns
            if c in tickets
        }
        self.times_ = (
            tickets[self.time_column].to_numpy(dtype="datetime64[ns]")
            if self.time_column and self.time_column in tickets
            else None
        )
        self.size_ = len(tickets)
        return self

    def _usable(self, signal: str) -> bool:
        view = SIGNALS[signal][1]
        if signal not in METHODS[self.method]:
            return False
        return bool(self.fields_) if view == "fields" else self.has_text_

    def _tokens(
        self, tickets: pd.DataFrame, view: str, text: dict[str, list[str]]
    ) -> list[list[str]]:
        if view == "fields":
            frame = tickets.reindex(columns=self.fields_)
            return field_tokens(self.fields_, frame.astype(object).itertuples(index=False))
        return [words(t) for t in text[view]]

    def signal_scores(self, queries: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each signal's raw scores, (queries, indexed tickets)."""
        check_is_fitted(self, "signals_")
        text = views(queries, self.text_column)
        out = {}
        for signal in self.signals_:
            scorer, view = SIGNALS[signal]
            if scorer == "lexical":
                tokens = self._tokens(queries, view, text)
                out[signal] = (
                    np.stack([self.lexical_[signal].scores(t) for t in tokens])
                    if tokens
                    else np.zeros((0, self.size_), np.float32)
                )
            else:
                assert self.embedder_ is not None
                out[signal] = self.embedder_.transform(text[view]) @ self.dense_[signal].T
        return out

    def visible(self, queries: pd.DataFrame, exclude: Sequence[int] | None = None) -> np.ndarray:
        """(queries, indexed) True where the query may see the indexed ticket: opened before
        it, not itself (`exclude`: the query's own position in the index, -1 if absent), and
        agreeing on the filter fields."""
        mask = np.ones((len(queries), self.size_), dtype=bool)
        if self.times_ is not None and self.time_column in queries:
            at = queries[self.time_column].to_numpy(dtype="datetime64[ns]")
            known = ~np.isnat(at)
            mask[known] &= self.times_[None, :] < at[known, None]
        if exclude is not None:
            rows = np.flatnonzero(np.asarray(exclude) >= 0)
            mask[rows, np.asarray(exclude)[rows]] = False
        for column in self.filter:
            if column in self.groups_ and column in queries:
                own = queries[column].astype("string").to_numpy(dtype=object, na_value=None)
                indexed = self.groups_[column]
                for row, value in enumerate(own):
                    if value is not None:
                        mask[row] &= (indexed == value) | (indexed == None)  # noqa: E711
        return mask

    def scores(self, queries: pd.DataFrame, exclude: Sequence[int] | None = None) -> np.ndarray:
        """The method's score of every indexed ticket, -inf where the query may not see it."""
        mask = self.visible(queries, exclude)
        total = np.zeros(mask.shape, dtype=np.float64)
        for raw in self.signal_scores(queries).values():
            total += _standardised(raw, mask)
        for column, weight in (self.boost or {}).items():
            if column in self.groups_ and column in queries:
                own = queries[column].astype("string").to_numpy(dtype=object, na_value=None)
                same = self.groups_[column][None, :] == own[:, None]
                total += weight * (same & (own[:, None] != None))  # noqa: E711
        return np.where(mask, total, -np.inf)

    def search(
        self,
        queries: pd.DataFrame,
        k: int,
        exclude: Sequence[int] | None = None,
        chunk: int = 256,
    ) -> Neighbours:
        """The `k` best visible tickets per query, best first; queries are scored `chunk` at
        a time, so memory stays at chunk x indexed tickets whatever the batch."""
        parts = []
        for start in range(0, len(queries), chunk):
            stop = start + chunk
            own = None if exclude is None else list(exclude[start:stop])
            parts.append(top_k(self.scores(queries.iloc[start:stop], own), k))
        if not parts:
            return top_k(np.zeros((0, self.size_)), k)
        return Neighbours(
            np.concatenate([p.positions for p in parts]),
            np.concatenate([p.scores for p in parts]),
        )


def _standardised(raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each row as z-scores over its visible entries; a constant row contributes nothing."""
    count = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    values = np.where(mask, raw, 0.0)
    mean = values.sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(mask, (raw - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    return np.asarray(np.divide(raw - mean, spread, out=np.zeros(raw.shape), where=spread > 0))


def top_k(scores: np.ndarray, k: int) -> Neighbours:
    """Positions and scores of the `k` highest finite scores per row, best first (ties: the
    earlier position first); rows with fewer visible entries are padded with -1 and -inf."""
    k = min(k, scores.shape[1])
    if k == 0:
        empty = np.zeros((len(scores), 0))
        return Neighbours(empty.astype(np.int64), empty)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    positions = np.take_along_axis(part, order, axis=1)
    best = np.take_along_axis(values, order, axis=1)
    positions = np.where(np.isfinite(best), positions, -1)
    return Neighbours(positions.astype(np.int64), best)
