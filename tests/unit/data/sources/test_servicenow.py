"""The ServiceNow adapters on a hand-written audit log whose events arrive out of order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.config import ServiceNowAuditLogSource
from itsm_ml.data.sources.servicenow import load_audit_log, table_frame_to_canonical
from itsm_ml.errors import SourceError
from tests.conftest import DATA


def audit(path: Path) -> pd.DataFrame:
    return load_audit_log(ServiceNowAuditLogSource(kind="servicenow_audit_log", path=str(path)))


def test_one_row_per_incident_with_open_state_features_and_final_labels() -> None:
    frame = audit(DATA / "servicenow_audit_log_small.csv").set_index("ticket_id")
    assert sorted(frame.index) == ["INC9000001", "INC9000002"]
    moved = frame.loc["INC9000002"]
    assert moved.assignment_group == "Group 1" and moved.category == "Category 1"  # at open
    assert moved.label_assignment_group == "Group 9" and moved.label_category == "Category 2"
    assert moved.label_reassignment_count == 1 and not moved.label_made_sla
    assert moved.opened_at == pd.Timestamp("2024-03-01 10:00")
    assert moved.closed_at == pd.Timestamp("2024-03-05 09:00")
    assert moved._source_row == 3  # the record of its first update
    assert pd.isna(frame.loc["INC9000001"].ci)  # '?' is missing


def test_resolution_fields_of_the_audit_log_come_from_the_last_update(tmp_path: Path) -> None:
    events = pd.read_csv(
        DATA / "servicenow_audit_log_small.csv", dtype=str, keep_default_na=False
    ).set_index(["number", "sys_mod_count"])
    # INC9000002 is linked to a problem and a change while it is worked, then to others
    events.loc[("INC9000002", "1"), ["knowledge", "problem_id", "rfc"]] = [
        "false",
        "Problem ID 1",
        "Request For Change 1",
    ]
    events.loc[("INC9000002", "3"), ["knowledge", "problem_id", "rfc"]] = [
        "true",
        "Problem ID 7",
        "Request For Change 2",
    ]
    events.reset_index().to_csv(tmp_path / "log.csv", index=False)
    frame = audit(tmp_path / "log.csv").set_index("ticket_id")
    moved, other = frame.loc["INC9000002"], frame.loc["INC9000001"]
    assert moved.label_knowledge == "true"  # a flag in this log: kept as text
    assert moved.label_problem_id == "Problem ID 7"
    assert moved.label_rfc == "Request For Change 2"
    assert other.label_knowledge == "true"
    assert pd.isna(other.label_problem_id) and pd.isna(other.label_rfc)  # '?' is missing
    assert "knowledge" not in frame and "problem_id" not in frame  # never features


def test_an_audit_log_without_resolution_links_loads_without_them(tmp_path: Path) -> None:
    events = pd.read_csv(DATA / "servicenow_audit_log_small.csv", dtype=str, keep_default_na=False)
    events.drop(columns=["knowledge", "problem_id", "rfc"]).to_csv(
        tmp_path / "log.csv", index=False
    )
    frame = audit(tmp_path / "log.csv")
    assert not {"label_knowledge", "label_problem_id", "label_rfc"} & set(frame.columns)
    assert frame.label_closed_code.notna().any()
    # the rest of the preset stays required
    events.drop(columns=["closed_code"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(SourceError, match="closed_code"):
        audit(tmp_path / "short.csv")


def test_gzip_and_bom_are_read_transparently(tmp_path: Path) -> None:
    import gzip

    raw = (DATA / "servicenow_audit_log_small.csv").read_bytes()
    packed = tmp_path / "log.csv.gz"
    packed.write_bytes(gzip.compress(b"\xef\xbb\xbf" + raw))
    assert len(audit(packed)) == 2


def test_a_missing_audit_column_is_named(tmp_path: Path) -> None:
    text = (
        (DATA / "servicenow_audit_log_small.csv").read_text().replace("sys_mod_count", "mod_count")
    )
    (tmp_path / "log.csv").write_text(text)
    with pytest.raises(
        SourceError, match=r"missing required column 'sys_mod_count' \(did you mean 'mod_count'\?\)"
    ):
        audit(tmp_path / "log.csv")


def test_table_export_maps_changeable_fields_to_labels() -> None:
    rows = pd.DataFrame(
        {
            "number": ["INC1"],
            "opened_at": ["2025-01-02 03:04:05"],
            "short_description": ["vpn down"],
            "description": [None],
            "assignment_group": ["Network"],
            "category": ["network"],
            "caller_id": ["Caller 1"],
            "reassignment_count": ["2"],
            "made_sla": ["false"],
        },
        dtype="string",
    )
    frame = table_frame_to_canonical(rows, "%Y-%m-%d %H:%M:%S")
    assert frame.text.iloc[0] == "vpn down"
    assert frame.label_assignment_group.iloc[0] == "Network"
    assert "assignment_group" not in frame and "category" not in frame
    assert frame.caller.iloc[0] == "Caller 1"
    assert frame.label_reassignment_count.iloc[0] == 2


def test_table_export_maps_resolution_fields_to_labels() -> None:
    rows = pd.DataFrame(
        {
            "number": ["INC1", "INC2"],
            "opened_at": ["2025-01-02 03:04:05", "2025-01-03 03:04:05"],
            "short_description": ["vpn down", "vpn down again"],
            "assignment_group": ["Network", "Network"],
            "close_code": ["Solution provided", None],
            "close_notes": ["Reset the VPN token; user connected.", None],
            "knowledge": ["KB0010042", None],
            "problem_id": ["PRB0040012", "PRB0040012"],
            "rfc": ["CHG0030007", None],
        },
        dtype="string",
    )
    frame = table_frame_to_canonical(rows, "%Y-%m-%d %H:%M:%S").set_index("ticket_id")
    solved = frame.loc["INC1"]
    assert solved.label_closed_code == "Solution provided"
    assert solved.label_resolution_notes == "Reset the VPN token; user connected."
    assert solved.label_knowledge == "KB0010042"
    assert solved.label_problem_id == "PRB0040012" and solved.label_rfc == "CHG0030007"
    assert frame.loc["INC2"].label_problem_id == "PRB0040012"  # linked while still open
    assert pd.isna(frame.loc["INC2"].label_resolution_notes)
    assert "close_notes" not in frame and "knowledge" not in frame


def test_table_export_names_its_missing_required_columns(tmp_path: Path) -> None:
    from itsm_ml.config import ServiceNowTableSource
    from itsm_ml.data.sources.servicenow import load_table_export

    path = tmp_path / "incident.csv"
    path.write_text(
        "number,opened_at,short_description,assignment group\nINC1,2025-01-01 00:00:00,vpn,Net\n"
    )
    source = ServiceNowTableSource(kind="servicenow_table", path=str(path))
    with pytest.raises(
        SourceError, match=r"'assignment_group' \(did you mean 'assignment group'\?\)"
    ):
        load_table_export(source)
