"""Similar past tickets: lexical, dense and fused retrieval over an in-process index.

Each *signal* scores every indexed ticket for a query: BM25 on the whole text or on its first
line (the short description of most exports), static embeddings on the same two views, and
BM25 on the field values (`ci=...`, `category=...`), the only view of a text-less export.
A *method* sums the signals it uses, each standardised over the tickets the query may see
(a z-score per query): BM25 grows with query length and cosines do not, so raw sums would
let one signal decide. The method is chosen on validation (`knowledge/stage.py`).

A query never sees itself, a ticket opened at or after it, or a ticket whose filter fields
disagree with its own; boost fields add to the score of tickets that share the value.

Past `exact_up_to` indexed tickets, a query no longer scores every ticket on every signal:
each signal proposes its best `candidates` (BM25 from the tickets sharing a term, dense
vectors from an inverted-file index in faiss), the union is scored exactly, and each signal's
mean and spread come from a fixed random sample of the index instead of from all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
        exact_up_to: int = 100_000,
        candidates: int = 500,
        seed: int = 0,
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
        self.exact_up_to = exact_up_to
        self.candidates = candidates
        self.seed = seed

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
        self.large_ = self.size_ > self.exact_up_to
        if self.large_:
            rng = np.random.default_rng(self.seed)
            sample = min(STATS_SAMPLE, self.size_)
            self.sample_ = np.sort(rng.choice(self.size_, sample, replace=False))
            self.ann_ = {s: DenseCandidates(self.seed).fit(v) for s, v in self.dense_.items()}
            self.sample_dense_ = {s: v[self.sample_] for s, v in self.dense_.items()}
            times = self.times_ if self.times_ is not None else np.array([], "datetime64[ns]")
            known = times[~np.isnat(times)]
            self.latest_ = known.max() if len(known) else None
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
        check_is_fitted(self, "signals_")
        large = getattr(self, "large_", False)  # indexes pickled before large ones existed
        if large:
            chunk = min(chunk, LARGE_CHUNK)
        parts = []
        for start in range(0, len(queries), chunk):
            stop = start + chunk
            own = None if exclude is None else list(exclude[start:stop])
            part = queries.iloc[start:stop]
            if large:
                parts.append(self._search_candidates(part, k, own))
            else:
                parts.append(top_k(self.scores(part, own), k))
        if not parts:
            return top_k(np.zeros((0, self.size_)), k)
        return Neighbours(
            np.concatenate([p.positions for p in parts]),
            np.concatenate([p.scores for p in parts]),
        )

    def _keys(self, queries: pd.DataFrame, exclude: Sequence[int] | None) -> _QueryKeys:
        """What decides which indexed tickets each query may see, as arrays (read once)."""
        at = None
        if self.times_ is not None and self.time_column in queries:
            at = queries[self.time_column].to_numpy(dtype="datetime64[ns]")
            if self.latest_ is not None and not (at <= self.latest_).any():
                at = None  # a new ticket: every indexed one is earlier, nothing to compare
        own = {
            c: queries[c].astype("string").to_numpy(dtype=object, na_value=None)
            for c in dict.fromkeys([*self.filter, *(self.boost or {})])
            if c in self.groups_ and c in queries
        }
        excluded = np.full(len(queries), -1) if exclude is None else np.asarray(exclude)
        return _QueryKeys(at, own, excluded)

    def visible_at(self, keys: _QueryKeys, positions: np.ndarray) -> np.ndarray:
        """`visible` for the indexed tickets at `positions` (queries x m) only."""
        mask = positions >= 0
        safe = np.where(mask, positions, 0)
        if keys.at is not None and self.times_ is not None:
            known = ~np.isnat(keys.at)
            mask[known] &= self.times_[safe[known]] < keys.at[known, None]
        mask &= safe != keys.exclude[:, None]
        for column in self.filter:
            if column in keys.own:
                own = keys.own[column]
                indexed = self.groups_[column][safe]
                same = (indexed == own[:, None]) | (indexed == None)  # noqa: E711
                mask &= same | (own == None)[:, None]  # noqa: E711
        return mask

    def _search_candidates(
        self, queries: pd.DataFrame, k: int, exclude: Sequence[int] | None
    ) -> Neighbours:
        """`search` on a large index: each signal's best visible candidates, their union
        scored exactly, standardised by each signal's statistics on the fixed sample."""
        queries = queries.reset_index(drop=True)
        keys = self._keys(queries, exclude)
        text = views(queries, self.text_column)
        sample = np.broadcast_to(self.sample_, (len(queries), len(self.sample_)))
        sample_visible = self.visible_at(keys, sample)
        proposed: list[np.ndarray] = []
        full: dict[str, np.ndarray] = {}  # lexical signals score every ticket anyway
        vectors: dict[str, np.ndarray] = {}
        for signal in self.signals_:
            scorer, view = SIGNALS[signal]
            if scorer == "lexical":
                tokens = self._tokens(queries, view, text)
                full[signal] = np.stack([self.lexical_[signal].scores(t) for t in tokens])
                proposed.append(self._best_lexical(keys, full[signal]))
            else:
                assert self.embedder_ is not None
                vectors[signal] = self.embedder_.transform(text[view])
                found = self.ann_[signal].search(vectors[signal], 2 * self.candidates)
                proposed.append(np.where(self.visible_at(keys, found), found, -1))
        union = _union_rows(proposed)
        visible = self.visible_at(keys, union)
        safe = np.where(union >= 0, union, 0)
        total = np.zeros(union.shape)
        for signal in self.signals_:
            if signal in full:
                at_union = np.take_along_axis(full[signal], safe, axis=1)
                at_sample = full[signal][:, self.sample_]
            else:
                matrix = self.dense_[signal]
                at_union = np.matmul(matrix[safe], vectors[signal][:, :, None])[..., 0]
                at_sample = vectors[signal] @ self.sample_dense_[signal].T
            total += standardised_by(at_union, at_sample, sample_visible)
        for column, weight in (self.boost or {}).items():
            if column in keys.own:
                own = keys.own[column]
                same = self.groups_[column][safe] == own[:, None]
                total += weight * (same & (own[:, None] != None))  # noqa: E711
        scored = top_k(np.where(visible, total, -np.inf), k)
        positions = np.where(
            scored.positions >= 0, np.take_along_axis(union, scored.positions.clip(0), axis=1), -1
        )
        return Neighbours(positions, scored.scores)

    def _best_lexical(self, keys: _QueryKeys, scores: np.ndarray) -> np.ndarray:
        """Per query, the visible tickets with the highest scores among those sharing a
        term (BM25 scores everything else 0), up to `candidates`; -1 pads."""
        out = np.full((len(scores), self.candidates), -1, dtype=np.int64)
        for row in range(len(scores)):
            hits = np.flatnonzero(scores[row] > 0)
            hits = hits[self.visible_at(keys.row(row), hits[None, :])[0]]
            if len(hits) > self.candidates:
                best = np.argpartition(-scores[row, hits], self.candidates - 1)
                hits = hits[best[: self.candidates]]
            out[row, : len(hits)] = hits
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if "ann_" in state:  # faiss indexes pickle as their serialised bytes
            state["ann_"] = {s: a.to_bytes() for s, a in state["ann_"].items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "ann_" in state:
            state = {
                **state,
                "ann_": {s: DenseCandidates.from_bytes(b) for s, b in state["ann_"].items()},
            }
        self.__dict__.update(state)


@dataclass(frozen=True)
class _QueryKeys:
    """Per query: its open time, its values of the filter and boost fields, and its own
    position in the index (-1: not indexed)."""

    at: np.ndarray | None
    own: dict[str, np.ndarray]
    exclude: np.ndarray

    def row(self, row: int) -> _QueryKeys:
        at = None if self.at is None else self.at[row : row + 1]
        own = {c: v[row : row + 1] for c, v in self.own.items()}
        return _QueryKeys(at, own, self.exclude[row : row + 1])


# Large indexes: tickets in the sample that standardises each signal, and queries per chunk
# (a chunk holds one float32 score per indexed ticket per lexical signal).
STATS_SAMPLE = 4096
LARGE_CHUNK = 32


class DenseCandidates:
    """Approximate nearest unit vectors by inner product: faiss' inverted file (k-means
    lists, 8-bit scalar-quantised vectors), probing `probe` of its lists per query."""

    def __init__(self, seed: int = 0, probe: int = 16) -> None:
        self.seed = seed
        self.probe = probe
        self.index: Any = None

    def fit(self, vectors: np.ndarray) -> DenseCandidates:
        faiss = _faiss()

        # About 4 sqrt(n) lists, each trained on at least the 39 points faiss asks for.
        lists = int(np.clip(min(4 * np.sqrt(len(vectors)), len(vectors) // 39), 1, 1024))
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, vectors.shape[1], lists, faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )  # fmt: skip
        index.cp.seed = self.seed
        train = vectors[np.random.default_rng(self.seed).permutation(len(vectors))[: lists * 64]]
        index.train(np.ascontiguousarray(train, dtype=np.float32))
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        index.nprobe = self.probe
        self.index = index
        return self

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(queries, k) positions, best first; -1 pads."""
        _, positions = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.asarray(positions, dtype=np.int64)

    def to_bytes(self) -> tuple[int, int, np.ndarray]:
        faiss = _faiss()

        return self.seed, self.probe, faiss.serialize_index(self.index)

    @classmethod
    def from_bytes(cls, state: tuple[int, int, np.ndarray]) -> DenseCandidates:
        faiss = _faiss()
        seed, probe, data = state
        found = cls(seed, probe)
        found.index = faiss.deserialize_index(data)
        found.index.nprobe = probe
        return found


def _faiss() -> Any:
    # faiss' loader logs at INFO each instruction set it tries (AVX-512, AVX2, generic).
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    return faiss


def _union_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Per row, the distinct non-negative positions of all parts; -1 pads to one width."""
    rows = [np.unique(np.concatenate([p[r] for p in parts])) for r in range(len(parts[0]))]
    rows = [r[r >= 0] for r in rows]
    width = max(1, max((len(r) for r in rows), default=1))
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def standardised_by(raw: np.ndarray, sample: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """`raw` as z-scores by the mean and spread of each row's visible sample scores."""
    count = np.maximum(visible.sum(axis=1, keepdims=True), 1)
    values = np.where(visible, sample, 0.0)
    mean = values.sum(axis=1, keepdims=True) / count
    spread = np.sqrt(
        np.where(visible, (sample - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count
    )
    return np.asarray(np.divide(raw - mean, spread, out=np.zeros(raw.shape), where=spread > 0))


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
