"""Adapters from each source kind onto the canonical tables.

Nothing outside this package knows a source's quirks; callers ask for a table by its
source configuration and get a canonical frame back.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from itsm_ml.config import (
    ChangeCsvSource,
    ChangeSource,
    GeneratorSource,
    ServiceNowAuditLogSource,
    ServiceNowTableSource,
    TicketCsvSource,
    TicketSource,
)
from itsm_ml.errors import ConfigError

AnySource = TicketSource | ChangeSource


def load_tickets(source: TicketSource) -> pd.DataFrame:
    from itsm_ml.sources import generic, servicenow

    if isinstance(source, ServiceNowAuditLogSource):
        return servicenow.load_audit_log(source)
    if isinstance(source, ServiceNowTableSource):
        return servicenow.load_table_export(source)
    if isinstance(source, TicketCsvSource):
        return generic.load_ticket_csv(source)
    from itsm_ml.sources import generator

    return servicenow.table_frame_to_canonical(
        generator.generate_incidents(source), generator.INCIDENT_DATE_FORMAT
    )


def load_changes(source: ChangeSource) -> pd.DataFrame:
    from itsm_ml.sources import generic

    if isinstance(source, ChangeCsvSource):
        return generic.load_change_csv(source)
    from itsm_ml.sources import generator

    return generic.change_rows_to_canonical(
        generator.generate_changes(source), generator.GENERATED_CHANGE_MAPPING
    )


def load_table(table: str, source: AnySource) -> pd.DataFrame:
    if table == "tickets" and not isinstance(source, ChangeCsvSource):
        return load_tickets(source)
    if table == "changes" and isinstance(source, ChangeCsvSource | GeneratorSource):
        return load_changes(source)
    raise ConfigError(f"a source of kind {source.kind!r} cannot feed the {table} table")


@dataclass(frozen=True)
class SourceTraits:
    """What validation may demand of a table, given what its source provides."""

    has_text: bool
    non_null: tuple[str, ...]


def traits(table: str, source: AnySource) -> SourceTraits:
    if table == "changes":
        return SourceTraits(has_text=False, non_null=("opened_at", "label_failed"))
    if isinstance(source, TicketCsvSource):
        return SourceTraits(
            has_text=bool(source.text),
            non_null=("opened_at",) if source.opened_at else (),
        )
    return SourceTraits(
        has_text=isinstance(source, ServiceNowTableSource | GeneratorSource),
        non_null=("opened_at",),
    )


def describe(source: AnySource) -> str:
    if isinstance(source, GeneratorSource):
        return f"built-in generator (seed {source.seed}, {source.rows} rows)"
    return f"{source.resolved_path()} ({source.kind})"
