"""Typed models of params.yaml, validated once at the edge.

Each source kind has its own model; ``kind`` selects it, so a new file of a known kind
needs only a change of params.yaml, never of code.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from itsm_ml.errors import ConfigError

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel, frozen=True, extra="forbid"):
    # Params travel inside pickled models and drift profiles, whose bytes DVC hashes into
    # dvc.lock: pydantic pickles the set of fields given, in an order that changes with each
    # process's hash seed, so the same model would hash differently on every run.
    def __getstate__(self) -> dict[Any, Any]:
        state = dict(super().__getstate__())
        state["__pydantic_fields_set__"] = sorted(state.get("__pydantic_fields_set__", ()))
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        fields = set(state.get("__pydantic_fields_set__", ()))
        super().__setstate__({**state, "__pydantic_fields_set__": fields})


class CsvFileSource(_Strict):
    path: str = Field(description="Path of the export; may use $ITSM_ML_DATASETS and ~.")
    encoding: str = "utf-8"
    delimiter: str = ","
    missing_values: tuple[str, ...] = ("",)

    def resolved_path(self, root: Path | None = None) -> Path:
        return resolve_path(self.path, root)


class ServiceNowTableSource(CsvFileSource):
    """Plain table export: one row per incident, holding its state at export time."""

    kind: Literal["servicenow_table"]
    date_format: str = "%Y-%m-%d %H:%M:%S"


def _check_names(mapping: dict[str, str]) -> dict[str, str]:
    bad = [name for name in mapping if not _IDENTIFIER.match(name)]
    if bad:
        raise ValueError(f"canonical names must be lower_snake_case identifiers, got {bad}")
    return mapping


class TicketCsvSource(CsvFileSource):
    """Any ticket CSV, mapped column by column onto the canonical tickets table."""

    kind: Literal["ticket_csv"]
    id: str | None = Field(None, description="Id column; none: ids are made from the row number.")
    opened_at: str | None = None
    closed_at: str | None = None
    date_format: str | None = Field(None, description="strftime format; none: ISO 8601.")
    text: tuple[str, ...] = ()
    features: dict[str, str] = Field(default_factory=dict, description="canonical name: column")
    labels: dict[str, str] = Field(
        default_factory=dict, description="name (without label_): column"
    )

    _names = field_validator("features", "labels")(_check_names)

    def mapped_columns(self) -> list[str]:
        """Every column of the file that the mapping names."""
        named = [self.id, self.opened_at, self.closed_at, *self.text]
        return [c for c in named if c] + [*self.features.values(), *self.labels.values()]

    @model_validator(mode="after")
    def _needs_a_label_or_text(self) -> TicketCsvSource:
        if not self.labels and not self.text:
            raise ValueError("a ticket mapping needs at least one text or label column")
        return self


class EventLogFields(CsvFileSource):
    """The mapping of an event log (one row per update of a case), shared by the generic
    `event_log` kind and its presets: features come from a case's first event, the state when
    it was opened, and labels from its last event, its final state."""

    case_id: str = Field(description="Column holding the case (ticket) id.")
    order: tuple[str, ...] = Field(
        min_length=1,
        description="Columns ordering the events of a case (numbers, timestamps or text); "
        "the record number in the file breaks ties.",
    )
    date_format: str | None = Field(None, description="strftime format; none: ISO 8601.")
    opened_at: str | None = Field(None, description="Column read from the first event.")
    closed_at: str | None = Field(None, description="Column read from the last event.")
    resolved_at: str | None = Field(None, description="Column read from the last event.")
    text: tuple[str, ...] = Field((), description="Columns joined as text, from the first event.")
    at_open: dict[str, str] = Field(
        default_factory=dict, description="canonical name: column, from the first event"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="name (with or without label_): column, from the last"
    )

    _names = field_validator("at_open", "labels")(_check_names)

    @field_validator("at_open")
    @classmethod
    def _no_label_at_open(cls, at_open: dict[str, str]) -> dict[str, str]:
        # `label_` marks what is known only at close; a feature under that name would leak.
        bad = [name for name in at_open if name.startswith("label_")]
        if bad:
            raise ValueError(f"at_open names a label {bad}: map it under `labels`")
        return at_open

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, labels: dict[str, str]) -> dict[str, str]:
        named = [n if n.startswith("label_") else "label_" + n for n in labels]
        twice = sorted({n for n in named if named.count(n) > 1})
        if twice:
            raise ValueError(f"labels map {twice} twice (with and without the label_ prefix)")
        return labels

    def mapped_columns(self) -> list[str]:
        """Every column of the file that the mapping names, each once, in mapping order."""
        named = [self.case_id, *self.order, self.opened_at, self.closed_at, self.resolved_at]
        named += [*self.text, *self.at_open.values(), *self.labels.values()]
        return list(dict.fromkeys(c for c in named if c))

    def optional_columns(self) -> set[str]:
        """Mapped columns read where the file has them and left out where it does not."""
        return set()

    @model_validator(mode="after")
    def _needs_a_label_or_text(self) -> EventLogFields:
        if not self.labels and not self.text:
            raise ValueError("an event log mapping needs at least one text or label column")
        return self


class EventLogSource(EventLogFields):
    """Any event log (one row per update of a case), mapped column by column."""

    kind: Literal["event_log"]


# The UCI incident event log's mapping, the defaults of the ServiceNow preset.
SERVICENOW_AUDIT_AT_OPEN = {
    "caller": "caller_id",
    "opened_by": "opened_by",
    "channel": "contact_type",
    "location": "location",
    "ci": "cmdb_ci",
    "category": "category",
    "subcategory": "subcategory",
    "symptom": "u_symptom",
    "impact": "impact",
    "urgency": "urgency",
    "priority": "priority",
    "assignment_group": "assignment_group",
}
SERVICENOW_AUDIT_LABELS = {
    "assignment_group": "assignment_group",
    "category": "category",
    "subcategory": "subcategory",
    "priority": "priority",
    "impact": "impact",
    "urgency": "urgency",
    "closed_code": "closed_code",
    "knowledge": "knowledge",
    "problem_id": "problem_id",
    "rfc": "rfc",
    "made_sla": "made_sla",
    "reassignment_count": "reassignment_count",
    "reopen_count": "reopen_count",
}

# Preset columns read where the audit log has them.
SERVICENOW_AUDIT_OPTIONAL = ("knowledge", "problem_id", "rfc")


class ServiceNowAuditLogSource(EventLogFields):
    """ServiceNow audit log: one row per update of an incident (like the UCI incident event
    log); an event log whose mapping defaults to ServiceNow's fields, each one overridable."""

    kind: Literal["servicenow_audit_log"]
    date_format: str | None = "%d/%m/%Y %H:%M"
    missing_values: tuple[str, ...] = ("?", "")
    case_id: str = "number"
    # sys_mod_count counts the updates; sys_updated_at orders updates that share a count.
    order: tuple[str, ...] = Field(("sys_mod_count", "sys_updated_at"), min_length=1)
    opened_at: str | None = "opened_at"
    closed_at: str | None = "closed_at"
    resolved_at: str | None = "resolved_at"
    at_open: dict[str, str] = Field(default_factory=lambda: dict(SERVICENOW_AUDIT_AT_OPEN))
    labels: dict[str, str] = Field(default_factory=lambda: dict(SERVICENOW_AUDIT_LABELS))

    def optional_columns(self) -> set[str]:
        # Resolution links are not in every audit log (a report's column selection): read
        # them where the export has them, rather than refuse an export that has the rest.
        return set(SERVICENOW_AUDIT_OPTIONAL) & set(self.labels.values())


class ChangeCsvSource(CsvFileSource):
    """Any change CSV, mapped column by column onto the canonical changes table."""

    kind: Literal["change_csv"]
    id: str | None = None
    opened_at: str
    time_format: str = Field("ISO8601", description="'unix' (seconds), 'ISO8601' or strftime.")
    planned_start: str | None = None
    planned_end: str | None = None
    closed_at: str | None = None
    numeric: dict[str, str] = Field(default_factory=dict, description="canonical name: column")
    categorical: dict[str, str] = Field(default_factory=dict, description="canonical name: column")
    outcome: str = Field(description="Column saying whether the change failed.")
    outcome_true_values: tuple[str, ...] = ("1", "true", "True", "TRUE", "yes", "failed")
    outcome_false_values: tuple[str, ...] = ("0", "false", "False", "FALSE", "no", "successful")

    _names = field_validator("numeric", "categorical")(_check_names)

    def mapped_columns(self) -> list[str]:
        """Every column of the file that the mapping names."""
        times = [self.opened_at, self.planned_start, self.planned_end, self.closed_at]
        named = [self.id, *times, self.outcome]
        return [c for c in named if c] + [*self.numeric.values(), *self.categorical.values()]


# Dates and times as YAML hands them over. params.yaml is read by PyYAML (YAML 1.1), but
# `dvc exp run -S key=value` rewrites the whole file with ruamel (YAML 1.2), which drops the
# quotes around "18:00": YAML 1.1 then reads it as the base-60 integer 1080 (18 * 60) and
# "18:00:00" as 64800 seconds ("08:00" stays a string: base 60 needs a leading 1-9). Quoted
# dates keep their quotes; unquoted ones arrive as `date` or `datetime`. Pydantic alone would
# read an integer as seconds since midnight in UTC (or a Unix timestamp), silently wrong, so
# these validators take over before it. tests/unit/test_config.py replays DVC's rewrite.
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_ZONE = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$")
_EXPECTED_TIME = 'expected a time of day such as "18:00"'
_EXPECTED_LOCAL_TIME = 'expected a time of day without a time zone, such as "18:00"'
_EXPECTED_DATE = 'expected a date such as "2025-01-01"'
_EXPECTED_WHOLE_DAY = 'expected a date such as "2025-01-01" (a whole day, no time)'
_EXPECTED_DATETIME = 'expected a date or date and time such as "2025-12-19" or "2025-12-19 08:00"'
_EXPECTED_LOCAL_DATETIME = (
    'expected a date or date and time without a time zone, such as "2025-12-19 08:00"'
)


def _expected(what: str, value: object) -> PydanticCustomError:
    """A message that reads `<key>: expected ..., got ...` once `_format_errors` adds the key."""
    return PydanticCustomError("params_value", "{message}", {"message": f"{what}, got {value!r}"})


def _time_of_day(value: Any) -> Any:
    """A naive time of day from "HH:MM[:SS]", or from the integer YAML 1.1 makes of it."""
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise _expected(_EXPECTED_LOCAL_TIME, value.isoformat())
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # Unquoted H:MM with H >= 1 is 60..1439 minutes; H:MM:SS is 3600..86399 seconds.
        if 60 <= value < 24 * 60:
            return time(value // 60, value % 60)
        if 3600 <= value < 24 * 3600:
            return time(value // 3600, value // 60 % 60, value % 60)
    elif isinstance(value, str):
        text = value.strip()
        if (match := _CLOCK.match(text)) is not None:
            hour, minute, second = (int(part or 0) for part in match.groups())
            if hour < 24 and minute < 60 and second < 60:
                return time(hour, minute, second)
        elif _CLOCK.match(_ZONE.sub("", text)) is not None:
            raise _expected(_EXPECTED_LOCAL_TIME, value)
    raise _expected(_EXPECTED_TIME, value)


def _naive_datetime(value: Any) -> Any:
    """A naive datetime from a date (its midnight), a datetime or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _expected(_EXPECTED_DATETIME, value) from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise _expected(_EXPECTED_LOCAL_DATETIME, value.isoformat(" "))
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    raise _expected(_EXPECTED_DATETIME, value)


def _calendar_date(value: Any) -> Any:
    """A date from a date, an ISO 8601 string or a naive datetime at midnight (a whole day)."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise _expected(_EXPECTED_DATE, value) from None
    if isinstance(value, datetime):
        if value.tzinfo is None and value.time() == time():
            return value.date()
        raise _expected(_EXPECTED_WHOLE_DAY, value.isoformat(" "))
    if isinstance(value, date):
        return value
    raise _expected(_EXPECTED_DATE, value)


def _optional_calendar_date(value: Any) -> Any:
    return None if value is None else _calendar_date(value)


class DriftKnobs(_Strict):
    """Changes injected after a date, so drift detection has something real to find."""

    after: date | None = Field(None, description="No drift when unset.")
    category_shift: float = Field(0.5, ge=0, le=1, description="Weight of the shifted mix.")
    new_vocabulary: float = Field(0.3, ge=0, le=1, description="Share of texts using new words.")
    new_groups: int = Field(2, ge=0, le=10, description="Groups that appear and take work.")

    _after = field_validator("after", mode="before")(_optional_calendar_date)


class MetricsCsvSource(CsvFileSource):
    """Time series as monitoring tools export them: one row per point (a timestamp, a value,
    and the column or columns that name the series: a host, a service, a metric)."""

    kind: Literal["metrics_csv"]
    timestamp: str = "timestamp"
    value: str = "value"
    series: tuple[str, ...] = Field(
        (),
        description="Columns naming the series, joined with '/'; none: one series named"
        " after the file.",
    )
    time_format: str = Field("ISO8601", description="'unix' (seconds), 'ISO8601' or strftime.")
    duplicates: Literal["error", "mean", "last"] = Field(
        "mean",
        description="Points of one series at the same time (an hour repeated when clocks go"
        " back, a scraper that retried): refuse them, average them or keep the last.",
    )
    gap_factor: float = Field(
        3.0, gt=1, description="An interval this many times the series' usual one is a gap."
    )
    max_invalid_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of points whose time or value does not parse that is dropped with a"
        " warning; above it the source is refused.",
    )


class SurgeKnobs(_Strict):
    """Bursts of incidents on one service (a failing CI: many callers, one fault), so early
    warning on incident volume has outages to find. Surges are placed at even shares of the
    date range; `itsm_ml.data.sources.generator.surges` lists where they are."""

    count: int = Field(0, ge=0, le=200, description="No surges when 0.")
    tickets: PositiveInt = Field(30, le=10_000, description="Extra incidents in each surge.")
    hours: float = Field(3.0, gt=0, le=72, description="How long a surge lasts.")


def _start_before_end(source: Any) -> Any:
    if source.end <= source.start:
        raise ValueError(f"end ({source.end}) must be after start ({source.start})")
    return source


class GeneratorSource(_Strict):
    """Built-in generator of ServiceNow-shaped incidents and change requests."""

    kind: Literal["generator"]
    seed: int = 0
    rows: PositiveInt = 20_000
    start: date = date(2025, 1, 1)
    end: date = date(2025, 12, 31)
    drift: DriftKnobs = DriftKnobs()
    surges: SurgeKnobs = SurgeKnobs()

    _dates = field_validator("start", "end", mode="before")(_calendar_date)

    _ordered = model_validator(mode="after")(_start_before_end)


TicketSource = Annotated[
    ServiceNowAuditLogSource
    | ServiceNowTableSource
    | TicketCsvSource
    | EventLogSource
    | GeneratorSource,
    Field(discriminator="kind"),
]
ChangeSource = Annotated[ChangeCsvSource | GeneratorSource, Field(discriminator="kind")]


class MicroRecordsFileSource(CsvFileSource):
    """A CSV or JSON-lines export of fixes made outside the desk (a chat assistant's log,
    a self-service portal's). Each field names the export's column; the defaults are the
    names `POST /v1/micro-records` takes, so its log and an export using them need no
    mapping."""

    kind: Literal["assistant_export"]
    format: Literal["auto", "csv", "jsonl"] = Field(
        "auto", description="auto: JSON lines for .jsonl/.ndjson (optionally .gz), else CSV."
    )
    id: str | None = Field("id", description="Id column; none: ids from the row number.")
    opened_at: str = "timestamp"
    time_format: str = Field("ISO8601", description="'unix' (seconds), 'ISO8601' or strftime.")
    text: tuple[str, ...] = Field(("symptom",), min_length=1, description="Joined as the text.")
    caller: str | None = "user"
    service: str | None = "service"
    ci: str | None = "ci"
    category: str | None = None
    fix: str | None = "fix"
    minutes_lost: str | None = "minutes_lost"
    channel: str | None = "channel"
    default_channel: str = Field(
        "chat assistant", description="The channel of records whose export names none."
    )

    def mapped_columns(self) -> list[str]:
        """Every column of the file that the mapping names."""
        named = [self.id, self.opened_at, *self.text, self.caller, self.service, self.ci]
        named += [self.category, self.fix, self.minutes_lost, self.channel]
        return [c for c in named if c]


class HiddenIssueKnobs(_Strict):
    """Recurring issues that employees fix with the assistant and never report to the desk:
    each a run of micro-records on one service, in varied words, from different callers.
    `itsm_ml.data.sources.micro_generator.hidden_issues` lists where they are."""

    count: int = Field(4, ge=0, le=50, description="No hidden issue when 0.")
    records: PositiveInt = Field(12, le=1000, description="Micro-records of each issue.")
    days: float = Field(10.0, gt=0, le=90, description="Over how many days they arrive.")


class MicroRecordGeneratorSource(_Strict):
    """Built-in generator of chat-assistant micro-records: how-to questions and self-fixes
    across the ticket generator's services and callers, plus hidden recurring issues."""

    kind: Literal["generator"]
    seed: int = 2
    rows: PositiveInt = 3000
    start: date = date(2025, 1, 1)
    end: date = date(2025, 12, 31)
    hidden: HiddenIssueKnobs = HiddenIssueKnobs()

    _dates = field_validator("start", "end", mode="before")(_calendar_date)

    _ordered = model_validator(mode="after")(_start_before_end)


class NoMicroRecords(_Strict):
    """No micro-records: problem candidates come from tickets alone."""

    kind: Literal["none"]


MicroRecordSource = Annotated[
    MicroRecordsFileSource | MicroRecordGeneratorSource | NoMicroRecords,
    Field(discriminator="kind"),
]


class LabelValidationParams(_Strict):
    """Rules on the label columns of the table's models (`models:`); a label the export
    lacks is not judged here (that model is skipped later, with a note)."""

    min_completeness: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Critical: a label present on a smaller share of all rows stops the table.",
    )
    min_period_completeness: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Critical: a label present on a smaller share of the rows of one period"
        " stops the table. Periods are calendar months when the open times touch 10 months or"
        " more, else tenths of their range; the newest period is exempt (its open tickets have"
        " no final value yet).",
    )
    min_period_rows: PositiveInt = Field(
        20, description="Periods with fewer rows are too small to judge and are not judged."
    )
    newest_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Warning: label values seen only in this newest share of the rows (by open"
        " time), or no longer seen there, are listed.",
    )
    min_count: PositiveInt = Field(
        10,
        description="... when the value holds at least this many of the newest rows, or the"
        " rate it had before predicts at least this many there.",
    )


class ValidationParams(_Strict):
    min_rows: int = Field(1, ge=0, description="Critical: fewer rows stop the table.")
    max_rows: PositiveInt = Field(50_000_000, description="Critical: more rows stop the table.")
    max_quarantine_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Rows breaking row rules go to quarantine; above this share the table stops.",
    )
    max_text_chars: PositiveInt = Field(
        100_000, description="Row rule: longer text (the text column) is quarantined."
    )
    max_field_chars: PositiveInt = Field(
        4_000,
        description="Row rule: a longer value in any other text column (ids, codes, names) is"
        " quarantined.",
    )
    non_negative: tuple[str, ...] = Field(
        (),
        description="Row rule: columns (mapped numbers) where a value below zero is quarantined,"
        " beside the counts and sizes the canonical schema marks.",
    )
    formulas: Literal["escape", "quarantine"] = Field(
        "escape",
        description="Text cells a spreadsheet would run (starting =, @, tab, CR, or + or -"
        " followed by more than a number): escape them with a leading ' in the validated"
        " table (counted, a warning), or quarantine their rows (a row rule).",
    )
    labels: LabelValidationParams = Field(
        LabelValidationParams(),
        description="Completeness and appearance of the labels of the table's models.",
    )
    vocabularies: dict[str, tuple[str, ...]] | None = Field(
        None,
        description="column: allowed values (labels and features); none: the source's preset"
        " (ServiceNow's choice lists for its exports and the generator, nothing for others)",
    )


class TicketsParams(_Strict):
    source: TicketSource
    validation: ValidationParams = ValidationParams()


class ChangesParams(_Strict):
    source: ChangeSource
    validation: ValidationParams = ValidationParams()


class MicroRecordsParams(_Strict):
    source: MicroRecordSource = NoMicroRecords(kind="none")
    validation: ValidationParams = ValidationParams(min_rows=0)


class SplitParams(_Strict):
    valid_share: float = Field(0.15, gt=0, lt=1)
    test_share: float = Field(0.15, gt=0, lt=1)
    seed: int = 0
    stratify: dict[str, str] = Field(
        default_factory=dict,
        description="table: column to stratify on when the table has no time; default: the"
        " label of the table's first model in the catalog",
    )

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitParams:
        if self.valid_share + self.test_share >= 0.9:
            raise ValueError("valid_share + test_share must leave at least 10% for training")
        return self


class ModelSpec(_Strict):
    """One entry of the catalog (`models:`): what to predict, from which table."""

    table: Literal["tickets", "changes"] = Field(
        description="The canonical table the model learns from and scores."
    )
    kind: Literal["multiclass", "binary", "similarity", "detector", "recurrence"] = Field(
        description="What it predicts: one of many classes, yes/no, or (tickets only) the"
        " most similar earlier tickets and the resolution they suggest for `label`, or"
        " surges of incident volume (`detector`: `label` links the incidents of one outage,"
        " such as parent_incident; settings under `early_warning.volume`), or recurring"
        " issues raised as problem candidates (`recurrence`: `label` links incidents to a"
        " problem, such as problem_id; settings under `problems`)."
    )
    label: str = Field(
        min_length=1,
        description="The label column, with or without its `label_` prefix (its value at close).",
    )
    registered_model: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Name in the MLflow registry; none: `<project>-<model name>`.",
    )
    metric: str | None = Field(
        None,
        description="Primary metric of evaluation and the gate; none: accuracy for tickets,"
        " auc for changes.",
    )
    features: tuple[str, ...] | None = Field(
        None,
        description="Columns the model may use; none: every column the source maps except"
        " ids, times and labels.",
    )
    at_open: str | None = Field(
        None,
        description="Column holding the label's value as set at open (the keep-at-open"
        " baseline); none: the column named like the label, when the table has it.",
    )
    owner: str | None = Field(
        None,
        min_length=1,
        description="Who answers for the model (a team); stated on its card. None: the card"
        " says no owner is declared.",
    )
    intended_use: str | None = Field(
        None,
        min_length=1,
        description="What the model is for, in a sentence or two, on its card; none: its"
        " family's (triage: suggest at open, set only where the target precision holds;"
        " change risk: focus review, not approve).",
    )
    limits: tuple[str, ...] | None = Field(
        None,
        description="Known limits stated on its card, before those the evaluation finds;"
        " none: its family's; [] for none.",
    )

    @field_validator("features")
    @classmethod
    def _no_labels_as_features(cls, features: tuple[str, ...] | None) -> tuple[str, ...] | None:
        leaked = [f for f in features or () if f.startswith("label_")]
        if leaked:
            raise ValueError(
                f"label columns are known only at close and cannot be features: {leaked}"
            )
        return features


def _default_models() -> dict[str, ModelSpec]:
    return {
        "routing": ModelSpec(table="tickets", kind="multiclass", label="assignment_group"),
        "category": ModelSpec(table="tickets", kind="multiclass", label="category"),
        "priority": ModelSpec(table="tickets", kind="multiclass", label="priority"),
        "change-risk": ModelSpec(table="changes", kind="binary", label="failed"),
    }


class KnowledgeParams(_Strict):
    """Settings of every `similarity` model (knowledge retrieval): how tickets are compared,
    what an answer returns, and which runbook a resolution points to."""

    methods: tuple[Literal["bm25", "dense", "fusion", "fields", "fusion_fields"], ...] = Field(
        ("bm25", "dense", "fusion", "fields", "fusion_fields"),
        min_length=1,
        description="Retrieval methods tried; the one whose validation neighbours are most"
        " relevant is kept (linked duplicates where the export has them, else neighbours"
        " sharing the resolution).",
    )
    boost: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Grouping field: weight added to a neighbour's score (in standard"
        " deviations of the query's scores) when it shares the ticket's value.",
    )
    filter: tuple[str, ...] = Field(
        (),
        description="Grouping fields a neighbour must share with the ticket (where the"
        " ticket has a value).",
    )
    k: PositiveInt = Field(5, description="Neighbours returned per ticket.")
    returned: tuple[str, ...] = Field(
        (
            "label_resolution_notes",
            "label_knowledge",
            "label_problem_id",
            "label_rfc",
            "label_category",
            "label_assignment_group",
        ),
        description="Columns returned with each neighbour, besides its id, open time and the"
        " model's label (the ones the export has).",
    )
    max_query_terms: PositiveInt = Field(
        64, description="A long ticket queries with its most telling terms only."
    )
    exact_up_to: PositiveInt = Field(
        100_000,
        description="Indexes up to this many tickets score every ticket for every query;"
        " larger ones score the candidates each method proposes (faiss for dense vectors).",
    )
    candidates: PositiveInt = Field(
        500, description="Candidates each method proposes per query on a larger index."
    )
    engine: Literal["memory", "postgres"] = Field(
        "memory",
        description="Where the served index lives: in the model (memory), or in PostgreSQL"
        " with pgvector (postgres: text rank and dense vectors computed by the engine).",
    )
    postgres_dsn_env: str = Field(
        "ITSM_ML_KNOWLEDGE_DSN",
        description="Environment variable holding the PostgreSQL connection string.",
    )
    postgres_table: str = Field(
        "itsm_ml_tickets",
        pattern=r"^[a-z_][a-z0-9_]{0,49}$",
        description="Table name prefix; each fit writes `<prefix>_<digest of its tickets>`.",
    )
    runbooks: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Runbook ids by `suggestion` (the suggested resolution) or by a ticket"
        " column (e.g. `category`), then value; the first that matches is named.",
    )

    @field_validator("filter", "returned", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class TriageModelParams(_Strict):
    min_category_count: PositiveInt = Field(20, description="Rarer values are bucketed.")
    text_c: tuple[Annotated[float, Field(gt=0)], ...] = Field(
        (0.3, 1.0),
        min_length=1,
        description="Regularisation (C) of the linear SVM: each is tried, the best on"
        " validation kept (one number: only that).",
    )

    @field_validator("text_c", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | float) else value

    categorical_weight: float = Field(
        0.5, ge=0, description="Weight of one-hot fields beside text."
    )
    class_weight_power: float = Field(
        0.5, ge=0, description="Class weight (largest / own size) ** power; 0: unweighted."
    )
    n_estimators: PositiveInt = 300
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: PositiveInt = 20
    early_stopping_rounds: PositiveInt = Field(
        30, description="Rounds without a better validation error before the booster stops."
    )
    min_boosting_rounds: PositiveInt = Field(
        50, description="The booster never stops before this many rounds."
    )
    logistic_c: float = Field(1.0, gt=0, description="Regularisation (C) of the logistic model.")
    candidates: tuple[Literal["text", "logistic", "booster", "blend"], ...] = Field(
        ("text", "logistic", "booster", "blend"),
        min_length=1,
        description="Models tried; the best on the validation split is kept (text needs text;"
        " blend averages the others).",
    )


class TriageParams(_Strict):
    target_precision: float = Field(0.9, gt=0, le=1)
    threshold_z: float = Field(
        1.0, ge=0, description="Confidence margin of the precision thresholds (Wilson z)."
    )
    min_class_support: PositiveInt = 30
    top_k: PositiveInt = 3
    n_jobs: PositiveInt | None = Field(None, description="Threads; none: the number of cores.")
    seed: int = 0
    text_column: str = "text"
    model: TriageModelParams = TriageModelParams()

    @property
    def threads(self) -> int:
        return self.n_jobs or os.cpu_count() or 1


class BandTarget(_Strict):
    """Where a risk band starts: by recall (share of failures caught at or above it) or by
    precision (share of failures among the changes at or above it)."""

    recall: float | None = Field(None, gt=0, le=1)
    precision: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> BandTarget:
        if (self.recall is None) == (self.precision is None):
            raise ValueError("give a band exactly one of `recall` or `precision`")
        return self

    def as_target(self) -> tuple[str, float]:
        """("recall", r) or ("precision", p), as ChangeRiskModel takes it."""
        if self.recall is not None:
            return ("recall", self.recall)
        return ("precision", float(self.precision))  # type: ignore[arg-type]


def _default_bands() -> dict[str, BandTarget]:
    return {
        "very high": BandTarget(recall=0.25),
        "high": BandTarget(recall=0.5),
        "medium": BandTarget(recall=0.8),
    }


Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class BusinessHours(_Strict):
    days: tuple[Weekday, ...] = _WEEKDAYS[:5]
    start: time = time(8, 0)
    end: time = time(18, 0)

    _times = field_validator("start", "end", mode="before")(_time_of_day)

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError(f"business hours end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def weekdays(self) -> tuple[int, ...]:
        """Monday = 0, as pandas counts."""
        return tuple(_WEEKDAYS.index(day) for day in self.days)


class BlackoutWindow(_Strict):
    name: str = Field(min_length=1)
    start: datetime
    end: datetime = Field(description="Exclusive: a date alone means its midnight.")

    _times = field_validator("start", "end", mode="before")(_naive_datetime)

    @model_validator(mode="after")
    def _ordered(self) -> BlackoutWindow:
        if self.end <= self.start:
            raise ValueError(f"blackout {self.name!r}: end {self.end} is not after start")
        return self


class ConflictParams(_Strict):
    business_hours: BusinessHours = BusinessHours()
    blackout_windows: tuple[BlackoutWindow, ...] = ()
    keys: tuple[str, ...] = Field(
        ("ci", "service"), description="Planned windows overlapping on the same value conflict."
    )


class HistoryParams(_Strict):
    keys: tuple[str, ...] = Field(
        ("assignment_group", "ci", "service"), description="Track records are kept per key."
    )
    delay_days: float = Field(
        30.0, ge=0, description="How long after a change its outcome becomes known."
    )
    window_days: float = Field(180.0, gt=0, description="Outcomes older than this are forgotten.")
    volume_days: float = Field(30.0, gt=0, description="Span of the recent-volume count.")
    prior_weight: float = Field(
        10.0, ge=0, description="Known changes' worth of shrinkage towards the overall rate."
    )


class ChangeRiskModelParams(_Strict):
    min_category_count: PositiveInt = Field(20, description="Rarer values are bucketed.")
    n_estimators: PositiveInt = 600
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: PositiveInt = 50
    early_stopping_rounds: PositiveInt = 60
    refit_factor: float = Field(
        1.25, ge=0, description="Refit on train + valid with this many times the rounds; 0: no."
    )


class ChangeRiskParams(_Strict):
    size_column: str = Field(
        "size", description="Its value alone is a baseline: bigger changes fail more (la)."
    )
    history: HistoryParams = HistoryParams()
    conflicts: ConflictParams = ConflictParams()
    bands: dict[str, BandTarget] = Field(
        default_factory=_default_bands,
        description="From the highest band down; below the last one a change is 'low'.",
    )
    top_reasons: PositiveInt = 3
    n_jobs: PositiveInt | None = Field(None, description="Threads; none: the number of cores.")
    seed: int = 0
    model: ChangeRiskModelParams = ChangeRiskModelParams()

    @field_validator("bands")
    @classmethod
    def _named_bands(cls, bands: dict[str, BandTarget]) -> dict[str, BandTarget]:
        if not bands:
            raise ValueError("give at least one band above 'low'")
        if "low" in bands:
            raise ValueError("'low' is the band below all others; do not define it")
        return bands

    @property
    def threads(self) -> int:
        return self.n_jobs or os.cpu_count() or 1


class DriftThresholds(_Strict):
    """When a feature has drifted: an effect large enough to matter (the floors) that is also
    `z` standard errors beyond what a window of that size shows with no drift at all.
    Calibrated on clean and injected windows of the real datasets (`make bench`)."""

    z: float = Field(
        3.7, gt=0, description="Standard errors beyond no-drift noise (PSI, shares, missing)."
    )
    psi: float = Field(
        0.2, gt=0, description="Population stability index of a categorical feature that counts."
    )
    numeric_psi: float = Field(
        0.05, gt=0, description="Smallest PSI of a numeric feature (on deciles) that counts."
    )
    rank_shift: float = Field(
        0.03,
        gt=0,
        le=0.5,
        description="Smallest move of a numeric feature's rank AUC away from 0.5 that counts.",
    )
    category_shift: float = Field(
        0.04, gt=0, le=1, description="Smallest change in one category's share that counts."
    )
    new_category_share: float = Field(
        0.03,
        gt=0,
        le=1,
        description="Share of the window in values never seen in reference, above the share"
        " expected with no drift (values seen once in reference: long tails bring new ones).",
    )
    missing_shift: float = Field(
        0.05, gt=0, le=1, description="Smallest change in a missing share that counts."
    )
    text_auc: float = Field(
        0.6, gt=0.5, le=1, description="Domain classifier AUC (reference vs window) on text."
    )
    emerging_term_share: float = Field(
        0.03, gt=0, le=1, description="Share of window texts with a term rare in reference."
    )
    performance_drop: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Realised accuracy (or ROC AUC) this far below the estimate counts (with z).",
    )


class DriftParams(_Strict):
    min_window: PositiveInt = Field(200, description="Below this many rows: no verdict.")
    window_rows: PositiveInt = Field(500, description="Rows per window when windowing by count.")
    window_period: str | None = Field(
        None, description="Pandas offset (e.g. '7D') to window by time instead of by count."
    )
    persistence: PositiveInt = Field(
        2, description="Alert after this many consecutive drifted windows."
    )
    rare_share: float = Field(
        0.01, ge=0, lt=1, description="Reference categories rarer than this are bucketed."
    )
    reference_sample: PositiveInt = Field(
        5000, description="Rows of the reference kept for numeric and text comparisons."
    )
    seed: int = 0
    thresholds: DriftThresholds = DriftThresholds()


class PromotionParams(_Strict):
    margin: float = Field(
        0.005, ge=0, description="How much better the challenger's primary metric must be."
    )
    tolerance: float = Field(
        0.01, ge=0, description="How much worse its other metrics may be than the champion's."
    )
    min_routed: PositiveInt = Field(
        20, description="Auto-routed tickets a class needs on the window to judge its precision."
    )
    block_on_data_drift: bool = Field(
        False,
        description="Refuse a model whose current data drifted from its training data, even"
        " when its realised performance holds (default: a warning, shown and ledgered).",
    )


class WriteBackParams(_Strict):
    url: str | None = Field(
        None, description="Base URL of the ITSM (https://example.service-now.com); None: off."
    )
    table: str = Field("incident", pattern=r"^[a-z_][a-z0-9_]*$")
    user_env: str = Field("ITSM_ML_ITSM_USER", description="Variable holding the API user.")
    password_env: str = Field("ITSM_ML_ITSM_PASSWORD", description="Variable holding its password.")
    timeout_seconds: float = Field(5.0, gt=0)
    max_attempts: PositiveInt = 4


class ServingParams(_Strict):
    poll_seconds: float = Field(
        10.0, gt=0, description="How often the service checks whether a champion alias moved."
    )
    max_body_bytes: PositiveInt = Field(
        8_000_000, description="Larger request bodies are refused with 413."
    )
    max_batch: PositiveInt = Field(5000, description="Records in one batch request.")
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request whose whole body has not arrived this many seconds after its "
        "headers is answered 408 and its connection closed.",
    )
    audit_log: str = Field("reports/audit/scoring.jsonl", description="Append-only audit trail.")
    micro_records_log: str = Field(
        "data/external/micro_records.jsonl",
        description="Where POST /v1/micro-records appends (JSON lines an `assistant_export`"
        " source reads with no mapping).",
    )
    audit_max_bytes: PositiveInt = Field(
        50_000_000, description="Rotate the audit log at this size."
    )
    audit_backups: PositiveInt = Field(20, description="Rotated audit files kept.")
    batch_wait_ms: float = Field(
        2.0,
        ge=0,
        description="Single requests arriving within this many ms are scored together.",
    )
    threads: PositiveInt = Field(
        1,
        description="OpenMP threads per scoring call: with one, the other core parses and "
        "answers requests meanwhile instead of both spinning for the same call.",
    )
    writeback: WriteBackParams = WriteBackParams()


DetectorName = Literal["volume", "surprise", "seasonal"]


def _pandas_frequency(value: str) -> str:
    from pandas.tseries.frequencies import to_offset

    try:
        to_offset(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a pandas frequency (e.g. 1h, 15min, 1D)") from exc
    return value


# A pandas frequency ("1h", "15min", "7D"), checked when params are read.
PandasFrequency = Annotated[str, AfterValidator(_pandas_frequency)]


class VolumeWatchParams(_Strict):
    """Incident volume watched for surges: tickets opened per `frequency` for each value of
    each `by` column of the canonical tickets table."""

    by: tuple[str, ...] = Field(
        ("service",), min_length=1, description="Canonical ticket columns (service, ci, category)."
    )
    frequency: PandasFrequency = Field("1h", description="Bin of the counts (a pandas frequency).")
    min_tickets: PositiveInt = Field(
        50, description="Values with fewer tickets in the history are not watched (named)."
    )
    detector: DetectorName = "volume"


class MetricsWatchParams(_Strict):
    """A metrics export watched for anomalies (`itsm_ml.data.sources.metrics`)."""

    source: MetricsCsvSource
    detector: DetectorName = "surprise"


class EarlyWarningParams(_Strict):
    """What `itsm-ml watch` and the `early-warning` stage watch, and what a warning says."""

    volume: VolumeWatchParams | None = VolumeWatchParams()
    metrics: MetricsWatchParams | None = None
    thresholds: dict[DetectorName, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="Alarm level per detector; unset: the detector's own (surprise and volume"
        " 5, a one-in-100,000 event for the series; seasonal 6, a robust z).",
    )
    close_after: PositiveInt = Field(
        3, description="Points in a row below the threshold that close an open alarm."
    )
    evidence: PositiveInt = Field(24, description="Points before an alarm shown with it.")
    owners: dict[str, str] = Field(
        default_factory=dict,
        description="A series ('service=Email') or the value it counts ('Email') -> owning"
        " group; unset: the group that handled most of that value's tickets.",
    )
    runbooks: dict[str, str] = Field(
        default_factory=dict,
        description="A series, the value it counts, or a signal ('new extreme', 'tickets in"
        " the last 3 hours') -> the runbook recommended; the first match in that order.",
    )
    plots: int = Field(12, ge=0, le=200, description="Series with the most alarms drawn.")
    outage_min_tickets: PositiveInt = Field(
        3,
        description="A detector model's labelled windows: incidents of one value of its"
        " label (a parent incident) on one series, at least this many, span one window.",
    )
    false_alarms_per_day: float = Field(
        1.0,
        gt=0,
        description="Over-alerting budget of a detector model: alarms outside every labelled"
        " window per day, over all its series; a period above it is flagged, and"
        " `drift.persistence` flagged periods in a row alert (and block its promotion).",
    )
    monitor_period: PandasFrequency = Field(
        "7D", description="Period a detector model is monitored by."
    )


class RecurrenceRuleParams(_Strict):
    """When a group of records becomes a problem candidate."""

    min_records: PositiveInt = Field(5, description="Records within the window, at least.")
    min_callers: PositiveInt = Field(3, description="Distinct callers among them, at least.")
    window_days: float = Field(14.0, gt=0, le=365)
    growth: float = Field(
        2.0,
        ge=0,
        description="Records in the window must exceed this times those of the window before"
        " (0: any recurring group, growing or not).",
    )


class ProblemWriteBackParams(_Strict):
    """How `itsm-ml problems --write-back` opens problems in the ITSM (its URL and
    credentials: serving.writeback) and how `--read-decisions` reads them back."""

    table: str = Field("problem", description="The ITSM's problem table.")
    state: str = Field("New", description="State of a problem opened from a candidate.")
    link_field: str = Field(
        "problem_id", description="The incident field that references its problem."
    )
    rejected: tuple[str, ...] = Field(
        ("Canceled", "Duplicate"),
        description="Resolution codes (or states) by which a problem manager rejects a"
        " candidate; any other state than `state` accepts it.",
    )


class ProblemsParams(_Strict):
    """Problem candidates (`itsm-ml problems`, the `problems` stage): tickets and
    micro-records grouped as they arrive, and the groups the recurrence rule raises."""

    threshold: float = Field(
        0.7, gt=0, le=1, description="Similarity to a group's mean that a record needs to join it."
    )
    window_days: float = Field(
        14.0, gt=0, le=365, description="A group not seen for longer is closed."
    )
    same: tuple[str, ...] = Field(
        ("service",),
        description="Fields a record and its group must share (a missing value matches any).",
    )
    fields: tuple[str, ...] = Field(
        ("service", "ci", "category", "subcategory", "symptom"),
        description="Field values compared beside the text.",
    )
    text_weight: float = Field(
        0.7, ge=0, le=1, description="Share of the similarity from text (the rest: fields)."
    )
    rule: RecurrenceRuleParams = RecurrenceRuleParams()
    check_every: PandasFrequency = Field(
        "1D", description="The rule is applied at the end of each such period of the history."
    )
    representatives: PositiveInt = Field(3, description="Records shown with each candidate.")
    top_terms: PositiveInt = Field(8, description="Terms shown with each candidate.")
    writeback: ProblemWriteBackParams = ProblemWriteBackParams()
    tried: tuple[Annotated[float, Field(gt=0, le=1)], ...] = Field(
        (0.6, 0.7, 0.8),
        description="Thresholds a `recurrence` model tries on validation's problem links (most"
        " problems raised, then the best pairwise F1, is kept; `threshold` too is tried).",
    )
    tried_growth: tuple[Annotated[float, Field(ge=0)], ...] = Field(
        (1.5, 2.0, 3.0),
        description="Growths `itsm-ml problems --tune` tries with each of `tried` against the"
        " decisions read back (`rule.growth` too).",
    )
    baseline_key: tuple[str, ...] = Field(
        ("category", "subcategory", "symptom"),
        description="The key baseline a `recurrence` model must beat: records sharing these"
        " values within `window_days` are one group (the columns an export has; none: service).",
    )
    max_candidates_per_month: float = Field(
        12.0,
        gt=0,
        description="Review budget: a `recurrence` model raising more in a monitored period is"
        " over budget (drift and `itsm-ml monitor`).",
    )
    monitor_period: PandasFrequency = Field(
        "30D", description="Period a `recurrence` model is monitored by."
    )


class Params(_Strict):
    project: str = Field(
        "itsm",
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Prefix of registered model names, so two projects never share versions.",
    )
    tickets: TicketsParams
    changes: ChangesParams
    micro_records: MicroRecordsParams = Field(
        MicroRecordsParams(),
        description="Fixes made outside the desk (problem candidates); default: none.",
    )
    models: dict[str, ModelSpec] = Field(
        default_factory=_default_models,
        description="The catalog: every model trained, evaluated, gated and served.",
    )
    split: SplitParams = SplitParams()
    triage: TriageParams = TriageParams()
    change_risk: ChangeRiskParams = ChangeRiskParams()
    knowledge: KnowledgeParams = KnowledgeParams()
    early_warning: EarlyWarningParams = EarlyWarningParams()
    problems: ProblemsParams = ProblemsParams()
    drift: DriftParams = DriftParams()
    promotion: PromotionParams = PromotionParams()
    serving: ServingParams = ServingParams()

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        bad = [name for name in models if not re.match(r"^[a-z0-9][a-z0-9-]*$", name)]
        if bad:
            raise ValueError(f"model names must be lower-case words joined by '-', got {bad}")
        return models

    def table(self, name: str) -> TicketsParams | ChangesParams | MicroRecordsParams:
        if name == "tickets":
            return self.tickets
        if name == "changes":
            return self.changes
        if name == "micro_records":
            return self.micro_records
        raise ConfigError(
            f"unknown table {name!r}; expected 'tickets', 'changes' or 'micro_records'"
        )


def resolve_path(raw: str, root: Path | None = None) -> Path:
    """Expand $VARS and ~; relative paths are taken from `root` (the project root)."""
    if "ITSM_ML_DATASETS" in raw and not os.environ.get("ITSM_ML_DATASETS"):
        raise ConfigError(
            f"path {raw!r} uses $ITSM_ML_DATASETS, which is not set; "
            "point it at the folder holding the public datasets"
        )
    path = Path(os.path.expandvars(raw)).expanduser()
    return path if path.is_absolute() or root is None else root / path


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_params(raw: Any, origin: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin} is not valid:\n{_format_errors(exc)}") from exc


def load_params(path: Path = Path("params.yaml")) -> Params:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found; run from the project root or pass --params") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_params(raw, origin=str(path))


def parse_source(table: str, raw: Any) -> TicketSource | ChangeSource | MicroRecordSource:
    """Validate one source block (used by `itsm-ml check` for a mapping file)."""
    models: dict[str, type[TicketsParams] | type[ChangesParams] | type[MicroRecordsParams]] = {
        "tickets": TicketsParams,
        "changes": ChangesParams,
        "micro_records": MicroRecordsParams,
    }
    model = models.get(table, ChangesParams)
    try:
        return model.model_validate({"source": raw}).source
    except ValidationError as exc:
        raise ConfigError(f"source for {table} is not valid:\n{_format_errors(exc)}") from exc
