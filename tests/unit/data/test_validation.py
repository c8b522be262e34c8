from __future__ import annotations

import pandas as pd
import pytest

from itsm_ml.config import ValidationParams
from itsm_ml.data.validation import QUARANTINE_REASON, render_html, validate_table
from itsm_ml.schemas import TICKETS

NOW = pd.Timestamp("2026-01-01")


def tickets(n: int = 50) -> pd.DataFrame:
    opened = pd.Timestamp("2025-01-01") + pd.to_timedelta(range(n), unit="h")
    return pd.DataFrame(
        {
            "ticket_id": pd.array([f"T{i}" for i in range(n)], dtype="string"),
            "opened_at": opened,
            "closed_at": opened + pd.Timedelta(hours=2),
            "text": pd.array([f"printer {i} <b>jam</b>" for i in range(n)], dtype="string"),
            "label_priority": pd.array(["P1"] * n, dtype="string"),
            "_source_row": pd.array(range(1, n + 1), dtype="Int64"),
        }
    )


def run(frame: pd.DataFrame, **rules: object):  # type: ignore[no-untyped-def]
    params = ValidationParams(**{"min_rows": 1, "max_quarantine_share": 0.1, **rules})
    return validate_table(
        frame, TICKETS, params, source="t.csv", expect_text=True, non_null=("opened_at",), now=NOW
    )


def test_a_clean_table_passes_and_drops_metadata_columns() -> None:
    outcome = run(tickets())
    assert outcome.report.passed
    assert len(outcome.valid_rows) == 50 and "_source_row" not in outcome.valid_rows
    assert outcome.quarantine.empty


def test_every_rule_that_hits_a_row_is_in_its_reason() -> None:
    frame = tickets()
    frame.loc[4, "closed_at"] = pd.Timestamp("2024-01-01")
    frame.loc[4, "label_priority"] = "P9"
    outcome = run(frame, vocabularies={"label_priority": ("P1", "P2")})
    assert outcome.report.passed and outcome.report.quarantined_rows == 1
    reason = outcome.quarantine[QUARANTINE_REASON].iloc[0]
    assert "closed_at: not closed before opened" in reason
    assert "label_priority: value in the configured vocabulary (label_priority='P9')" in reason
    assert "T4" not in set(outcome.valid_rows.ticket_id)


def test_the_failure_message_names_table_source_column_rule_count_and_examples() -> None:
    frame = tickets()
    frame.loc[:9, "opened_at"] = pd.Timestamp("2030-01-01")
    frame.loc[:9, "closed_at"] = pd.Timestamp("2030-01-02")
    report = run(frame).report
    assert not report.passed and report.too_many_quarantined
    message = report.summary()
    assert "table tickets from t.csv: 50 rows, INVALID" in message
    assert "10 rows (20.00%) broke row rules, above the limit of 10.00%" in message
    assert (
        "column `opened_at`: rule 'not in the future' failed (10 rows), e.g. ticket_id=T0 "
        in message
    )


def test_a_vocabulary_for_a_missing_column_is_critical() -> None:
    report = run(tickets(), vocabularies={"label_category": ("a",)}).report
    # The rule names the params key to change, so the message alone says what to do.
    assert [r.name for r in report.critical_failures] == [
        "column `label_category` present: `tickets.validation.vocabularies` in params.yaml"
        " names it; map it in the source or remove that entry"
    ]


def test_wrong_dtype_is_critical() -> None:
    frame = tickets().assign(opened_at=lambda f: f.opened_at.astype(str))
    failures = {(r.column, r.name) for r in run(frame).report.critical_failures}
    assert ("opened_at", "dtype is datetime64[ns]") in failures


@pytest.mark.parametrize("missing", ["ticket_id", "text"])
def test_a_missing_core_column_is_critical(missing: str) -> None:
    report = run(tickets().drop(columns=[missing])).report
    assert (missing, "required column present") in {
        (r.column, r.name) for r in report.critical_failures
    }


def test_html_report_is_self_contained_and_escapes_values() -> None:
    frame = tickets()
    frame.loc[0, "ticket_id"] = "<script>alert(1)</script>"
    frame.loc[1, "ticket_id"] = "<script>alert(1)</script>"
    page = render_html(run(frame).report)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page


def test_a_row_rule_that_fails_without_naming_rows_fails_the_table() -> None:
    frame = tickets().assign(closed_at=lambda f: f.closed_at.astype(str))
    report = run(frame).report
    assert not report.passed
    failed = {(r.column, r.name): r for r in report.critical_failures}
    assert failed[("closed_at", "not in the future")].observed.startswith(
        "could not be evaluated: failed without naming rows"
    )
    assert not report.row_failures


def test_vocabularies_default_to_the_source_preset() -> None:
    from itsm_ml.config import GeneratorSource, TicketCsvSource
    from itsm_ml.data.stage import validate_loaded

    frame = tickets()  # priority "P1", no impact: fine for a CSV, which has no preset
    csv = TicketCsvSource(kind="ticket_csv", path="t.csv", labels={"category": "c"})
    assert validate_loaded("tickets", csv, frame, ValidationParams()).report.passed
    generated = validate_loaded(
        "tickets", GeneratorSource(kind="generator"), frame, ValidationParams()
    ).report
    assert {r.column for r in generated.critical_failures} == {"label_impact", "label_urgency"}
    assert {r.column for r in generated.row_failures} == {"label_priority"}
    chosen = validate_loaded(
        "tickets", GeneratorSource(kind="generator"), frame, ValidationParams(vocabularies={})
    ).report
    assert chosen.passed
