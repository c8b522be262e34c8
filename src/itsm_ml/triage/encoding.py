"""The text model's features at scoring time: the fitted scikit-learn transformers' output,
entry for entry, without their cost per call.

`TfidfVectorizer.transform` and `OneHotEncoder.transform` validate their input and rebuild
lookups on every call. On one ticket that was most of an answer's time: 0.6 ms per TF-IDF
against 0.01-0.06 ms for the analyzer itself, and 8.9 ms for the one-hot encoding of six
fields. `LinearEncoder` reads the fitted vocabularies, idf weights and categories once and
builds the same sparse matrix: the same columns, values and order of entries, so the linear
model gives the same margins to the last bit (tests compare them on real exports).

Only what the triage model fits is supported (word or character TF-IDF, one-hot encoding
with `handle_unknown` ignore or infrequent_if_exist and no dropped column); anything else
raises `UnsupportedTransformerError` and the caller keeps scikit-learn's own transform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix


class UnsupportedTransformerError(ValueError):
    """A fitted transformer this encoder does not reproduce."""


@dataclass(frozen=True)
class _Block:
    """Entries of one block of columns, row by row (a CSR matrix without scipy's checks)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


@dataclass(frozen=True)
class _Terms:
    """One TF-IDF of one text column."""

    column: str
    analyze: Callable[[str], Sequence[str]]
    vocabulary: Mapping[str, int]
    idf: np.ndarray | None
    sublinear: bool
    binary: bool
    normalized: bool
    width: int

    def encode(self, texts: Sequence[str] | np.ndarray) -> _Block:
        """TfidfVectorizer.transform's steps in its order, so the floats agree exactly:
        counts with each row's columns sorted, then log + 1, idf, L2 norm."""
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        vocabulary = self.vocabulary
        for text in texts:
            found: dict[int, int] = {}
            for term in self.analyze(text):
                column = vocabulary.get(term)
                if column is not None:
                    found[column] = found.get(column, 0) + 1
            order = sorted(found)
            indices.extend(order)
            counts.extend(found[c] for c in order)
            indptr.append(len(indices))
        data = np.array(counts, dtype=np.float64)
        columns = np.array(indices, dtype=np.int64)
        if self.binary:
            data.fill(1)
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[columns]
        bounds = np.array(indptr, dtype=np.int64)
        if self.normalized:
            _normalize_rows(data, bounds)
        return _Block(data, columns, bounds)


@dataclass(frozen=True)
class _Codes:
    """One-hot columns of several fields: value -> column, unseen values to `unknown`."""

    columns: tuple[str, ...]
    lookups: tuple[Mapping[str, int], ...]
    unknown: tuple[int | None, ...]  # the infrequent bucket, or None: no entry at all
    offsets: tuple[int, ...]
    width: int

    def encode(self, columns: Mapping[str, np.ndarray], rows: int, missing: str) -> _Block:
        """OneHotEncoder's ones, one per field in field order; none for an unseen value of
        a field without an infrequent bucket."""
        codes = np.full((rows, len(self.columns)), -1, dtype=np.int64)
        for position, (column, lookup, unknown, start) in enumerate(
            zip(self.columns, self.lookups, self.unknown, self.offsets, strict=True)
        ):
            for row, value in enumerate(columns[column]):
                code = lookup.get(missing if value is None else value, unknown)
                if code is not None:
                    codes[row, position] = start + code
        present = codes >= 0
        indptr = np.zeros(rows + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(present.sum(axis=1))
        found = codes[present]
        return _Block(np.ones(len(found), dtype=np.float64), found, indptr)


class LinearEncoder:
    """A fitted ColumnTransformer of TF-IDFs and a one-hot encoder, replayed without it.

    `missing`: how the model spelled a missing field value before one-hot encoding it.
    """

    def __init__(self, fitted: Any, *, missing: str) -> None:
        self.missing = missing
        self.blocks: list[tuple[_Terms | _Codes, float | None]] = []
        weights = fitted.transformer_weights or {}
        if getattr(fitted, "remainder", "drop") != "drop" or not fitted.sparse_output_:
            raise UnsupportedTransformerError(
                "only a sparse ColumnTransformer without remainder is replayed"
            )
        for name, transformer, columns in fitted.transformers_:
            if name == "remainder" or transformer == "drop":
                continue
            block = _terms(transformer, columns) if _is_tfidf(transformer) else None
            self.blocks.append((block or _codes(transformer, columns), weights.get(name)))
        self.width = sum(block.width for block, _ in self.blocks)

    def transform(self, columns: Mapping[str, np.ndarray], rows: int) -> csr_matrix:
        """The features of `rows` tickets. `columns`: each input column as Python strings,
        None where missing (text columns: '' where missing, as the model fitted them)."""
        encoded = []
        for block, weight in self.blocks:
            found = (
                block.encode(columns[block.column])
                if isinstance(block, _Terms)
                else block.encode(columns, rows, self.missing)
            )
            if weight is not None:  # the ColumnTransformer multiplies a weighted block
                found = _Block(found.data * weight, found.indices, found.indptr)
            encoded.append(found)
        return _side_by_side(encoded, [block.width for block, _ in self.blocks], rows)


def _side_by_side(blocks: Sequence[_Block], widths: Sequence[int], rows: int) -> csr_matrix:
    """The blocks stacked left to right, each row's entries block after block (what
    scipy.sparse.hstack gives, without building a matrix per block)."""
    lengths = np.column_stack([np.diff(block.indptr) for block in blocks])
    indptr = np.zeros(rows + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(lengths.sum(axis=1))
    before = np.cumsum(lengths, axis=1) - lengths  # entries of earlier blocks in the row
    data = np.empty(indptr[-1], dtype=np.float64)
    indices = np.empty(indptr[-1], dtype=np.int32)
    offset = 0
    for position, (block, width) in enumerate(zip(blocks, widths, strict=True)):
        row_lengths = lengths[:, position]
        within = np.arange(len(block.indices)) - np.repeat(block.indptr[:-1], row_lengths)
        target = np.repeat(indptr[:-1] + before[:, position], row_lengths) + within
        data[target] = block.data
        indices[target] = block.indices + offset
        offset += width
    return csr_matrix((data, indices, indptr), shape=(rows, offset))


def _normalize_rows(data: np.ndarray, indptr: np.ndarray) -> None:
    """Each row to unit L2 norm in place, summing squares in order as scikit-learn's loop
    does (cumsum is sequential; a pairwise sum could differ in the last bit)."""
    for row in range(len(indptr) - 1):
        segment = data[indptr[row] : indptr[row + 1]]
        if len(segment):
            total = np.cumsum(segment * segment)[-1]
            if total != 0.0:
                segment /= np.sqrt(total)


def _is_tfidf(transformer: Any) -> bool:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return isinstance(transformer, TfidfVectorizer)


def _terms(vectorizer: Any, column: Any) -> _Terms:
    if not isinstance(column, str):
        raise UnsupportedTransformerError(f"a TF-IDF reads one text column, not {column!r}")
    if vectorizer.dtype is not np.float64 and np.dtype(vectorizer.dtype) != np.float64:
        raise UnsupportedTransformerError(f"TF-IDF of dtype {vectorizer.dtype}")
    if vectorizer.norm not in ("l2", None):
        raise UnsupportedTransformerError(f"TF-IDF with norm {vectorizer.norm!r}")
    idf = np.asarray(vectorizer.idf_) if vectorizer.use_idf else None
    return _Terms(
        column=column,
        analyze=vectorizer.build_analyzer(),
        vocabulary=dict(vectorizer.vocabulary_),
        idf=idf,
        sublinear=bool(vectorizer.sublinear_tf),
        binary=bool(vectorizer.binary),
        normalized=vectorizer.norm == "l2",
        width=len(vectorizer.vocabulary_),
    )


def _codes(encoder: Any, columns: Any) -> _Codes:
    """OneHotEncoder's documented layout: per field, its frequent categories in the order of
    `categories_`, then one column for the infrequent ones (where unseen values go with
    infrequent_if_exist) if there are any."""
    from sklearn.preprocessing import OneHotEncoder

    if not isinstance(encoder, OneHotEncoder):
        raise UnsupportedTransformerError(f"{type(encoder).__name__} is not replayed")
    if encoder.drop_idx_ is not None or encoder.handle_unknown not in (
        "ignore",
        "infrequent_if_exist",
    ):
        raise UnsupportedTransformerError(
            "one-hot encoding with dropped columns or unknown values as errors"
        )
    if np.dtype(encoder.dtype) != np.float64:
        raise UnsupportedTransformerError(f"one-hot encoding of dtype {encoder.dtype}")
    infrequent = getattr(encoder, "infrequent_categories_", [None] * len(columns))
    lookups, unknown, offsets, offset = [], [], [], 0
    for categories, rare in zip(encoder.categories_, infrequent, strict=True):
        rare_set = set() if rare is None else {str(v) for v in rare}
        frequent = [str(v) for v in categories if str(v) not in rare_set]
        lookup = {value: i for i, value in enumerate(frequent)}
        bucket = len(frequent) if rare_set else None
        if bucket is not None:
            lookup.update(dict.fromkeys(rare_set, bucket))
        lookups.append(lookup)
        unknown.append(bucket if encoder.handle_unknown == "infrequent_if_exist" else None)
        offsets.append(offset)
        offset += len(frequent) + (1 if rare_set else 0)
    return _Codes(tuple(columns), tuple(lookups), tuple(unknown), tuple(offsets), offset)
