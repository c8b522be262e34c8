"""Batch scoring of an ITSM export: one answer row per record, written to one CSV.

What a scheduler calls (`itsm-ml score`): an incident or change-request export with
ServiceNow field names goes through the same adapter as the service's records
(`incidents_to_canonical`, `change_requests_to_canonical`), the registered model's `respond`,
and `answers.table`. The output has the record's `number` first, then `model` and `version`,
then the flat answer columns, in input order.

Tickets are scored chunk by chunk: a ticket's answer depends on that ticket alone, so memory
stays flat whatever the file's size and the output does not depend on the chunk size.
Change requests are scored as one batch: a change's conflicts and recent-volume features
depend on the other changes planned beside it, so the whole file is the calendar (cutting it
into chunks would miss the conflicts across a cut and make the answers depend on where it
fell). Change exports are small next to incident ones.

Two engines give the same bytes: `score_file` in this process, and `score_file_dask`, which
reads the same chunks here and has a Dask cluster score them, partition by partition, with
the model shipped to every worker once. The reading stays on this side on purpose:
`dask.dataframe.read_csv` cuts a file at newlines, and ServiceNow descriptions hold quoted
newlines (its own documentation warns it "may fail" on them); reading here also spares the
workers from needing the input or output paths.

The output lands under a temporary name and is renamed only when every record was scored:
an error mid-file leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

import pandas as pd

from itsm_ml import io
from itsm_ml.catalog import catalog
from itsm_ml.config import Params
from itsm_ml.data.sources.csv_files import (
    STREAM_ERRORS,
    broken_stream_error,
    check_readable_text,
    decode_error,
    open_export,
)
from itsm_ml.data.sources.servicenow import (
    CHANGE_FIELDS,
    CHANGE_TIMES,
    INCIDENT_FIELDS,
    TABLE_TEXT,
    change_requests_to_canonical,
    incidents_to_canonical,
)
from itsm_ml.errors import ConfigError, ItsmMlError, SourceError
from itsm_ml.schemas import UNPARSED_PREFIX
from itsm_ml.serving import answers

log = logging.getLogger(__name__)

Kind = Literal["tickets", "changes"]
KINDS: tuple[Kind, ...] = ("tickets", "changes")
NUMBER = "number"
# Probabilities to a millionth: plenty to act on, and the same text from either engine.
FLOAT_FORMAT = "%.6f"
# Scoring a ticket takes ~10 kB at its peak (text n-grams): 10,000 rows add ~100 MB, and larger
# chunks were no faster (bench/batch_scoring.py).
DEFAULT_CHUNK_ROWS = 10_000

_TICKET_FIELD = {canonical: name for name, canonical in INCIDENT_FIELDS.items()}
_CHANGE_FIELD = {canonical: name for name, canonical in {**CHANGE_TIMES, **CHANGE_FIELDS}.items()}
_SHOWN_COLUMNS = 12


@dataclass(frozen=True)
class ScoringSpec:
    """Everything besides the model that scoring a chunk needs (shipped to Dask workers)."""

    kind: Kind
    model_name: str
    version: str
    top_k: int = 3
    numeric: tuple[str, ...] = ()
    date_format: str | None = None


@dataclass(frozen=True)
class ScoredChunk:
    table: pd.DataFrame
    unparsed: dict[str, int]  # canonical column -> values that did not parse


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did, for the command's report and the scheduler's log."""

    rows: int
    chunks: int
    seconds: float
    output: Path
    engine: str
    counts: dict[str, int]  # per decision (triage) or per band (change risk)
    unparsed: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


class ResolvedModel(NamedTuple):
    kind: Kind
    version: str
    model: Any
    name: str  # as registered


# --------------------------------------------------------------------------- what to score


def resolve_model(
    params: Params, root: Path, name: str, version: str | None = None
) -> ResolvedModel:
    """The kind, version and loaded model behind a registered model name.

    `name` is a registered model (itsm-routing, ...) or its name in the catalog of params.yaml
    (routing, change-risk, ...); `version` None takes the one the `champion` alias points at.
    """
    from itsm_ml.serving.champions import champion_version, load_version
    from itsm_ml.tracking import registry

    try:
        entry = catalog(params).get(name)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; `itsm-ml score --model` takes one of them") from exc
    if entry.family == "early_warning":
        raise ConfigError(
            f"{entry.name} is a detector: it scores points of a series in time order, not"
            " records one by one; use `itsm-ml watch` over an export, or POST /v1/anomaly"
        )
    if entry.family == "problems":
        raise ConfigError(
            f"{entry.name} groups records into recurring issues in time order, each after the"
            " ones before it, not records one by one in chunks; use `itsm-ml problems`"
        )
    kind: Kind = "changes" if entry.family == "change_risk" else "tickets"
    registered, item = entry.registered_model, entry.name
    registry.configure(root)
    where = registry.tracking_uri(root)
    if version is None:
        try:
            version = champion_version(registered)
        except Exception as exc:  # the store is unreachable or not a registry
            raise ItsmMlError(
                f"cannot read the `champion` alias of {registered} from {where}: {exc}"
            ) from exc
        if version is None:
            raise ItsmMlError(
                f"{registered} has no `champion` version in the registry at {where}: promote "
                f"one with `itsm-ml promote {item}`, or name a version explicitly"
            )
    try:
        model = load_version(registered, version)
    except Exception as exc:  # MLflow raises its own types for a missing version or artifact
        raise ItsmMlError(
            f"cannot load {registered} version {version} from {where}: {type(exc).__name__}: {exc}"
        ) from exc
    return ResolvedModel(kind, str(version), model, registered)


def model_fields(model: Any, kind: Kind, numeric: Sequence[str] = ()) -> list[str]:
    """The export fields (ServiceNow names) the model reads; every field of the adapter when
    the model does not say which it learned from."""
    if kind == "tickets":
        categorical = getattr(model, "categorical_", None)
        if categorical is None:
            return [*TABLE_TEXT, *INCIDENT_FIELDS]
        text = list(TABLE_TEXT) if getattr(model, "uses_text_", False) else []
        return [*text, *(_TICKET_FIELD[c] for c in categorical if c in _TICKET_FIELD)]
    inputs = getattr(model, "input_columns_", None)
    numbers = _change_numeric(model, numeric)
    if inputs is None:
        return [*CHANGE_TIMES, *CHANGE_FIELDS, *numbers]
    mapped = [_CHANGE_FIELD[c] for c in inputs if c in _CHANGE_FIELD]
    return list(dict.fromkeys([*mapped, *(c for c in inputs if c in numbers)]))


def _change_numeric(model: Any, numeric: Sequence[str]) -> tuple[str, ...]:
    """The numeric measures to read: those given and those the model was fitted with."""
    learned = getattr(getattr(model, "featurizer", None), "numeric", ()) or ()
    return tuple(dict.fromkeys([*numeric, *learned]))


# --------------------------------------------------------------------------- one chunk


def score_rows(model: Any, rows: pd.DataFrame, spec: ScoringSpec) -> ScoredChunk:
    """Records as read from the export (text) -> the output rows, in the same order.

    Runs wherever the chunk is scored (here or on a Dask worker); nothing in it depends on
    where the chunk sits in the file.
    """
    if spec.kind == "tickets":
        canonical = incidents_to_canonical(rows, spec.date_format)
    else:
        canonical = change_requests_to_canonical(rows, spec.date_format, spec.numeric)
    answer = model.respond(canonical)
    if len(answer) != len(rows):
        raise ItsmMlError(
            f"{spec.model_name} v{spec.version} answered {len(answer)} rows for {len(rows)} records"
        )
    flat = answers.table(answer, spec.top_k).reset_index(drop=True)
    number = rows[NUMBER].to_numpy() if NUMBER in rows else [None] * len(rows)
    lead = pd.DataFrame(
        {NUMBER: number, "model": spec.model_name, "version": spec.version}, index=flat.index
    )
    unparsed = {
        column.removeprefix(UNPARSED_PREFIX): int(canonical[column].notna().sum())
        for column in canonical.columns
        if column.startswith(UNPARSED_PREFIX)
    }
    return ScoredChunk(pd.concat([lead, flat], axis=1), unparsed)


# --------------------------------------------------------------------------- reading


def _codec(encoding: str) -> str:
    # utf-8-sig drops the byte-order mark Excel writes; utf-8 would keep it in `number`.
    return "utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding


def read_header(path: Path, *, encoding: str = "utf-8", delimiter: str = ",") -> list[str]:
    """The column names of an export, after checking it is a readable, non-empty CSV."""
    check_readable_text(path)
    try:
        with open_export(path) as stream:
            header = pd.read_csv(stream, nrows=0, sep=delimiter, encoding=_codec(encoding))
    except STREAM_ERRORS as exc:
        raise broken_stream_error(path, exc) from exc
    except pd.errors.EmptyDataError as exc:
        raise SourceError(f"{path}: no header row found (the file has no columns)") from exc
    except UnicodeDecodeError as exc:
        raise decode_error(path, encoding, "pass --encoding") from exc
    except pd.errors.ParserError as exc:
        raise SourceError(f"{path}: the header row is not valid CSV: {exc}") from exc
    return [str(c).strip() for c in header.columns]


def check_fields(
    path: Path, present: Sequence[str], kind: Kind, expected: Sequence[str], model_name: str
) -> None:
    """Fail when the export has none of the fields the model reads; warn for the absent ones."""
    found = [f for f in expected if f in present]
    what = "incident" if kind == "tickets" else "change request"
    if not found:
        shown = ", ".join(repr(c) for c in present[:_SHOWN_COLUMNS])
        more = " ..." if len(present) > _SHOWN_COLUMNS else ""
        by_label = {c.lower().replace(" ", "_"): c for c in present}
        labels = [f"{by_label[f]!r} -> {f!r}" for f in expected if f in by_label]
        hint = (
            f" These look like display labels ({', '.join(labels[:4])}): export with field names."
            if labels
            else " Is it the right file and the right delimiter?"
        )
        raise SourceError(
            f"{path}: none of the {what} fields {model_name} reads is in the file; expected "
            f"ServiceNow field names such as {', '.join(expected)}. The file has "
            f"{len(present)} column(s): {shown}{more}.{hint}"
        )
    absent = [f for f in expected if f not in present]
    if absent:
        log.warning(
            "%s: no %s column: %s scores without it (its notes say so)",
            path,
            ", ".join(absent),
            model_name,
        )


@dataclass(frozen=True)
class _Chunk:
    rows: pd.DataFrame
    read_to: int  # bytes of the file (compressed, for .gz) read once this chunk was parsed


@contextmanager
def _chunks(
    path: Path, *, chunk_rows: int, encoding: str, delimiter: str
) -> Iterator[Iterator[_Chunk]]:
    """The export's records, `chunk_rows` at a time, every value as text (empty: missing).

    Quoted fields may span lines; the parser reads a buffer at a time, never the whole file.
    """
    with path.open("rb") as raw, open_export(path, raw) as stream:
        reader = pd.read_csv(
            stream,
            sep=delimiter,
            encoding=_codec(encoding),
            compression=None,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            chunksize=chunk_rows,
            engine="c",
        )
        with reader:
            yield _parsed(reader, raw, path, encoding)


def _parsed(reader: Any, raw: IO[bytes], path: Path, encoding: str) -> Iterator[_Chunk]:
    done = 0
    while True:
        try:
            rows = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise decode_error(path, encoding, "pass --encoding") from exc
        except STREAM_ERRORS as exc:
            raise broken_stream_error(path, exc) from exc
        except pd.errors.ParserError as exc:
            where = f" after record {done:,}" if done else ""
            if "EOF inside string" in str(exc):
                where += " (a quoted field never closes: the file looks truncated, re-export it)"
            raise SourceError(f"{path}: not valid CSV{where}: {exc}".strip()) from exc
        if rows.empty:  # a file with a header only gives one empty chunk
            continue
        rows.columns = [str(c).strip() for c in rows.columns]
        done += len(rows)
        yield _Chunk(rows, raw.tell())


def _one_batch(chunks: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """Every chunk as one (change requests: the whole file is the calendar)."""
    parts = list(chunks)
    if parts:
        yield _Chunk(pd.concat([p.rows for p in parts], ignore_index=True), parts[-1].read_to)


# --------------------------------------------------------------------------- the run

# Chunks in -> (bytes of the file read, the chunk's output) out, in input order.
Scorer = Callable[[Iterator[_Chunk]], Iterator[tuple[int, ScoredChunk]]]


def _spec(
    model: Any,
    kind: str,
    model_name: str,
    version: str,
    top_k: int,
    numeric: Sequence[str],
    date_format: str | None,
) -> ScoringSpec:
    if kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    return ScoringSpec(
        "tickets" if kind == "tickets" else "changes",
        model_name,
        str(version),
        top_k,
        _change_numeric(model, numeric),
        date_format,
    )


def _progress_bar(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _check_job(
    spec: ScoringSpec,
    expected: Sequence[str],
    input_path: Path,
    output_path: Path,
    chunk_rows: int,
    encoding: str,
    delimiter: str,
) -> None:
    if chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if output_path.resolve() == input_path.resolve():
        raise ConfigError(f"{output_path}: the output would overwrite the input; name another file")
    present = read_header(input_path, encoding=encoding, delimiter=delimiter)
    check_fields(input_path, present, spec.kind, expected, spec.model_name)


def _run(
    scorer: Scorer,
    spec: ScoringSpec,
    *,
    started: float,
    input_path: Path,
    output_path: Path,
    engine: str,
    chunk_rows: int,
    encoding: str,
    delimiter: str,
    progress: bool,
) -> ScoreSummary:
    """Feed the export's chunks to `scorer`, append each answer to the output (the caller
    ran `_check_job` first)."""
    counted = "decision" if spec.kind == "tickets" else "band"
    counts: Counter[str] = Counter()
    unparsed: Counter[str] = Counter()
    rows = chunks = 0
    with ExitStack() as stack:
        bar = stack.enter_context(_progress_bar(progress))
        task = bar.add_task(f"scoring {input_path.name}", total=input_path.stat().st_size, rows=0)
        read = stack.enter_context(
            _chunks(input_path, chunk_rows=chunk_rows, encoding=encoding, delimiter=delimiter)
        )
        if spec.kind == "changes":
            read = _one_batch(read)
        tmp = stack.enter_context(io.atomic_path(output_path))
        out = stack.enter_context(tmp.open("w", encoding="utf-8", newline=""))
        for read_to, scored in scorer(read):
            # Ids and notes come from the export as they were: a CSV is opened in a
            # spreadsheet, which would run a cell like `=HYPERLINK(...)`.
            io.escape_formulas(scored.table).to_csv(
                out, header=chunks == 0, index=False, float_format=FLOAT_FORMAT, lineterminator="\n"
            )
            rows += len(scored.table)
            chunks += 1
            counts.update(scored.table[counted].astype(str))
            unparsed.update({k: v for k, v in scored.unparsed.items() if v})
            bar.update(task, completed=read_to, rows=rows)
        if rows == 0:
            raise SourceError(f"{input_path}: has a header but no records: nothing to score")
    for column, count in sorted(unparsed.items()):
        log.warning(
            "%s: %d %s value(s) did not parse and were scored as missing", input_path, count, column
        )
    return ScoreSummary(
        rows=rows,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        output=output_path,
        engine=engine,
        counts=dict(sorted(counts.items())),
        unparsed=dict(sorted(unparsed.items())),
    )


def score_file(
    model: Any,
    *,
    kind: str,
    input_path: Path,
    output_path: Path,
    model_name: str,
    version: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    top_k: int = 3,
    numeric: Sequence[str] = (),
    date_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str = ",",
    progress: bool = True,
) -> ScoreSummary:
    """Score an export in this process, `chunk_rows` records at a time, into `output_path`.

    `kind`: "tickets" (incident records) or "changes" (change requests, scored as one batch);
    `numeric`: change measures to read as numbers besides those the model was fitted with;
    `date_format`: strftime format of the dates, None for ISO 8601 ("2025-01-31 09:00:00");
    `progress`: a progress bar on stderr, advanced by the bytes read.
    """
    started = time.perf_counter()
    spec = _spec(model, kind, model_name, version, top_k, numeric, date_format)
    expected = model_fields(model, spec.kind, numeric)
    input_path, output_path = Path(input_path), Path(output_path)
    _check_job(spec, expected, input_path, output_path, chunk_rows, encoding, delimiter)

    def here(chunks: Iterator[_Chunk]) -> Iterator[tuple[int, ScoredChunk]]:
        for chunk in chunks:
            yield chunk.read_to, score_rows(model, chunk.rows, spec)

    return _run(
        here,
        spec,
        started=started,
        input_path=input_path,
        output_path=output_path,
        engine="local",
        chunk_rows=chunk_rows,
        encoding=encoding,
        delimiter=delimiter,
        progress=progress,
    )


@contextmanager
def _dask_client(scheduler: str | None, n_workers: int) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a local cluster started (and stopped) here."""
    import distributed

    dist: Any = distributed  # untyped library
    if scheduler is None:
        cluster = dist.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        with cluster, dist.Client(cluster) as client:
            yield client
        return
    try:
        # Waits up to Dask's connect timeout (distributed.comm.timeouts.connect, 30 s).
        client = dist.Client(scheduler)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
    with client:
        yield client


def score_file_dask(
    model: Any,
    *,
    kind: str,
    input_path: Path,
    output_path: Path,
    model_name: str,
    version: str,
    scheduler: str | None = None,
    n_workers: int = 2,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    top_k: int = 3,
    numeric: Sequence[str] = (),
    date_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str = ",",
    progress: bool = True,
) -> ScoreSummary:
    """`score_file` with the chunks scored on a Dask cluster; the same output, byte for byte.

    `scheduler`: the address of a running scheduler (its workers need this package
    installed, not the files); None starts a local cluster of `n_workers` single-threaded
    processes for the run. The model is sent to every worker once; at most two chunks per
    worker thread are in flight, so memory stays flat on both sides.
    """
    from distributed import KilledWorker

    started = time.perf_counter()
    spec = _spec(model, kind, model_name, version, top_k, numeric, date_format)
    expected = model_fields(model, spec.kind, numeric)
    input_path, output_path = Path(input_path), Path(output_path)
    # A bad file or option fails here, before paying for a cluster.
    _check_job(spec, expected, input_path, output_path, chunk_rows, encoding, delimiter)
    with _dask_client(scheduler, n_workers) as client:
        shipped = client.scatter(model, broadcast=True, hash=False)
        window = max(2, 2 * sum(client.nthreads().values()))

        def remote(chunks: Iterator[_Chunk]) -> Iterator[tuple[int, ScoredChunk]]:
            pending: deque[tuple[int, Any]] = deque()
            try:
                for chunk in chunks:
                    rows = client.scatter(chunk.rows, hash=False)
                    task = client.submit(score_rows, shipped, rows, spec, pure=False)
                    pending.append((chunk.read_to, task))
                    while len(pending) >= window:
                        read_to, done = pending.popleft()
                        yield read_to, done.result()
                while pending:
                    read_to, done = pending.popleft()
                    yield read_to, done.result()
            except KilledWorker as exc:
                raise ItsmMlError(
                    f"a Dask worker died while scoring {input_path} ({exc}); out of memory? "
                    "Lower the chunk size or give the workers more memory"
                ) from exc
            finally:
                client.cancel([task for _, task in pending])

        return _run(
            remote,
            spec,
            started=started,
            input_path=input_path,
            output_path=output_path,
            engine="dask" if scheduler is None else f"dask ({scheduler})",
            chunk_rows=chunk_rows,
            encoding=encoding,
            delimiter=delimiter,
            progress=progress,
        )
