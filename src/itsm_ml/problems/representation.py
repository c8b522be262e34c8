"""Record vectors for recurring-issue grouping: the knowledge model's text vectors beside
the record's field values.

The text block is the knowledge-retrieval model's static dense embedding (idf-weighted on
the records grouped); the field block hashes each known `column=value` (service, CI,
category, symptom...) into a fixed number of dimensions. The grouper weighs the two blocks
(`GroupingSettings.text_weight`) where a record and a group both have them and uses the one
they share otherwise: an export without text groups on its fields alone, a record without
field values on its words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from itsm_ml.knowledge.embedding import StaticEmbedder

FIELD_DIMENSIONS = 1024


@dataclass(frozen=True)
class RepresentationSettings:
    fields: tuple[str, ...] = ("service", "ci", "category", "subcategory", "symptom")


def field_vectors(frame: pd.DataFrame, fields: Sequence[str]) -> np.ndarray:
    """Unit vectors of hashed `column=value` tokens (zero where no field is known)."""
    out = np.zeros((len(frame), FIELD_DIMENSIONS))
    rows = np.arange(len(frame))
    for column in fields:
        if column not in frame:
            continue
        values = frame[column].astype("string").str.strip().str.lower()
        slots = {
            value: int(hashlib.blake2b(f"{column}={value}".encode(), digest_size=8).hexdigest(), 16)
            % FIELD_DIMENSIONS
            for value in values.dropna().unique()
            if value
        }
        slot = values.map(slots).to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(slot)
        np.add.at(out, (rows[known], slot[known].astype(np.int64)), 1.0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return unit


def record_vectors(
    frame: pd.DataFrame,
    settings: RepresentationSettings,
    text_column: str = "text",
    embedder: StaticEmbedder | None = None,
) -> tuple[np.ndarray, int]:
    """One vector per record of `frame`: the text block (unit, or zero without text) then the
    field block; and the text block's width. The text weights are `embedder`'s (a registered
    model's, fitted on its training history), or fitted on `frame` itself (no labels used)."""
    parts = []
    if text_column in frame and frame[text_column].notna().any():
        texts = frame[text_column].fillna("").astype(str).tolist()
        fitted = embedder if embedder is not None else StaticEmbedder().fit(texts)
        parts.append(fitted.transform(texts).astype(float))
    else:
        parts.append(np.zeros((len(frame), 1)))
    parts.append(field_vectors(frame, settings.fields))
    return np.hstack(parts), parts[0].shape[1]
