"""Adapters from each source kind onto the canonical tables.

Nothing outside this package knows a source's quirks; callers ask for a table by its
source configuration and get a canonical frame back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from itsm_ml.config import (
    ChangeCsvSource,
    ChangeSource,
    EventLogFields,
    GeneratorSource,
    MicroRecordGeneratorSource,
    MicroRecordsFileSource,
    MicroRecordSource,
    NoMicroRecords,
    ServiceNowAuditLogSource,
    ServiceNowTableSource,
    TicketCsvSource,
    TicketSource,
)
from itsm_ml.errors import ConfigError

AnySource = TicketSource | ChangeSource | MicroRecordSource


def load_tickets(source: TicketSource) -> pd.DataFrame:
    from itsm_ml.data.sources import event_log, generic, servicenow

    if isinstance(source, EventLogFields):  # the generic event log and the ServiceNow preset
        return event_log.load_event_log(source)
    if isinstance(source, ServiceNowTableSource):
        return servicenow.load_table_export(source)
    if isinstance(source, TicketCsvSource):
        return generic.load_ticket_csv(source)
    from itsm_ml.data.sources import generator

    return servicenow.table_frame_to_canonical(
        generator.generate_incidents(source), generator.INCIDENT_DATE_FORMAT
    )


def load_changes(source: ChangeSource) -> pd.DataFrame:
    from itsm_ml.data.sources import generic

    if isinstance(source, ChangeCsvSource):
        return generic.load_change_csv(source)
    from itsm_ml.data.sources import generator

    return generic.change_rows_to_canonical(
        generator.generate_changes(source), generator.GENERATED_CHANGE_MAPPING
    )


def load_micro_records(source: MicroRecordSource) -> pd.DataFrame:
    from itsm_ml.data.sources import micro_records

    if isinstance(source, MicroRecordsFileSource):
        return micro_records.load_micro_records(source)
    if isinstance(source, NoMicroRecords):
        return micro_records.empty_micro_records()
    from itsm_ml.data.sources import micro_generator

    return micro_generator.generate_micro_records(source)


_MICRO_KINDS = (MicroRecordsFileSource, MicroRecordGeneratorSource, NoMicroRecords)


def load_table(table: str, source: AnySource) -> pd.DataFrame:
    if table == "micro_records" and isinstance(source, _MICRO_KINDS):
        return load_micro_records(source)
    if isinstance(source, _MICRO_KINDS):
        raise ConfigError(f"a source of kind {source.kind!r} cannot feed the {table} table")
    if table == "tickets" and not isinstance(source, ChangeCsvSource):
        return load_tickets(source)
    if table == "changes" and isinstance(source, ChangeCsvSource | GeneratorSource):
        return load_changes(source)
    raise ConfigError(f"a source of kind {source.kind!r} cannot feed the {table} table")


# ServiceNow's out-of-box choice lists: the preset vocabularies of its exports (and of the
# generator, which imitates them). Other sources have their own codes: no preset.
SERVICENOW_TICKET_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "label_priority": ("1 - Critical", "2 - High", "3 - Moderate", "4 - Low", "5 - Planning"),
    "label_impact": ("1 - High", "2 - Medium", "3 - Low"),
    "label_urgency": ("1 - High", "2 - Medium", "3 - Low"),
}
SERVICENOW_CHANGE_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "change_type": ("standard", "normal", "emergency"),
}


@dataclass(frozen=True)
class SourceTraits:
    """What validation may demand of a table, given what its source provides."""

    has_text: bool
    non_null: tuple[str, ...]
    # Used when `<table>.validation.vocabularies` is not set in params.yaml.
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict)


def traits(table: str, source: AnySource) -> SourceTraits:
    if table == "micro_records":
        # A symptom is what a micro-record is; no source has ServiceNow's choice lists.
        return SourceTraits(
            has_text=not isinstance(source, NoMicroRecords), non_null=("opened_at",)
        )
    if table == "changes":
        return SourceTraits(
            has_text=False,
            non_null=("opened_at", "label_failed"),
            vocabularies=SERVICENOW_CHANGE_VOCABULARIES
            if isinstance(source, GeneratorSource)
            else {},
        )
    servicenow = isinstance(
        source, ServiceNowTableSource | ServiceNowAuditLogSource | GeneratorSource
    )
    vocabularies = SERVICENOW_TICKET_VOCABULARIES if servicenow else {}
    if isinstance(source, TicketCsvSource | EventLogFields):
        return SourceTraits(
            has_text=bool(source.text),
            non_null=("opened_at",) if source.opened_at else (),
            vocabularies=vocabularies,
        )
    return SourceTraits(
        has_text=isinstance(source, ServiceNowTableSource | GeneratorSource),
        non_null=("opened_at",),
        vocabularies=vocabularies,
    )


def describe(source: AnySource) -> str:
    if isinstance(source, GeneratorSource | MicroRecordGeneratorSource):
        return f"built-in generator (seed {source.seed}, {source.rows} rows)"
    if isinstance(source, NoMicroRecords):
        return "no micro-records (kind none)"
    return f"{source.resolved_path()} ({source.kind})"
