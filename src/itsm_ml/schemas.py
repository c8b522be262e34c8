"""The canonical tables: one per kind of record, whatever the source.

Naming carries the leakage boundary: a column starting with ``label_`` holds a value known
only when the record closed (a training target, never a feature). Every other column holds
what was known when the ticket was opened or the change was requested.

Columns starting with ``_`` are ingest metadata (the source row, raw text that failed to
parse, values that disagree between the events of one case); validation reads them and drops
them from the validated table.
"""

from __future__ import annotations

from dataclasses import dataclass

STRING = "string"
DATETIME = "datetime64[ns]"
FLOAT = "float64"
INT = "Int64"
BOOL = "boolean"

LABEL_PREFIX = "label_"
UNPARSED_PREFIX = "_unparsed_"
CONFLICT_PREFIX = "_conflicting_"
SOURCE_ROW = "_source_row"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str
    core: bool = False  # present in every table of its kind (possibly all null)
    non_negative: bool = False  # a count or a size: below zero is an error of the export
    # What fixed a ticket and what it links to: shown with similar tickets, never a class to
    # learn (an id per problem, free text); `prose` holds sentences, as long as ticket text.
    reference: bool = False
    prose: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    id_column: str
    time_column: str
    text_column: str | None
    columns: tuple[Column, ...]

    def dtype_of(self, column: str) -> str | None:
        return next((c.dtype for c in self.columns if c.name == column), None)

    @property
    def core_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.core)

    @property
    def non_negative_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.non_negative)

    @property
    def reference_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.reference)

    @property
    def prose_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.prose)


def unparsed_column(column: str) -> str:
    """Name of the metadata column holding the raw text of `column` where it failed to parse."""
    return f"{UNPARSED_PREFIX}{column}"


def conflict_column(column: str) -> str:
    """Name of the metadata column holding the distinct values `column` takes across the
    events of one case, where it should take one (an event log's open time); NA elsewhere."""
    return f"{CONFLICT_PREFIX}{column}"


def is_label(column: str) -> bool:
    return column.startswith(LABEL_PREFIX)


def is_metadata(column: str) -> bool:
    return column.startswith("_")


_TICKET_COLUMNS = (
    Column("ticket_id", STRING, "Unique id of the ticket (ServiceNow `number`).", core=True),
    Column(
        "opened_at",
        DATETIME,
        "When the ticket was opened; null for sources without time.",
        core=True,
    ),
    Column("closed_at", DATETIME, "When the ticket was closed.", core=True),
    Column("resolved_at", DATETIME, "When the ticket was resolved."),
    Column(
        "text", STRING, "Free text known at open: the text columns joined by newlines.", core=True
    ),
    Column("caller", STRING, "Who reported the ticket."),
    Column("opened_by", STRING, "Who opened the record."),
    Column("channel", STRING, "How the ticket came in (phone, email, self-service, ...)."),
    Column("location", STRING, "Location of the caller or the affected site."),
    Column("ci", STRING, "Configuration item affected, at open."),
    Column("service", STRING, "Business service affected, at open."),
    Column("category", STRING, "Category set at open."),
    Column("subcategory", STRING, "Subcategory set at open."),
    Column("symptom", STRING, "Symptom set at open."),
    Column("impact", STRING, "Impact set at open."),
    Column("urgency", STRING, "Urgency set at open."),
    Column("priority", STRING, "Priority set at open."),
    Column("assignment_group", STRING, "Assignment group set at open."),
    Column(
        "label_assignment_group",
        STRING,
        "Group that held the ticket when it closed (routing target).",
    ),
    Column("label_category", STRING, "Final category."),
    Column("label_subcategory", STRING, "Final subcategory."),
    Column("label_priority", STRING, "Final priority."),
    Column("label_impact", STRING, "Final impact."),
    Column("label_urgency", STRING, "Final urgency."),
    Column("label_ticket_type", STRING, "Final ticket type (incident, request, ...)."),
    Column("label_closed_code", STRING, "Close code."),
    Column(
        "label_resolution_notes",
        STRING,
        "Resolution (close) notes written when the ticket was resolved: what fixed it.",
        reference=True,
        prose=True,
    ),
    Column(
        "label_knowledge",
        STRING,
        "Knowledge article used to resolve: its id, or true/false where the export only says"
        " whether one was used (ServiceNow's `knowledge`).",
        reference=True,
    ),
    Column("label_problem_id", STRING, "Problem record the ticket was linked to.", reference=True),
    Column("label_rfc", STRING, "Change request (RFC) linked to the ticket.", reference=True),
    Column(
        "label_parent_incident",
        STRING,
        "Parent (major) incident the ticket was attached to: the incidents of one outage share"
        " it, and mark the windows an early-warning detector is judged on.",
        reference=True,
    ),
    Column(
        "label_duplicate_of",
        STRING,
        "Id of the earlier ticket this one duplicates.",
        reference=True,
    ),
    Column("label_made_sla", BOOL, "Whether the ticket met its SLA."),
    Column("label_reassignment_count", INT, "Times the ticket changed group.", non_negative=True),
    Column("label_reopen_count", INT, "Times the ticket was reopened.", non_negative=True),
)

_CHANGE_COLUMNS = (
    Column(
        "change_id", STRING, "Unique id of the change (request number or commit id).", core=True
    ),
    Column("opened_at", DATETIME, "When the change was requested (or committed).", core=True),
    Column("planned_start", DATETIME, "Planned start of the implementation window."),
    Column("planned_end", DATETIME, "Planned end of the implementation window."),
    Column("closed_at", DATETIME, "When the change was closed."),
    Column("ci", STRING, "Configuration item changed."),
    Column("service", STRING, "Business service changed."),
    Column("change_type", STRING, "standard, normal or emergency."),
    Column("assignment_group", STRING, "Group implementing the change."),
    Column("size", FLOAT, "Size of the change (tasks, lines or CIs touched).", non_negative=True),
    Column(
        "label_failed", BOOL, "Whether the change failed or caused a defect/incident.", core=True
    ),
)

# Fixes made outside the service desk (a chat assistant, self-service, a walk-up): what
# problem management would otherwise never see. Logged once solved, so nothing is "at close".
_MICRO_RECORD_COLUMNS = (
    Column("record_id", STRING, "Unique id of the micro-record.", core=True),
    Column("opened_at", DATETIME, "When the issue was met (or the fix logged).", core=True),
    Column("text", STRING, "The symptom, in the employee's or the assistant's words.", core=True),
    Column("caller", STRING, "Who met it, pseudonymous (the same pseudonym as in tickets)."),
    Column("channel", STRING, "Where it was fixed (chat assistant, self-service, walk-up)."),
    Column("service", STRING, "Business service affected."),
    Column("ci", STRING, "Configuration item affected."),
    Column("category", STRING, "Category, where the channel sets one."),
    Column(
        "label_resolution_notes",
        STRING,
        "What fixed it (the ticket column of the same meaning, so both group alike).",
        reference=True,
        prose=True,
    ),
    Column("minutes_lost", FLOAT, "Minutes of work the issue cost.", non_negative=True),
)

TICKETS = TableSchema(
    name="tickets",
    id_column="ticket_id",
    time_column="opened_at",
    text_column="text",
    columns=_TICKET_COLUMNS,
)

CHANGES = TableSchema(
    name="changes",
    id_column="change_id",
    time_column="opened_at",
    text_column=None,
    columns=_CHANGE_COLUMNS,
)

MICRO_RECORDS = TableSchema(
    name="micro_records",
    id_column="record_id",
    time_column="opened_at",
    text_column="text",
    columns=_MICRO_RECORD_COLUMNS,
)

SCHEMAS: dict[str, TableSchema] = {s.name: s for s in (TICKETS, CHANGES, MICRO_RECORDS)}
TABLES = tuple(SCHEMAS)


def schema_for(table: str) -> TableSchema:
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; known: {sorted(SCHEMAS)}") from None
