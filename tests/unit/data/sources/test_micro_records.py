"""Micro-records from a chat assistant's export (CSV or JSON lines) and the built-in
generator, validated by the tickets' rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.config import (
    MicroRecordGeneratorSource,
    MicroRecordsFileSource,
    NoMicroRecords,
    ValidationParams,
    parse_params,
)
from itsm_ml.data.sources import load_table
from itsm_ml.data.sources.micro_generator import generate_with_truth, hidden_issues
from itsm_ml.data.stage import validate_loaded
from itsm_ml.errors import ConfigError, SourceError
from itsm_ml.schemas import MICRO_RECORDS

ROWS = [
    {"id": "c1", "timestamp": "2025-03-03T09:00:00", "user": "u1", "service": "VPN",
     "symptom": "Error 809 on VPN", "fix": "Repaired the client", "minutes_lost": "15"},
    {"id": "c2", "timestamp": "2025-03-03T10:30:00", "user": "u2", "service": None,
     "symptom": "=HYPERLINK(\"http://x\")", "fix": None, "minutes_lost": "-3"},
]  # fmt: skip


def source(path: Path, **changes: object) -> MicroRecordsFileSource:
    return MicroRecordsFileSource(kind="assistant_export", path=str(path), **changes)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_json_lines_and_csv_give_the_same_table(tmp_path: Path) -> None:
    from_json = load_table("micro_records", source(write_jsonl(tmp_path / "log.jsonl", ROWS)))
    csv = tmp_path / "log.csv"
    pd.DataFrame(ROWS).to_csv(csv, index=False)
    from_csv = load_table("micro_records", source(csv))
    columns = ["record_id", "opened_at", "text", "caller", "service", "minutes_lost", "channel"]
    pd.testing.assert_frame_equal(from_json[columns], from_csv[columns])
    assert from_json["record_id"].tolist() == ["c1", "c2"]
    assert from_json["channel"].tolist() == ["chat assistant"] * 2  # the export names none
    assert from_json["label_resolution_notes"].iloc[0] == "Repaired the client"


def test_a_mapped_column_must_exist_while_a_default_one_is_read_where_present(
    tmp_path: Path,
) -> None:
    rows = [{"when": "2025-03-03 09:00", "question": "Printer jams", "answer": "Cleared it"}]
    path = write_jsonl(tmp_path / "bot.jsonl.gz", [])
    with gzip.open(path, "wt") as out:
        out.write(json.dumps(rows[0]) + "\n")
    mapped = source(path, opened_at="when", text=("question",), fix="answer")
    table = load_table("micro_records", mapped)
    assert table[["text", "label_resolution_notes"]].iloc[0].tolist() == [
        "Printer jams",
        "Cleared it",
    ]
    assert table["record_id"].tolist() == ["mr-000001"]  # no id column: made from the row
    with pytest.raises(SourceError, match=r"missing required column 'agent_group'"):
        load_table("micro_records", source(path, opened_at="when", text=("question",),
                                           service="agent_group"))  # fmt: skip


def test_a_line_that_is_not_a_json_object_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n[1, 2]\n")
    with pytest.raises(SourceError, match="line 3 is a JSON list"):
        load_table("micro_records", source(path))
    path.write_text(json.dumps(ROWS[0]) + '\n{"id": "c9",\n')
    with pytest.raises(SourceError, match="line 2 is not valid JSON"):
        load_table("micro_records", source(path))
    with pytest.raises(SourceError, match="file not found"):
        load_table("micro_records", source(tmp_path / "missing.jsonl"))


def test_validation_quarantines_what_it_would_on_a_ticket(tmp_path: Path) -> None:
    rows = ROWS + [
        {"id": f"c{i}", "timestamp": f"2025-03-04T{i % 24:02d}:00:00", "user": f"u{i}",
         "symptom": f"Question {i}", "minutes_lost": "5"}
        for i in range(3, 120)
    ] + [{"id": "c200", "timestamp": "not a time", "symptom": "x", "user": "u"}]  # fmt: skip
    export = source(write_jsonl(tmp_path / "log.jsonl", rows))
    table = load_table("micro_records", export)
    outcome = validate_loaded("micro_records", export, table, ValidationParams(min_rows=0))
    assert outcome.report.passed is False  # 2 of 120 rows quarantined is over 1%
    quarantined = set(outcome.quarantine["record_id"])
    assert quarantined == {"c2", "c200"}  # negative minutes; a time that does not parse
    relaxed = ValidationParams(min_rows=0, max_quarantine_share=0.05)
    kept = validate_loaded("micro_records", export, table, relaxed)
    assert kept.report.passed and "c1" in set(kept.valid_rows["record_id"])


def test_the_generator_hides_recurring_issues_that_reach_no_ticket() -> None:
    settings = MicroRecordGeneratorSource(kind="generator", rows=400)
    rows, truth = generate_with_truth(settings)
    issues = hidden_issues(settings)
    assert len(issues) == settings.hidden.count and len(rows) == 400 + 4 * 12
    for k, issue in enumerate(issues):
        theirs = rows[truth.to_numpy() == k]
        opened = pd.to_datetime(theirs["timestamp"])
        assert len(theirs) == 12 and opened.min() >= issue.start and opened.max() <= issue.end
        assert theirs["user"].nunique() >= 10  # different callers, not one person retrying
        assert theirs["symptom"].nunique() >= 4  # worded differently each time
    table = load_table("micro_records", settings)
    assert table["record_id"].is_unique and table["opened_at"].is_monotonic_increasing
    assert list(table.columns[:3]) == list(MICRO_RECORDS.core_columns)
    assert load_table("micro_records", NoMicroRecords(kind="none")).empty


def test_params_default_to_no_micro_records_and_refuse_a_ticket_source_for_them() -> None:
    from itsm_ml.config import load_params

    base = load_params(Path(__file__).parents[4] / "params.yaml").model_dump(mode="json")
    del base["micro_records"]
    assert parse_params(base).micro_records.source.kind == "none"
    base["micro_records"] = {"source": {"kind": "ticket_csv", "path": "x.csv", "text": ["a"]}}
    with pytest.raises(ConfigError, match=r"micro_records\.source"):
        parse_params(base)
