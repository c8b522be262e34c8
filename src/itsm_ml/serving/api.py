"""Bodies the service accepts and answers, as the OpenAPI schema publishes them.

Requests are shaped like ServiceNow records: the Table API's field names, values as text or
as reference objects (`{"value": ..., "display_value": ...}`); fields the models do not use
are accepted and ignored, so an ITSM can send the record as it has it.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from types import FrameType
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_TEXT_CHARS = 100_000  # the ingestion limit (params.yaml, tickets.validation.max_text_chars)
Code = Annotated[str, StringConstraints(max_length=512)]
MIN_YEAR, MAX_YEAR = 1900, 2200  # of a metric point's or a micro-record's timestamp
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]


class Reference(BaseModel):
    """A reference field as the Table API returns it. The models learned display values
    (`sysparm_display_value=true`), so `display_value` is used when present."""

    model_config = ConfigDict(extra="ignore")
    value: Code | None = None
    display_value: Code | None = None
    link: Annotated[str, StringConstraints(max_length=2048)] | None = None


FieldValue = Code | Reference | None


# {"records": [{"caller_id": {"value": ...}}]}: object, array, object, object.
RECORD_DEPTH = 4


def parse_body(body: bytes) -> Any:
    """A request body read as JSON, or `json.JSONDecodeError` whose `msg` says why it is not,
    in words a client can act on and without quoting the body.

    FastAPI answers a `JSONDecodeError` as a 422 `json_invalid` error; any other exception
    from parsing (a `RecursionError` for deep nesting, a `ValueError` for an integer over
    Python's int-from-str limit, a `UnicodeDecodeError`) would be its 400 "There was an error
    parsing the body". Encodings are detected as `json.loads` does (UTF-8, or UTF-16/32 by
    their byte pattern), so every body that parsed before still parses.
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _not_json(f"body is not valid JSON: {exc.msg} at {where}", exc.pos) from exc
    except UnicodeDecodeError as exc:
        encoding = "UTF-8" if exc.encoding.replace("-", "").lower() == "utf8" else exc.encoding
        byte = f"0x{body[exc.start]:02x}" if exc.start < len(body) else "end of body"
        raise _not_json(
            f"body is not {encoding}: {byte} at byte {exc.start} ({exc.reason}); "
            "send JSON encoded as UTF-8",
            exc.start,
        ) from exc
    except RecursionError as exc:
        raise _not_json(
            f"JSON nested deeper than about {_parser_depth()} levels of arrays and objects, "
            f"the parser's limit; the records this service takes nest {RECORD_DEPTH} at most",
            0,
        ) from exc
    except ValueError as exc:
        # The int-from-str limit (CVE-2020-10735): "... value has 5000 digits; use
        # sys.set_int_max_str_digits() ..." speaks to the server, not to the client.
        digits = re.search(r"value has (\d+) digits", str(exc))
        if digits is None:
            raise _not_json(f"body is not valid JSON: {exc}", 0) from exc
        raise _not_json(
            f"body holds an integer of {digits[1]} digits, over the "
            f"{sys.get_int_max_str_digits()} a JSON number may have here; send it as a string",
            0,
        ) from exc


def _not_json(reason: str, position: int) -> json.JSONDecodeError:
    # An empty document: the error keeps no copy of the body (it may be ticket text).
    return json.JSONDecodeError(reason, "", position)


def _parser_depth() -> int:
    """How deep `json.loads` could nest from here: the interpreter's recursion limit less
    the frames already on the stack (its C scanner counts against the same limit)."""
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return sys.getrecursionlimit() - depth


def plain(value: str | Reference | None) -> str | None:
    if isinstance(value, Reference):
        return value.display_value if value.display_value is not None else value.value
    return value


class Incident(BaseModel):
    """An incident as it is when opened (ServiceNow `incident` table fields)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "sys_id": "9d385017c611228701d22104cc95c371",
                    "number": "INC0010001",
                    "opened_at": "2026-11-22 09:14:00",
                    "short_description": "VPN drops every few minutes",
                    "description": "Since this morning the VPN client disconnects.",
                    "caller_id": "Caller 2403",
                    "contact_type": "Phone",
                    "cmdb_ci": "VPN gateway",
                    "impact": "2 - Medium",
                    "urgency": "2 - Medium",
                }
            ]
        },
    )
    sys_id: Code | None = Field(None, description="Needed for write-back.")
    number: Code | None = None
    opened_at: Code | None = Field(None, description="ISO 8601 or 'YYYY-MM-DD HH:MM:SS'.")
    short_description: Text | None = None
    description: Text | None = None
    caller_id: FieldValue = None
    opened_by: FieldValue = None
    contact_type: FieldValue = None
    location: FieldValue = None
    cmdb_ci: FieldValue = None
    business_service: FieldValue = None
    category: FieldValue = None
    subcategory: FieldValue = None
    u_symptom: FieldValue = None
    impact: FieldValue = None
    urgency: FieldValue = None
    priority: FieldValue = None
    assignment_group: FieldValue = None


class ChangeRequest(BaseModel):
    """A change request before implementation (ServiceNow `change_request` fields)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "number": "CHG0030001",
                    "opened_at": "2026-11-20 10:00:00",
                    "start_date": "2026-11-24 22:00:00",
                    "end_date": "2026-11-25 01:00:00",
                    "type": "normal",
                    "cmdb_ci": "CI 12",
                    "business_service": "Email",
                    "assignment_group": "Group 3",
                    "size": 4,
                }
            ]
        },
    )
    sys_id: Code | None = None
    number: Code | None = None
    opened_at: Code | None = None
    start_date: Code | None = Field(None, description="Planned start of the window.")
    end_date: Code | None = Field(None, description="Planned end of the window.")
    type: FieldValue = Field(None, description="standard, normal or emergency.")
    cmdb_ci: FieldValue = None
    business_service: FieldValue = None
    assignment_group: FieldValue = None
    size: float | None = Field(
        None, description="Tasks, lines or CIs touched.", allow_inf_nan=False
    )
    measures: dict[Code, Annotated[float, Field(allow_inf_nan=False)]] | None = Field(
        None, description="Other numeric measures the change-risk model was trained with."
    )


class IncidentBatch(BaseModel):
    records: list[Incident] = Field(min_length=1)


class ChangeBatch(BaseModel):
    records: list[ChangeRequest] = Field(min_length=1)


class Suggestion(BaseModel):
    value: str
    probability: float


class TriageAnswer(BaseModel):
    model: str = Field(description="Registered model name.")
    version: str = Field(description="Registry version that produced this answer.")
    field: str = Field(description="The incident field this answer is for.")
    decision: Literal["auto_route", "suggest"] = Field(
        description="auto_route: set `value` (it clears the precision target learned on "
        "validation); suggest: show the suggestions to a person."
    )
    value: str | None = Field(description="The value to set, when auto-routed.")
    probability: float = Field(description="Calibrated probability of the top label.")
    suggestions: list[Suggestion]
    notes: str | None = Field(description="What the record lacked or had that was never seen.")


class TriageResult(BaseModel):
    sys_id: str | None
    number: str | None
    answers: dict[str, TriageAnswer] = Field(description="By target: routing, category, ...")
    unavailable: list[str] = Field(description="Targets with no champion to answer.")


class TriageBatchResult(BaseModel):
    results: list[TriageResult]


class ChangeRiskResult(BaseModel):
    sys_id: str | None
    number: str | None
    model: str
    version: str
    probability: float = Field(description="Calibrated probability that the change fails.")
    band: str
    reasons: list[str]
    conflicts: list[str]


class ChangeRiskBatchResult(BaseModel):
    results: list[ChangeRiskResult]


class Neighbour(BaseModel):
    """An earlier ticket like the one asked about, and how it was resolved."""

    id: str | None = Field(description="The earlier ticket's number.")
    opened_at: str | None
    score: float = Field(
        description="Similarity: ranks this ticket's neighbours; not comparable across tickets."
    )
    relevance: float = Field(
        description="Probability that it had the asked ticket's resolution (calibrated on"
        " validation tickets)."
    )
    fields: dict[str, str | None] = Field(
        description="Its resolution fields (label, notes, knowledge article, problem, ...)."
    )


class SimilarResult(BaseModel):
    sys_id: str | None
    number: str | None
    model: str
    version: str
    neighbours: list[Neighbour] = Field(description="Best first; never a later ticket.")


class SimilarBatchResult(BaseModel):
    results: list[SimilarResult]


class ResolutionResult(BaseModel):
    sys_id: str | None
    number: str | None
    model: str
    version: str
    field: str = Field(description="The field the suggestion is for (e.g. close_code).")
    decision: Literal["auto_suggest", "suggest"] = Field(
        description="auto_suggest: `value` clears the precision target learned on validation;"
        " suggest: show the suggestions to a person."
    )
    value: str | None = Field(description="The suggested value, when auto-suggested.")
    probability: float = Field(description="Calibrated probability of the top suggestion.")
    suggestions: list[Suggestion]
    runbook: str | None = Field(
        description="The runbook `knowledge.runbooks` maps the answer to; the ITSM runs it."
    )
    runbook_basis: str | None = Field(description="What named it: `suggestion = ...` or a field.")
    neighbours: list[Neighbour] = Field(description="The evidence: the tickets that voted.")


class ResolutionBatchResult(BaseModel):
    results: list[ResolutionResult]


def _year_in_range(value: datetime) -> datetime:
    # Time is kept as pandas nanoseconds downstream: beyond 1677-2262 it cannot be held.
    if not MIN_YEAR <= value.year < MAX_YEAR:
        raise ValueError(f"the year must be from {MIN_YEAR} to {MAX_YEAR - 1}")
    return value


class MetricPoint(BaseModel):
    """One point of a series an integration pushes (a metric, or a count of incidents)."""

    series: Code = Field(description="The series: e.g. `service=Email`, or a host's metric.")
    timestamp: datetime = Field(
        description="ISO 8601, from 1900 to 2199; with an offset it is read as UTC."
    )
    value: float = Field(allow_inf_nan=False)

    _in_range = field_validator("timestamp")(_year_in_range)


class AnomalyBatch(BaseModel):
    points: list[MetricPoint] = Field(
        min_length=1,
        description="Scored in time order per series; a point earlier than the last one a"
        " series was scored with is refused (422), nothing of the batch scored.",
    )
    model: Code | None = Field(
        None,
        description="A detector of the catalog (its name or registered name); none: the first.",
    )


class MicroRecord(BaseModel):
    """A fix made outside the desk, as a sanctioned assistant logs it: the names of the
    `assistant_export` source's defaults, so the log it lands in is read with no mapping."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "chat-5f2a9c",
                    "timestamp": "2026-11-22T09:14:00Z",
                    "user": "u-7f3e1b",
                    "service": "VPN",
                    "symptom": "VPN client shows error 809 since the Windows update",
                    "fix": "Reset the network adapter and ran the VPN client repair.",
                    "minutes_lost": 20,
                    "channel": "chat assistant",
                }
            ]
        },
    )
    id: Code | None = Field(
        None,
        description="The assistant's id of the conversation: a record sent again with the same"
        " id is not logged twice. None: one is made from the record's content.",
    )
    timestamp: datetime = Field(description="When the issue was met; an offset is read as UTC.")
    user: Code | None = Field(None, description="Who met it, pseudonymous (never a name).")
    service: Code | None = None
    ci: Code | None = None
    category: Code | None = None
    symptom: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)] = Field(
        description="What the employee met, in their or the assistant's words."
    )
    fix: Text | None = Field(None, description="What fixed it.")
    minutes_lost: float | None = Field(None, ge=0, le=100_000, allow_inf_nan=False)
    channel: Code = "chat assistant"

    _in_range = field_validator("timestamp")(_year_in_range)

    @field_validator("symptom")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the symptom is blank")
        return value


class MicroRecordBatch(BaseModel):
    records: list[MicroRecord] = Field(min_length=1)


class MicroRecordsLogged(BaseModel):
    logged: int = Field(description="Records appended to the log.")
    duplicates: int = Field(description="Records whose id was logged before (not again).")
    ids: list[str] = Field(description="The id of each record, in the order sent.")


class ScoredPoint(BaseModel):
    series: str
    timestamp: datetime
    value: float
    score: float = Field(description="The detector's surprise: -log10 of the tail probability.")
    alarm: bool = Field(description="At or above the detector's threshold.")
    basis: str = Field(description="The signal behind the score, empty when none stood out.")


class AnomalyResult(BaseModel):
    model: str
    version: str
    threshold: float
    alarms: int
    points: list[ScoredPoint] = Field(description="In the order sent.")


class ModelStatus(BaseModel):
    name: str
    serves: str = Field(description="tickets or changes, and the target.")
    version: str | None
    loaded_at: str | None
    checked_at: str | None
    error: str | None
    history: list[str]


class Models(BaseModel):
    models: list[ModelStatus]


class Health(BaseModel):
    status: str
    detail: dict[str, Any] = {}
