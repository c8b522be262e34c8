"""The generic event-log adapter on a small log whose events arrive out of order, and the
ServiceNow audit log as its preset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from itsm_ml.cli import app
from itsm_ml.config import (
    EventLogSource,
    ServiceNowAuditLogSource,
    TicketsParams,
    parse_source,
)
from itsm_ml.data.sources import load_table, traits
from itsm_ml.data.sources.event_log import events_to_canonical, load_event_log
from itsm_ml.data.sources.servicenow import load_audit_log
from itsm_ml.errors import ConfigError, SourceError
from tests.conftest import DATA

# Records are numbered from 1 under the header. T2's events are out of order and its
# sequence goes past 9 (text order would put '10' before '9'); T1's two events tie on every
# order column; T3's tie on `seq` and differ on `changed_on`, later time first in the file;
# the last two events have no ticket id (an empty cell, then white space).
LOG = """\
ticket,seq,changed_on,opened,closed,team,prio,summary,sla_met,hops
T2,10,2024-03-03 12:00,2024-03-01 08:00,2024-03-04 08:00,Apps,2,vpn fails again,no,2
T1,1,2024-02-01 10:00,2024-02-01 09:00,,Desk,3,printer jam,yes,0
T2,9,2024-03-02 12:00,2024-03-01 08:00,,Net,2,vpn fails,yes,1
T2,1,2024-03-01 08:05,2024-03-01 08:00,,Desk,1,vpn down,yes,0
T1,1,2024-02-01 10:00,2024-02-01 09:00,2024-02-02 09:00,Print,3,printer jammed,yes,1
T3,1,2024-04-01 10:00,2024-04-01 08:00,2024-04-02 08:00,Net,4,disk full,no,1
T3,1,2024-04-01 09:00,2024-04-01 08:00,,Desk,4,disk almost full,yes,0
,1,2024-05-01 10:00,2024-05-01 10:00,,Desk,4,orphan one,yes,0
 ,1,2024-05-02 10:00,2024-05-02 10:00,,Net,4,orphan two,yes,0
"""

MAPPING: dict[str, Any] = {
    "case_id": "ticket",
    "order": ["seq", "changed_on"],
    "opened_at": "opened",
    "closed_at": "closed",
    "text": ["summary"],
    "at_open": {"assignment_group": "team", "priority": "prio"},
    "labels": {
        "assignment_group": "team",
        "label_made_sla": "sla_met",
        "reassignment_count": "hops",
    },
}


def event_log(path: Path, **overrides: Any) -> EventLogSource:
    return EventLogSource.model_validate(
        {"kind": "event_log", "path": str(path), **MAPPING, **overrides}
    )


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(LOG)
    return path


@pytest.fixture
def tickets(log_file: Path) -> pd.DataFrame:
    return load_event_log(event_log(log_file))


def ticket(frame: pd.DataFrame, ticket_id: str) -> pd.Series:
    return frame.set_index("ticket_id").loc[ticket_id]


def test_one_row_per_case_with_open_features_and_final_labels(tickets: pd.DataFrame) -> None:
    assert tickets.ticket_id.tolist()[:3] == ["T1", "T2", "T3"]
    t2 = ticket(tickets, "T2")
    assert t2.assignment_group == "Desk" and t2.priority == "1" and t2.text == "vpn down"
    assert t2.opened_at == pd.Timestamp("2024-03-01 08:00")
    assert t2._source_row == 4  # the record of its first event
    assert t2.label_assignment_group == "Apps"  # seq 10 after 9: numbers, not text
    assert t2.closed_at == pd.Timestamp("2024-03-04 08:00")


def test_typed_labels_follow_the_canonical_schema(tickets: pd.DataFrame) -> None:
    assert str(tickets.label_made_sla.dtype) == "boolean"
    assert str(tickets.label_reassignment_count.dtype) == "Int64"
    assert ticket(tickets, "T2").label_reassignment_count == 2
    assert not ticket(tickets, "T2").label_made_sla
    assert str(tickets.priority.dtype) == "string"  # a text column in the schema stays text


def test_a_later_order_column_breaks_ties_of_an_earlier_one(tickets: pd.DataFrame) -> None:
    t3 = ticket(tickets, "T3")
    assert t3.assignment_group == "Desk" and t3.text == "disk almost full"  # 09:00, record 7
    assert t3.label_assignment_group == "Net" and not t3.label_made_sla  # 10:00, record 6
    assert t3._source_row == 7


def test_the_record_number_breaks_ties_of_every_order_column(tickets: pd.DataFrame) -> None:
    t1 = ticket(tickets, "T1")
    assert t1.text == "printer jam" and t1._source_row == 2
    assert t1.label_assignment_group == "Print" and t1.label_reassignment_count == 1


def test_events_without_a_case_id_stay_cases_of_their_own(tickets: pd.DataFrame) -> None:
    orphans = tickets[tickets.ticket_id.isna()]
    assert orphans._source_row.tolist() == [8, 9]  # last, in file order
    assert orphans.text.tolist() == ["orphan one", "orphan two"]
    assert len(tickets) == 5


def test_the_file_order_does_not_matter(log_file: Path, tickets: pd.DataFrame) -> None:
    events = pd.read_csv(log_file, dtype="string", keep_default_na=False, na_values=[""])
    reversed_events = events.iloc[::-1].reset_index(drop=True)
    again = events_to_canonical(reversed_events, event_log(log_file))
    # T2 and T3 are ordered by their order columns alone (T1 by the record number, which
    # reversing changes); only where their first events sit in the file moves.
    settled = ["T2", "T3"]

    def cases(frame: pd.DataFrame) -> pd.DataFrame:
        chosen = frame[frame.ticket_id.isin(settled)]
        return chosen.drop(columns="_source_row").reset_index(drop=True)

    pd.testing.assert_frame_equal(cases(again), cases(tickets))


def test_timestamps_use_the_date_format(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "ticket,at,team\nA,02/01/2024 10:00,Late\nA,01/02/2024 09:00,Later\nA,31/12/2023 08:00,Early\n"
    )
    source = EventLogSource(
        kind="event_log",
        path=str(path),
        case_id="ticket",
        order=("at",),
        opened_at="at",
        date_format="%d/%m/%Y %H:%M",
        at_open={"assignment_group": "team"},
        labels={"assignment_group": "team"},
    )
    row = load_event_log(source).iloc[0]
    assert row.assignment_group == "Early" and row.label_assignment_group == "Later"
    assert row.opened_at == pd.Timestamp("2023-12-31 08:00")


def test_a_missing_mapped_column_is_named(log_file: Path) -> None:
    with pytest.raises(
        SourceError, match=r"missing required column 'sequence' \(did you mean 'seq'\?\)"
    ):
        load_event_log(event_log(log_file, order=["sequence"]))


def test_the_mapping_is_checked_when_params_are_read(log_file: Path) -> None:
    with pytest.raises(ConfigError, match="lower_snake_case"):
        parse_source(
            "tickets", {"kind": "event_log", "path": "x", **MAPPING, "labels": {"Team": "team"}}
        )
    with pytest.raises(ConfigError, match="at least one text or label"):
        parse_source(
            "tickets", {**MAPPING, "kind": "event_log", "path": "x", "text": [], "labels": {}}
        )
    with pytest.raises(ConfigError, match="order"):
        parse_source("tickets", {**MAPPING, "kind": "event_log", "path": "x", "order": []})
    with pytest.raises(ConfigError, match="map it under `labels`"):
        parse_source(
            "tickets", {**MAPPING, "kind": "event_log", "path": "x", "at_open": {"label_x": "team"}}
        )
    with pytest.raises(ConfigError, match=r"\['label_team'\] twice"):
        labels = {"team": "team", "label_team": "hops"}
        parse_source("tickets", {**MAPPING, "kind": "event_log", "path": "x", "labels": labels})
    source = event_log(log_file)
    assert source.mapped_columns() == [
        "ticket",
        "seq",
        "changed_on",
        "opened",
        "closed",
        "summary",
        "team",
        "prio",
        "sla_met",
        "hops",
    ]


def test_traits_follow_the_mapping(log_file: Path) -> None:
    assert traits("tickets", event_log(log_file)).has_text
    assert traits("tickets", event_log(log_file)).non_null == ("opened_at",)
    bare = event_log(log_file, text=[], opened_at=None)
    assert not traits("tickets", bare).has_text and traits("tickets", bare).non_null == ()
    sn = traits("tickets", ServiceNowAuditLogSource(kind="servicenow_audit_log", path="x"))
    assert not sn.has_text and sn.non_null == ("opened_at",)


def servicenow(**overrides: Any) -> ServiceNowAuditLogSource:
    block = {"kind": "servicenow_audit_log", "path": str(DATA / "servicenow_audit_log_small.csv")}
    source = TicketsParams.model_validate({"source": {**block, **overrides}}).source
    assert isinstance(source, ServiceNowAuditLogSource)
    return source


def test_the_servicenow_preset_is_the_event_log_with_servicenow_fields() -> None:
    preset = servicenow()
    spelled_out = EventLogSource.model_validate({**preset.model_dump(), "kind": "event_log"})
    assert spelled_out.case_id == "number"
    assert spelled_out.order == ("sys_mod_count", "sys_updated_at")
    frame = load_table("tickets", preset)
    pd.testing.assert_frame_equal(frame, load_table("tickets", spelled_out))
    pd.testing.assert_frame_equal(frame, load_audit_log(preset))
    moved = ticket(frame, "INC9000002")
    assert moved.assignment_group == "Group 1" and moved.label_assignment_group == "Group 9"
    assert moved.label_reassignment_count == 1 and not moved.label_made_sla


def test_a_user_overrides_one_field_of_the_servicenow_preset() -> None:
    source = servicenow(opened_at="sys_created_at")
    assert source.opened_at == "sys_created_at"
    assert source.at_open == servicenow().at_open and source.labels == servicenow().labels
    assert source.date_format == "%d/%m/%Y %H:%M" and source.missing_values == ("?", "")
    frame = load_table("tickets", source)
    assert ticket(frame, "INC9000002").opened_at == pd.Timestamp("2024-03-01 10:01")


def test_check_reads_an_event_log_with_its_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "\n".join(line for line in LOG.splitlines() if line[:1] == "T" or line[:1] == "t")
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(yaml.safe_dump({"kind": "event_log", **MAPPING}))
    args = ["check", str(path), "--source", "event_log", "--params", str(tmp_path / "none.yaml")]
    result = CliRunner().invoke(
        app, [*args, "--mapping", str(mapping), "--report-dir", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "events.csv.json").read_text())
    assert report["rows"] == 3 and report["quarantined_rows"] == 0
    without = CliRunner().invoke(app, [*args, "--report-dir", str(tmp_path / "r")])
    assert without.exit_code == 2 and "needs --mapping" in without.output


def test_events_of_one_case_disagreeing_on_the_open_time_are_marked(
    log_file: Path, tickets: pd.DataFrame
) -> None:
    assert tickets["_conflicting_opened_at"].isna().all()  # the log's cases agree
    # T2 reused for another case opened three months later: its events would be merged.
    reused = LOG.replace(
        "T2,10,2024-03-03 12:00,2024-03-01 08:00", "T2,10,2024-03-03 12:00,2024-06-01 08:00"
    )
    log_file.write_text(reused)
    frame = load_event_log(event_log(log_file))
    assert ticket(frame, "T2")._conflicting_opened_at == (
        "2024-03-01 08:00:00 | 2024-06-01 08:00:00"
    )
    assert ticket(frame, "T2").opened_at == pd.Timestamp("2024-03-01 08:00")  # the first event's
    assert frame.set_index("ticket_id")._conflicting_opened_at.drop("T2").isna().all()


def test_open_times_are_compared_once_parsed(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "ticket,seq,opened,team\n"
        "A,1,1/3/2024 10:00,Desk\nA,2,01/03/2024 10:00,Net\n"  # the same time, spelled twice
        "B,1,2/3/2024 10:00,Desk\nB,2,,Net\nB,3,31/02/2024 10:00,Net\n"  # missing, unparseable
        "C,1,1/1/2024 10:00,Desk\nC,2,2/1/2024 10:00,Desk\nC,3,3/1/2024 10:00,Desk\n"
        "C,4,4/1/2024 10:00,Desk\n"
    )
    source = EventLogSource(
        kind="event_log",
        path=str(path),
        case_id="ticket",
        order=("seq",),
        opened_at="opened",
        date_format="%d/%m/%Y %H:%M",
        labels={"assignment_group": "team"},
    )
    conflicts = load_event_log(source).set_index("ticket_id")._conflicting_opened_at
    assert pd.isna(conflicts["A"]) and pd.isna(conflicts["B"])
    assert conflicts["C"] == (
        "2024-01-01 10:00:00 | 2024-01-02 10:00:00 | 2024-01-03 10:00:00 | ... (4 values)"
    )


def test_an_event_time_mapped_as_the_open_time_is_not_a_conflict(tmp_path: Path) -> None:
    # Logs without a case-level open time map the event time: the first event opens the case.
    path = tmp_path / "log.csv"
    path.write_text(
        "ticket,changed,team\nA,1/3/2024 10:00,Desk\nA,1/3/2024 12:00,Net\nB,2/3/2024 09:00,Desk\n"
    )
    source = EventLogSource(
        kind="event_log",
        path=str(path),
        case_id="ticket",
        order=("changed",),
        opened_at="changed",
        date_format="%d/%m/%Y %H:%M",
        labels={"assignment_group": "team"},
    )
    tickets = load_event_log(source).set_index("ticket_id")
    assert tickets.opened_at["A"] == pd.Timestamp("2024-03-01 10:00")
    assert "_conflicting_opened_at" not in tickets or tickets._conflicting_opened_at.isna().all()
