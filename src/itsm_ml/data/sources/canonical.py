"""Assembling a canonical table column by column, the same way for every adapter."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from itsm_ml.data.sources import parsing
from itsm_ml.schemas import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    SOURCE_ROW,
    STRING,
    TableSchema,
    conflict_column,
    unparsed_column,
)

# How exports spell yes and no in a boolean column mapped by the user.
TRUE_WORDS = ("1", "true", "True", "TRUE", "yes")
FALSE_WORDS = ("0", "false", "False", "FALSE", "no")


class CanonicalBuilder:
    """Collects typed columns and their parse failures; `build` orders and completes them."""

    def __init__(self, schema: TableSchema, source_rows: pd.Series) -> None:
        self.schema = schema
        self.index = source_rows.index
        self._columns: dict[str, pd.Series] = {}
        self._unparsed: dict[str, pd.Series] = {}
        self._conflicts: dict[str, pd.Series] = {}
        self._source_rows = source_rows.astype("Int64")

    def _set(self, name: str, values: pd.Series) -> None:
        self._columns[name] = self._aligned(values)

    def _aligned(self, values: pd.Series) -> pd.Series:
        # Columns of the export already carry its index; `build` copies them into the table.
        return values if values.index is self.index else values.set_axis(self.index)

    def _set_parsed(self, name: str, parsed: parsing.Parsed) -> None:
        values, failures = parsed
        self._set(name, values)
        self._unparsed[name] = self._aligned(failures)

    def text(self, name: str, raw: pd.Series) -> None:
        self._set(name, parsing.clean_text(raw))

    def joined_text(self, name: str, parts: Sequence[pd.Series]) -> None:
        self._set(name, parsing.join_text([self._aligned(p) for p in parts], self.index))

    def timestamps(self, name: str, raw: pd.Series, fmt: str | None) -> None:
        self._set_parsed(name, parsing.parse_timestamps(raw, fmt))

    def numbers(self, name: str, raw: pd.Series) -> None:
        self._set_parsed(name, parsing.parse_numbers(raw))

    def integers(self, name: str, raw: pd.Series) -> None:
        self._set_parsed(name, parsing.parse_integers(raw))

    def booleans(
        self, name: str, raw: pd.Series, true: Sequence[str], false: Sequence[str]
    ) -> None:
        self._set_parsed(name, parsing.parse_booleans(raw, true, false))

    def conflicts(self, name: str, values: pd.Series) -> None:
        """Per record, the distinct values `name` took where it should take one (the events
        of one case disagreeing on its open time), as text; NA where they agree."""
        self._conflicts[name] = self._aligned(values)

    def typed(self, name: str, raw: pd.Series, fmt: str | None) -> None:
        """A mapped column parsed as the schema types it (`fmt` for timestamps); a column the
        schema does not know is text."""
        dtype = self.schema.dtype_of(name) or STRING
        if dtype == FLOAT:
            self.numbers(name, raw)
        elif dtype == INT:
            self.integers(name, raw)
        elif dtype == BOOL:
            self.booleans(name, raw, TRUE_WORDS, FALSE_WORDS)
        elif dtype == DATETIME:
            self.timestamps(name, raw, fmt)
        else:
            self.text(name, raw)

    def build(self) -> pd.DataFrame:
        """Schema columns first (core ones always present), then extras, then metadata."""
        ordered: dict[str, pd.Series] = {}
        for column in self.schema.columns:
            if column.name in self._columns:
                ordered[column.name] = parsing.as_dtype(self._columns[column.name], column.dtype)
            elif column.core:
                ordered[column.name] = pd.Series(pd.NA, index=self.index).astype(
                    parsing.dtype(column.dtype)
                )
        for name, values in self._columns.items():
            ordered.setdefault(name, values)
        ordered[SOURCE_ROW] = self._source_rows
        for name, failures in self._unparsed.items():
            ordered[unparsed_column(name)] = parsing.as_dtype(failures, STRING)
        for name, values in self._conflicts.items():
            ordered[conflict_column(name)] = parsing.as_dtype(values, STRING)
        return pd.DataFrame(ordered, index=self.index).reset_index(drop=True)


def record_numbers(frame: pd.DataFrame) -> pd.Series:
    """1-based number of each record in its file (quoted text may span several lines)."""
    return pd.Series(range(1, len(frame) + 1), index=frame.index)
