"""Event logs: one row per update of a case, collapsed to one canonical ticket per case.

Features come from a case's first event, the state when it was opened (what a router has in
hand), and labels from its last event, the final state (what ServiceNow's own Predictive
Intelligence learns: "the value the field had when the record closed"). The ServiceNow audit
log is one such log, with a preset mapping (`ServiceNowAuditLogSource`).

Collapsing trusts the case id: events sharing it are one case. An id reused for another case
(a re-imported or renumbered record) would merge two tickets silently, so the open time, which
never changes in the life of one case, is compared across its events: where the parsed values
differ, they go to a metadata column that validation turns into a critical failure.
"""

from __future__ import annotations

import pandas as pd

from itsm_ml.config import EventLogFields
from itsm_ml.data.sources import parsing
from itsm_ml.data.sources.canonical import CanonicalBuilder, record_numbers
from itsm_ml.data.sources.csv_files import read_export
from itsm_ml.schemas import LABEL_PREFIX, STRING, TICKETS

_CASE, _ALONE, _RECORD = "_case", "_alone", "_record"
MAX_CONFLICTING_SHOWN = 3  # values of one case listed in its conflict (then their count)


def load_event_log(source: EventLogFields) -> pd.DataFrame:
    """Read an event log (only the mapped columns) and collapse it to canonical tickets."""
    optional = source.optional_columns()
    required = [c for c in source.mapped_columns() if c not in optional]
    return events_to_canonical(read_export(source, required, optional=optional), source)


def events_to_canonical(events: pd.DataFrame, source: EventLogFields) -> pd.DataFrame:
    """Map events, read as text in file order, onto the canonical tickets table: one row per
    case, sorted by case id (events without one last, in file order)."""
    first, last, case_of = _first_and_last_events(events, source)
    build = CanonicalBuilder(TICKETS, first[_RECORD])  # a ticket points at its first event
    build.text("ticket_id", first[source.case_id])
    fmt = source.date_format
    for name, column, state in (
        ("opened_at", source.opened_at, first),
        ("closed_at", source.closed_at, last),
        ("resolved_at", source.resolved_at, last),
    ):
        if column:
            build.timestamps(name, state[column], fmt)
    # A case-level open time repeats on every event and must agree; an event time mapped as
    # `opened_at` (one of the `order` columns: the first event is the opening) differs by
    # nature and is not judged.
    if source.opened_at and source.opened_at not in source.order:
        per_case = _disagreeing_times(events[source.opened_at], case_of, fmt)
        build.conflicts("opened_at", case_of.loc[first.index].map(per_case))
    if source.text:
        build.joined_text("text", [first[c] for c in source.text])
    absent = source.optional_columns() - set(events.columns)
    for name, column in source.at_open.items():
        if column not in absent:
            build.typed(name, first[column], fmt)
    for name, column in source.labels.items():
        label = name if name.startswith(LABEL_PREFIX) else LABEL_PREFIX + name
        if column not in absent:
            build.typed(label, last[column], fmt)
    return build.build()


def _first_and_last_events(
    events: pd.DataFrame, source: EventLogFields
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """The first and the last event of each case, row i of both belonging to the same case,
    and the case of every event (a number)."""
    records = record_numbers(events)
    case = parsing.clean_text(events[source.case_id])
    keys = pd.DataFrame(
        {
            _CASE: case,
            # An event without a case id cannot be grouped: it stays a case of its own, so
            # validation reports the null id instead of merging unrelated events.
            _ALONE: records.where(case.isna(), 0),
            **{
                f"_order{i}": _sortable(events[c], source.date_format)
                for i, c in enumerate(source.order)
            },
            _RECORD: records,
        },
        index=events.index,
    )
    # Unparseable order values are NA and sort last within their case; the record number
    # makes the order total, so equal keys keep the file's order.
    ordered = keys.sort_values(list(keys.columns), kind="stable", na_position="last")
    first = ordered.drop_duplicates([_CASE, _ALONE], keep="first").index
    last = ordered.drop_duplicates([_CASE, _ALONE], keep="last").index
    with_records = events.assign(**{_RECORD: records})
    case_of = keys.groupby([_CASE, _ALONE], dropna=False, sort=False).ngroup()
    return with_records.loc[first], with_records.loc[last], case_of


def _disagreeing_times(raw: pd.Series, case_of: pd.Series, fmt: str | None) -> pd.Series:
    """Per case whose events carry different times (compared parsed, so '1/3/2024 10:00' and
    '01/03/2024 10:00' agree), those times as text: 'a | b', the first few and their count
    when there are more. Cases that agree are absent; values that do not parse are left to the
    parse rule of the canonical column."""
    parsed, _ = parsing.parse_timestamps(raw, fmt)
    pairs = pd.DataFrame({_CASE: case_of, "time": parsed}).dropna().drop_duplicates()
    counts = pairs.groupby(_CASE).size()
    many = pairs[pairs[_CASE].isin(counts.index[counts > 1])].sort_values([_CASE, "time"])
    shown = many["time"].dt.strftime("%Y-%m-%d %H:%M:%S")

    def listed(values: pd.Series) -> str:
        head = " | ".join(values.iloc[:MAX_CONFLICTING_SHOWN])
        more = len(values) - MAX_CONFLICTING_SHOWN
        return f"{head} | ... ({len(values)} values)" if more > 0 else head

    return shown.groupby(many[_CASE]).agg(listed).astype(STRING)


def _sortable(raw: pd.Series, fmt: str | None) -> pd.Series:
    """An order column as numbers when most values are numbers, else as timestamps when most
    parse with `fmt`, else as text. A majority, not all: one corrupt cell must not flip a
    numeric column to text order, where '10' sorts before '9'."""
    present = int(raw.notna().sum())
    numbers, _ = parsing.parse_numbers(raw)
    if 2 * int(numbers.notna().sum()) > present:
        return numbers
    times, _ = parsing.parse_timestamps(raw, fmt)
    if 2 * int(times.notna().sum()) > present:
        return times
    return raw.astype(STRING)
