"""Reading export files as text, with errors that say what is wrong and where.

Everything is read as strings: the adapters decide the types, so a bad value becomes a
reported parse failure instead of a silently coerced column.
"""

from __future__ import annotations

import bz2
import difflib
import gzip
import io
import lzma
import zlib
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


# Compression is read from the first bytes, never from the name: a plain CSV named
# `.csv.gz`, or a gzip file named `.csv`, is common in exports passed around by hand.
_COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
_UNSUPPORTED_COMPRESSIONS = {b"\x28\xb5\x2f\xfd": "zstd"}
# What a cut-short or damaged compressed stream raises while it is read.
STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def compression_of(path: Path) -> str | None:
    """gzip, bzip2, xz or None (plain), from the file's first bytes."""
    with path.open("rb") as raw:
        head = raw.read(8)
    for magic, name in _COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    for magic, name in _UNSUPPORTED_COMPRESSIONS.items():
        if head.startswith(magic):
            raise SourceError(
                f"{path}: {name}-compressed, which is not read here: decompress it"
                f" (or recompress it with gzip) and point the source at that file"
            )
    return None


@contextmanager
def open_export(path: Path, raw: IO[bytes] | None = None) -> Iterator[IO[bytes]]:
    """The export's bytes, decompressed when its content says it is compressed. `raw`: an
    already open stream of the file to read through (e.g. one that counts bytes)."""
    kind = compression_of(path)
    with path.open("rb") if raw is None else _kept_open(raw) as stream:
        if kind is None:
            yield stream
            return
        with _decompressing(kind, stream) as unpacked:
            yield unpacked


def _decompressing(kind: str, raw: IO[bytes]) -> Any:
    # Closed by the caller's `with`; closing it leaves `raw` open (it is not theirs to close).
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")
    return lzma.LZMAFile(raw, "rb")


@contextmanager
def _kept_open(stream: IO[bytes]) -> Iterator[IO[bytes]]:
    yield stream


def broken_stream_error(path: Path, exc: BaseException) -> SourceError:
    """Where a compressed export breaks, and what to do: called once reading it failed."""
    kind = compression_of(path) or "compressed"
    size = path.stat().st_size
    lines, at, reason = 0, size, str(exc)
    with path.open("rb") as raw, open_export(path, raw) as stream:
        try:
            # read1: what was decompressed before the break is counted, not lost with it.
            for chunk in iter(lambda: stream.read1(1 << 16), b""):  # type: ignore[attr-defined]
                lines += chunk.count(b"\n")
        except STREAM_ERRORS as found:
            at, reason = raw.tell(), str(found) or type(found).__name__
    cut_short = isinstance(exc, EOFError) or "end-of-stream" in reason
    state, why = (
        ("cut short", "the download or copy did not finish")
        if cut_short
        else ("corrupt", "it was damaged in transfer or on disk")
    )
    return SourceError(
        f"{path}: the {kind} stream is {state} near compressed byte {at:,} of {size:,}"
        f" (after line {lines:,} of the CSV): {reason}. Likely {why}:"
        f" copy or export the file again (`{_checker(kind)} {path.name}` tests it)"
    )


def _checker(kind: str) -> str:
    return {"gzip": "gzip -t", "bzip2": "bzip2 -t", "xz": "xz -t"}.get(kind, "file")


def _head(path: Path) -> bytes:
    with open_export(path) as stream:
        try:
            return stream.read(_SNIFF_BYTES)
        except STREAM_ERRORS as exc:
            raise broken_stream_error(path, exc) from exc


def _first_undecodable_line(path: Path, encoding: str) -> tuple[int, bytes, str]:
    with open_export(path) as stream:
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
    source: CsvFileSource,
    columns: Iterable[str] | None = None,
    required: Sequence[str] = (),
    optional: Iterable[str] = (),
) -> pd.DataFrame:
    """Read the file of a source configuration, with its encoding, delimiter and missing values."""
    return read_csv_as_text(
        source.resolved_path(),
        encoding=source.encoding,
        delimiter=source.delimiter,
        missing_values=source.missing_values,
        columns=columns,
        required=required,
        optional=optional,
    )


def read_csv_as_text(
    path: Path,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    missing_values: Sequence[str] = ("",),
    columns: Iterable[str] | None = None,
    required: Sequence[str] = (),
    optional: Iterable[str] = (),
) -> pd.DataFrame:
    """Read `path` with every cell as a string (missing values as NA).

    `columns`: read only these, and fail clearly if one is missing (all columns when None);
    `required`: fail clearly if one of these is missing, without restricting what is read;
    `optional`: with `columns`, read these too where the file has them.
    """
    check_readable_text(path)
    # utf-8-sig drops the byte-order mark that Excel writes; plain utf-8 would keep it in the
    # first column's name.
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding
    wanted = list(dict.fromkeys(columns)) if columns is not None else None
    try:
        with open_export(path) as stream:
            header = pd.read_csv(stream, nrows=0, sep=delimiter, encoding=codec, dtype=str)
    except STREAM_ERRORS as exc:
        raise broken_stream_error(path, exc) from exc
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{path}: no header row found (the file has no columns)") from exc
    except UnicodeDecodeError as exc:
        raise decode_error(path, encoding) from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{path}: the header row is not valid CSV: {exc}") from exc
    present = [str(c).strip() for c in header.columns]
    require_columns(path, [*(wanted or ()), *required], present)
    if wanted is not None:
        wanted += [c for c in optional if c in present and c not in wanted]
    try:
        with _opened(path) as stream:
            frame = pd.read_csv(
                stream,
                compression=None,
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
    except STREAM_ERRORS as exc:
        raise broken_stream_error(path, exc) from exc
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
def _opened(path: Path) -> Iterator[IO[bytes]]:
    """The export's decompressed bytes, counting the file's bytes when someone shows progress."""
    callback = _read_progress.get()
    if callback is None:
        with open_export(path) as stream:
            yield stream
        return
    with path.open("rb") as raw:
        counting = io.BufferedReader(_CountingReader(raw, path.stat().st_size, callback))
        with open_export(path, counting) as stream:
            yield stream


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


MAX_HINTS = 3


def require_columns(path: Path, wanted: Sequence[str], present: Sequence[str]) -> None:
    wanted = list(dict.fromkeys(wanted))
    missing = [c for c in wanted if c not in present]
    if not missing:
        return
    guesses = {column: _closest(column, present) for column in missing}
    # The best few guesses only: with a wrong delimiter every missing column "matches" the
    # one giant header cell, and a hint per column buried the cause in thousands of characters.
    hinted = sorted(
        (c for c in missing if guesses[c]),
        key=lambda c: -difflib.SequenceMatcher(None, c.lower(), str(guesses[c]).lower()).ratio(),
    )[:MAX_HINTS]
    separator = _delimiter_hint(present)

    def named(column: str) -> str:
        if column in hinted and not separator:
            return f"{column!r} (did you mean {_clip(str(guesses[column]))!r}?)"
        return repr(column)

    ordered = [*hinted, *(c for c in missing if c not in hinted)] if not separator else missing
    listed = ", ".join(named(c) for c in ordered[:10]) + (
        f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    )
    shown = ", ".join(repr(_clip(p)) for p in present[:15]) + (" ..." if len(present) > 15 else "")
    cause = separator or (
        " None of the mapped columns is there: is the delimiter right, and is it the right file?"
        if len(present) == 1 or len(missing) == len(wanted)
        else ""
    )
    raise SourceError(
        f"{path}: missing required column{'s' if len(missing) > 1 else ''} {listed}."
        f" The file has {len(present)} column(s): {shown}.{cause}"
    )


def _clip(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _delimiter_hint(present: Sequence[str]) -> str:
    """When the whole header landed in one column, the separator it holds."""
    if len(present) != 1:
        return ""
    counts = {sep: present[0].count(sep) for sep in (";", "\t", "|", ",")}
    sep, count = max(counts.items(), key=lambda item: item[1])
    if count == 0:
        return ""
    return (
        f" The header is one column holding {sep!r} {count} times: the file is {sep!r}-separated;"
        f" set `delimiter: {sep!r}` in the source params (for `itsm-ml check`: in the --mapping file)"
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
