"""Typed parsing that keeps what failed.

Each parser returns the typed column and, beside it, the raw text of the cells that did not
parse (NA elsewhere). Validation turns those into row-level failures with their values,
instead of the NaT/NaN a plain `errors="coerce"` would hide.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import pandas_dtype

from itsm_ml.schemas import BOOL, DATETIME, FLOAT, INT, STRING

Parsed = tuple[pd.Series, pd.Series]


@cache
def dtype(name: str) -> Any:
    """The pandas dtype of a schema type name, resolved once: resolving "string" or "Int64"
    searches pandas' registry of extension types on every call (a third of the time of
    mapping one served ticket)."""
    return pandas_dtype(name)


def as_dtype(values: pd.Series, name: str) -> pd.Series:
    """`values.astype(name)`, without the copy and the lookup when it already is."""
    wanted = dtype(name)
    return values if values.dtype == wanted else values.astype(wanted)


def _failures(raw: pd.Series, parsed: pd.Series) -> pd.Series:
    failed = raw.notna() & parsed.isna()
    return as_dtype(raw.where(failed), STRING)


def parse_timestamps(raw: pd.Series, fmt: str | None) -> Parsed:
    """`fmt`: a strftime format, 'ISO8601', or 'unix' (seconds since the epoch)."""
    text = as_dtype(raw, STRING).str.strip()
    if fmt == "unix":
        seconds = pd.to_numeric(text, errors="coerce")
        parsed = pd.to_datetime(seconds, unit="s", errors="coerce")
    else:
        parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    parsed = as_dtype(parsed, DATETIME)
    return parsed, _failures(text, parsed)


def parse_numbers(raw: pd.Series) -> Parsed:
    text = as_dtype(raw, STRING).str.strip()
    parsed = as_dtype(pd.to_numeric(text, errors="coerce"), FLOAT)
    parsed = parsed.where(np.isfinite(parsed))
    return parsed, _failures(text, parsed)


def parse_integers(raw: pd.Series) -> Parsed:
    numbers, _ = parse_numbers(raw)
    whole = numbers.where(numbers.round() == numbers)
    parsed = as_dtype(whole, INT)
    return parsed, _failures(as_dtype(raw, STRING).str.strip(), parsed)


def parse_booleans(raw: pd.Series, true: Sequence[str], false: Sequence[str]) -> Parsed:
    text = as_dtype(raw, STRING).str.strip()
    lookup = {**dict.fromkeys(false, False), **dict.fromkeys(true, True)}
    parsed = as_dtype(text.map(lookup, na_action="ignore"), BOOL)
    return parsed, _failures(text, parsed)


def clean_text(raw: pd.Series) -> pd.Series:
    """Strings as given, with white-space-only cells as NA (they carry no information)."""
    text = as_dtype(raw, STRING)
    # One pass in Python: `.str` methods on the python-backed string dtype loop in Python
    # too, twice, with a fixed cost per call that dominated mapping one served ticket.
    values = text.to_numpy(dtype=object, na_value=None)
    blank = np.fromiter(
        (v is not None and not v.strip() for v in values), dtype=bool, count=len(values)
    )
    return text.mask(blank) if blank.any() else text


def join_text(columns: Sequence[pd.Series], index: pd.Index) -> pd.Series:
    """Join text columns row by row with a newline, skipping missing parts."""
    if not columns:
        return pd.Series(pd.NA, index=index, dtype=dtype(STRING))
    parts = [clean_text(c) for c in columns]
    joined = parts[0].fillna("")
    for part in parts[1:]:
        separator = np.where((joined.str.len() > 0) & part.notna(), "\n", "")
        joined = joined + separator + part.fillna("")
    return clean_text(joined)
