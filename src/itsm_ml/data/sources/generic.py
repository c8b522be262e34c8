"""Generic ticket and change CSVs, mapped column by column in params.yaml."""

from __future__ import annotations

import pandas as pd

from itsm_ml.config import ChangeCsvSource, TicketCsvSource
from itsm_ml.data.sources.canonical import CanonicalBuilder, record_numbers
from itsm_ml.data.sources.csv_files import read_export
from itsm_ml.schemas import CHANGES, LABEL_PREFIX, TICKETS


def _row_ids(rows: pd.DataFrame, prefix: str) -> pd.Series:
    width = max(len(str(len(rows))), 6)
    return pd.Series([f"{prefix}{i:0{width}d}" for i in range(1, len(rows) + 1)], index=rows.index)


def load_ticket_csv(source: TicketCsvSource) -> pd.DataFrame:
    return ticket_rows_to_canonical(read_export(source, source.mapped_columns()), source)


def ticket_rows_to_canonical(rows: pd.DataFrame, source: TicketCsvSource) -> pd.DataFrame:
    build = CanonicalBuilder(TICKETS, record_numbers(rows))
    build.text("ticket_id", rows[source.id] if source.id else _row_ids(rows, "row-"))
    for canonical, column in (("opened_at", source.opened_at), ("closed_at", source.closed_at)):
        if column:
            build.timestamps(canonical, rows[column], source.date_format)
    build.joined_text("text", [rows[c] for c in source.text])
    for name, column in source.features.items():
        build.typed(name, rows[column], source.date_format)
    for name, column in source.labels.items():
        label = name if name.startswith(LABEL_PREFIX) else LABEL_PREFIX + name
        build.typed(label, rows[column], source.date_format)
    return build.build()


def load_change_csv(source: ChangeCsvSource) -> pd.DataFrame:
    return change_rows_to_canonical(read_export(source, source.mapped_columns()), source)


def change_rows_to_canonical(rows: pd.DataFrame, source: ChangeCsvSource) -> pd.DataFrame:
    build = CanonicalBuilder(CHANGES, record_numbers(rows))
    build.text("change_id", rows[source.id] if source.id else _row_ids(rows, "chg-"))
    times = {
        "opened_at": source.opened_at,
        "planned_start": source.planned_start,
        "planned_end": source.planned_end,
        "closed_at": source.closed_at,
    }
    for canonical, column in times.items():
        if column:
            build.timestamps(canonical, rows[column], source.time_format)
    for name, column in source.numeric.items():
        build.numbers(name, rows[column])
    for name, column in source.categorical.items():
        build.text(name, rows[column])
    build.booleans(
        "label_failed",
        rows[source.outcome],
        source.outcome_true_values,
        source.outcome_false_values,
    )
    return build.build()
