"""Micro-records from a CSV or JSON-lines export (a chat assistant's log, `POST
/v1/micro-records`'s), mapped onto the canonical micro_records table.

A column the user named in params must be in the file; a column left at its default name is
read where the file has it, so the same defaults serve exports that carry fewer fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from itsm_ml.config import MicroRecordsFileSource
from itsm_ml.data.sources.canonical import CanonicalBuilder, record_numbers
from itsm_ml.data.sources.csv_files import (
    STREAM_ERRORS,
    broken_stream_error,
    decode_error,
    open_export,
    read_export,
    require_columns,
)
from itsm_ml.errors import SourceError
from itsm_ml.schemas import MICRO_RECORDS

_OPTIONAL = ("id", "caller", "service", "ci", "category", "fix", "minutes_lost", "channel")
_JSON_SUFFIXES = (".jsonl", ".ndjson")


def is_json_lines(source: MicroRecordsFileSource) -> bool:
    if source.format != "auto":
        return source.format == "jsonl"
    suffixes = [s.lower() for s in Path(source.path).suffixes]
    return any(s in _JSON_SUFFIXES for s in suffixes)


def required_columns(source: MicroRecordsFileSource) -> list[str]:
    """The columns the file must have: the time, the text, and every field the user named."""
    named = [getattr(source, f) for f in _OPTIONAL if f in source.model_fields_set]
    return [source.opened_at, *source.text, *(c for c in named if c)]


def load_micro_records(source: MicroRecordsFileSource) -> pd.DataFrame:
    path = source.resolved_path()
    if is_json_lines(source):
        rows = read_json_lines(path, source.encoding)
        require_columns(path, required_columns(source), list(rows.columns))
    else:
        rows = read_export(source, required_columns(source), optional=source.mapped_columns())
    return micro_rows_to_canonical(rows, source)


def read_json_lines(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """One JSON object per line, every value as text (nested values as JSON); blank lines are
    skipped, and a line that is not an object is an error naming its number."""
    if not path.is_file():
        raise SourceError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    records: list[dict[str, object]] = []
    try:
        with open_export(path) as stream:
            for number, raw in enumerate(stream, start=1):
                line = raw.decode(encoding).strip()
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(
                        f"{path}: line {number} is not valid JSON ({exc.msg}): {line[:80]!r}"
                    ) from exc
                if not isinstance(record, dict):
                    raise SourceError(
                        f"{path}: line {number} is a JSON {type(record).__name__}, expected an"
                        " object of fields"
                    )
                records.append(record)
    except UnicodeDecodeError as exc:
        raise decode_error(path, encoding) from exc
    except STREAM_ERRORS as exc:
        raise broken_stream_error(path, exc) from exc
    frame = pd.DataFrame.from_records(records)
    return frame.apply(_as_text) if len(frame.columns) else frame


def _as_text(values: pd.Series) -> pd.Series:
    def one(value: object) -> object:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return pd.NA
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, sort_keys=True)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return values.map(one).astype("string")


def micro_rows_to_canonical(rows: pd.DataFrame, source: MicroRecordsFileSource) -> pd.DataFrame:
    build = CanonicalBuilder(MICRO_RECORDS, record_numbers(rows))
    if source.id and source.id in rows:
        build.text("record_id", rows[source.id])
    else:
        width = max(len(str(len(rows))), 6)
        build.text("record_id", pd.Series([f"mr-{i:0{width}d}" for i in range(1, len(rows) + 1)]))
    build.timestamps("opened_at", rows[source.opened_at], source.time_format)
    build.joined_text("text", [rows[c] for c in source.text])
    for name in ("caller", "service", "ci", "category"):
        column = getattr(source, name)
        if column and column in rows:
            build.text(name, rows[column])
    if source.fix and source.fix in rows:
        build.text("label_resolution_notes", rows[source.fix])
    if source.minutes_lost and source.minutes_lost in rows:
        build.numbers("minutes_lost", rows[source.minutes_lost])
    channel = rows[source.channel] if source.channel and source.channel in rows else None
    fallback = pd.Series(source.default_channel, index=rows.index, dtype="string")
    build.text("channel", fallback if channel is None else channel.fillna(source.default_channel))
    return build.build()


def empty_micro_records() -> pd.DataFrame:
    """The canonical table with no rows (no micro-records source)."""
    return CanonicalBuilder(MICRO_RECORDS, pd.Series([], dtype="Int64")).build()
