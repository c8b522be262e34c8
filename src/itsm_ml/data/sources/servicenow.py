"""ServiceNow incident exports: the audit log (one row per update) and the plain table.

Features come from the state when the incident was opened, labels from its final state:
that is what a router has in hand at open, and what ServiceNow's own Predictive Intelligence
learns ("the value the field had when the record closed").
"""

from __future__ import annotations

import pandas as pd

from itsm_ml.config import (
    SERVICENOW_AUDIT_AT_OPEN,
    ServiceNowAuditLogSource,
    ServiceNowTableSource,
)
from itsm_ml.data.sources.canonical import CanonicalBuilder, record_numbers
from itsm_ml.data.sources.csv_files import read_export
from itsm_ml.data.sources.event_log import load_event_log
from itsm_ml.schemas import CHANGES, TICKETS

_TRUE = ("true", "True", "TRUE", "1")
_FALSE = ("false", "False", "FALSE", "0")

# audit-log column -> canonical feature: the preset's mapping (in config, where params are
# validated), read the other way round for live incident records below.
AUDIT_FEATURES = {column: feature for feature, column in SERVICENOW_AUDIT_AT_OPEN.items()}


def load_audit_log(source: ServiceNowAuditLogSource) -> pd.DataFrame:
    """The audit log is an event log whose mapping defaults to ServiceNow's fields."""
    return load_event_log(source)


# table-export column -> canonical column. A table export holds the state at export time, so
# everything a technician may change later is a label; only what the caller brought is a feature.
TABLE_FEATURES = {
    "caller_id": "caller",
    "opened_by": "opened_by",
    "contact_type": "channel",
    "location": "location",
    "cmdb_ci": "ci",
    "business_service": "service",
}
TABLE_LABELS = {
    "assignment_group": "label_assignment_group",
    "category": "label_category",
    "subcategory": "label_subcategory",
    "priority": "label_priority",
    "impact": "label_impact",
    "urgency": "label_urgency",
    "close_code": "label_closed_code",
    "close_notes": "label_resolution_notes",
    "knowledge": "label_knowledge",
    "problem_id": "label_problem_id",
    "rfc": "label_rfc",
    "parent_incident": "label_parent_incident",
}
TABLE_TEXT = ("short_description", "description")
TABLE_REQUIRED = ("number", "opened_at", "short_description", "assignment_group")


def load_table_export(source: ServiceNowTableSource) -> pd.DataFrame:
    rows = read_export(source, required=TABLE_REQUIRED)
    return table_frame_to_canonical(rows, source.date_format)


def table_frame_to_canonical(rows: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Map a ServiceNow table export, already read as text, onto the canonical tickets table."""
    build = CanonicalBuilder(TICKETS, record_numbers(rows))

    def optional(column: str) -> pd.Series:
        return (
            rows[column] if column in rows else pd.Series(pd.NA, index=rows.index, dtype="string")
        )

    build.text("ticket_id", rows["number"])
    build.timestamps("opened_at", rows["opened_at"], fmt)
    build.timestamps("closed_at", optional("closed_at"), fmt)
    build.timestamps("resolved_at", optional("resolved_at"), fmt)
    build.joined_text("text", [rows[c] for c in TABLE_TEXT if c in rows])
    for column, feature in TABLE_FEATURES.items():
        if column in rows:
            build.text(feature, rows[column])
    for column, label in TABLE_LABELS.items():
        if column in rows:
            build.text(label, rows[column])
    if "made_sla" in rows:
        build.booleans("label_made_sla", rows["made_sla"], _TRUE, _FALSE)
    for column in ("reassignment_count", "reopen_count"):
        if column in rows:
            build.integers(f"label_{column}", rows[column])
    return build.build()


# A live incident record (what the ITSM sends when a ticket is opened, or an export of open
# tickets) holds the state at open: the audit log's first update, plus the text and service a
# table record carries.
INCIDENT_FIELDS = {**AUDIT_FEATURES, "business_service": "service"}


def incidents_to_canonical(rows: pd.DataFrame, fmt: str | None = None) -> pd.DataFrame:
    """Map incident records at open (ServiceNow field names, values as text) onto the
    canonical tickets table, with every field optional; `fmt` None reads ISO 8601."""
    build = CanonicalBuilder(TICKETS, record_numbers(rows))
    if "number" in rows:
        build.text("ticket_id", rows["number"])
    if "opened_at" in rows:
        build.timestamps("opened_at", rows["opened_at"], fmt)
    build.joined_text("text", [rows[c] for c in TABLE_TEXT if c in rows])
    for column, feature in INCIDENT_FIELDS.items():
        if column in rows:
            build.text(feature, rows[column])
    return build.build()


# change_request field -> canonical column; `type` holds standard / normal / emergency.
CHANGE_FIELDS = {
    "cmdb_ci": "ci",
    "business_service": "service",
    "type": "change_type",
    "assignment_group": "assignment_group",
}
CHANGE_TIMES = {"opened_at": "opened_at", "start_date": "planned_start", "end_date": "planned_end"}


def change_requests_to_canonical(
    rows: pd.DataFrame, fmt: str | None = None, numeric: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Map change requests (ServiceNow field names, values as text) onto the canonical changes
    table; `numeric` names the measures a change source adds (size, lines added, ...)."""
    build = CanonicalBuilder(CHANGES, record_numbers(rows))
    if "number" in rows:
        build.text("change_id", rows["number"])
    for column, canonical in CHANGE_TIMES.items():
        if column in rows:
            build.timestamps(canonical, rows[column], fmt)
    for column, canonical in CHANGE_FIELDS.items():
        if column in rows:
            build.text(canonical, rows[column])
    for column in numeric:
        if column in rows:
            build.numbers(column, rows[column])
    return build.build()
