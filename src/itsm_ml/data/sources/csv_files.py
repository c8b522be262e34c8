"""Reading export files as text, with errors that say what is wrong and where.

Everything is read as strings: the adapters decide the types, so a bad value becomes a
reported parse failure instead of a silently coerced column.
"""

from __future__ import annotations

import difflib
import gzip
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import pandas as pd

from itsm_ml.config import CsvFileSource
from itsm_ml.errors import SourceError

_SNIFF_BYTES = 65_536
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?): export the sheet as CSV",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office file: export the sheet as CSV",
    b"PAR1": "a Parquet file",
}


ReadProgress = Callable[[int, int], None]
"""Called with (bytes read so far, file size) while an export is read."""

# A context variable, not a parameter: progress is a concern of whoever shows it (the CLI),
# and every adapter reads through here without having to pass it along.
_read_progress: ContextVar[ReadProgress | None] = ContextVar("read_progress", default=None)


@contextmanager
def reporting_read_progress(callback: ReadProgress) -> Iterator[None]:
    """Within this block, reading an export reports its progress to `callback`."""
    token = _read_progress.set(callback)
    try:
        yield
    finally:
        _read_progress.reset(token)


class _CountingReader(io.RawIOBase):
    def __init__(self, raw: IO[bytes], total: int, callback: ReadProgress) -> None:
        self._raw, self._total, self._callback, self._done = raw, total, callback, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self._done += count or 0
        self._callback(self._done, self._total)
        return int(count or 0)


def _is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def _head(path: Path) -> bytes:
    with path.open("rb") as raw:
        head = raw.read(_SNIFF_BYTES)
    if _is_gzip(head):
        try:
            with gzip.open(path, "rb") as unzipped:
                return unzipped.read(_SNIFF_BYTES)
        except (OSError, EOFError) as exc:
            raise SourceError(f"{path}: looks gzip-compressed but cannot be read: {exc}") from exc
    return head


def _first_undecodable_line(path: Path, encoding: str) -> tuple[int, bytes, str]:
    with path.open("rb") as raw:
        packed = _is_gzip(raw.read(2))
    opener = gzip.open if packed else Path.open
    with opener(path, "rb") as stream:
        for number, line in enumerate(stream, start=1):
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                return number, line[max(exc.start - 10, 0) : exc.end + 10], exc.reason
    return 0, b"", ""


def check_readable_text(path: Path) -> None:
    """Fail early, and clearly, on files that are missing, empty or not text at all."""
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.is_dir():
        raise SourceError(f"{path}: is a folder, expected a CSV file")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty (0 bytes), expected a CSV with a header row")
    head = _head(path)
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise SourceError(f"{path}: not a CSV file, it is {what}")
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise SourceError(
            f"{path}: not a CSV text file: binary content (NUL byte at offset {offset}); "
            "if it is UTF-16, re-export it as UTF-8"
        )
    if not head.strip():
        raise SourceError(f"{path}: holds only white space, expected a CSV with a header row")
    if head.lstrip()[:1] in (b"{", b"["):
        raise SourceError(f"{path}: not a CSV file, it looks like JSON; export the table as CSV")
    if head.lstrip()[:1] == b"<":
        raise SourceError(f"{path}: not a CSV file, it looks like HTML or XML; export as CSV")


def read_export(
    source: CsvFileSource, columns: Iterable[str] | None = None, required: Sequence[str] = ()
) -> pd.DataFrame:
    """Read the file of a source configuration, with its encoding, delimiter and missing values."""
    return read_csv_as_text(
        source.resolved_path(),
        encoding=source.encoding,
        delimiter=source.delimiter,
        missing_values=source.missing_values,
        columns=columns,
        required=required,
    )


def read_csv_as_text(
    path: Path,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    missing_values: Sequence[str] = ("",),
    columns: Iterable[str] | None = None,
    required: Sequence[str] = (),
) -> pd.DataFrame:
    """Read `path` with every cell as a string (missing values as NA).

    `columns`: read only these, and fail clearly if one is missing (all columns when None);
    `required`: fail clearly if one of these is missing, without restricting what is read.
    """
    check_readable_text(path)
    # utf-8-sig drops the byte-order mark that Excel writes; plain utf-8 would keep it in the
    # first column's name.
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding
    wanted = list(dict.fromkeys(columns)) if columns is not None else None
    try:
        header = pd.read_csv(path, nrows=0, sep=delimiter, encoding=codec, dtype=str)
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{path}: no header row found (the file has no columns)") from exc
    except UnicodeDecodeError as exc:
        raise decode_error(path, encoding) from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{path}: the header row is not valid CSV: {exc}") from exc
    present = [str(c).strip() for c in header.columns]
    require_columns(path, [*(wanted or ()), *required], present)
    try:
        with _opened(path) as (stream, compression):
            frame = pd.read_csv(
                stream,
                compression=compression,
                sep=delimiter,
                encoding=codec,
                dtype=str,
                keep_default_na=False,
                na_values=list(missing_values),
                usecols=lambda name: wanted is None or str(name).strip() in wanted,
                engine="c",
            )
    except UnicodeDecodeError as exc:
        raise decode_error(path, encoding) from exc
    except pd.errors.ParserError as exc:
        if "EOF inside string" in str(exc):
            raise SourceError(
                f"{path}: the file looks truncated: a quoted field never closes ({exc}); "
                "re-export it"
            ) from exc
        raise SourceError(f"{path}: not valid CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


@contextmanager
def _opened(path: Path) -> Iterator[tuple[Path | IO[bytes], str | None]]:
    """The file as pandas should read it, counting bytes when someone shows progress."""
    callback = _read_progress.get()
    if callback is None:
        yield path, "infer"
        return
    with path.open("rb") as raw:
        compression = "gzip" if _is_gzip(raw.read(2)) else None
        raw.seek(0)
        counting = _CountingReader(raw, path.stat().st_size, callback)
        yield io.BufferedReader(counting), compression


def decode_error(
    path: Path, encoding: str, fix: str = "set `encoding` in the source params"
) -> SourceError:
    """Where the first undecodable bytes are; `fix` says how this caller chooses the encoding."""
    line, excerpt, reason = _first_undecodable_line(path, encoding)
    where = f" on line {line} ({reason}, near {excerpt!r})" if line else ""
    return SourceError(
        f"{path}: bytes that are not valid {encoding}{where}. "
        f"Re-export the file as UTF-8, or {fix} (e.g. cp1252)"
    )


def require_columns(path: Path, wanted: Sequence[str], present: Sequence[str]) -> None:
    wanted = list(dict.fromkeys(wanted))
    missing = [c for c in wanted if c not in present]
    if not missing:
        return
    hints = []
    for column in missing:
        close = _closest(column, present)
        hints.append(f"{column!r} (did you mean {close!r}?)" if close else repr(column))
    shown = ", ".join(repr(p) for p in present[:15]) + (" ..." if len(present) > 15 else "")
    hint = ""
    if len(present) == 1 or len(missing) == len(wanted):
        hint = " None of the mapped columns is there: is the delimiter right, and is it the right file?"
    raise SourceError(
        f"{path}: missing required column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(hints)}. The file has {len(present)} column(s): {shown}.{hint}"
    )


def _closest(column: str, present: Sequence[str]) -> str | None:
    """The present column a user most likely meant: same name in other case, a near spelling,
    or a name containing the wanted one ('group' -> 'Assignment Group')."""
    lowered = {p.lower(): p for p in present}
    wanted = column.lower()
    if wanted in lowered:
        return lowered[wanted]
    near = difflib.get_close_matches(wanted, list(lowered), n=1, cutoff=0.6)
    if near:
        return lowered[near[0]]
    containing = [p for low, p in lowered.items() if wanted in low or (low and low in wanted)]
    return containing[0] if len(containing) == 1 else None
