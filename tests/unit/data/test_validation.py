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


def run(  # type: ignore[no-untyped-def]
    frame: pd.DataFrame, label_columns: tuple[str, ...] = (), **rules: object
):
    params = ValidationParams(**{"min_rows": 1, "max_quarantine_share": 0.1, **rules})
    return validate_table(
        frame,
        TICKETS,
        params,
        source="t.csv",
        expect_text=True,
        non_null=("opened_at",),
        labels=label_columns,
        now=NOW,
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
    # The label checks over time need a time column: they wait for one, without crashing.
    report = run(frame, label_columns=("label_priority",)).report
    assert ("opened_at", "dtype is datetime64[ns]") in {
        (r.column, r.name) for r in report.critical_failures
    }


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


# ------------------------------------------------------------------ label completeness


def monthly(months: int = 12, per_month: int = 30) -> pd.DataFrame:
    """Tickets opened through `months` calendar months, `per_month` in each, all labelled."""
    opened = pd.DatetimeIndex(
        [
            pd.Timestamp("2024-01-01") + pd.DateOffset(months=m) + pd.Timedelta(hours=9 + i)
            for m in range(months)
            for i in range(per_month)
        ]
    )
    frame = tickets(len(opened))
    frame["opened_at"] = opened
    frame["closed_at"] = opened + pd.Timedelta(hours=2)
    frame["label_assignment_group"] = pd.array(
        [f"GRP_{i % 3}" for i in range(len(opened))], dtype="string"
    )
    return frame


def result(report, column: str, starts: str):  # type: ignore[no-untyped-def]
    found = [r for r in report.results if r.column == column and r.name.startswith(starts)]
    assert len(found) == 1, [(r.column, r.name) for r in report.results]
    return found[0]


def test_a_label_below_the_overall_minimum_stops_the_table_naming_share_and_ids() -> None:
    frame = tickets().assign(label_priority=pd.NA)
    frame["label_priority"] = frame["label_priority"].astype("string")
    report = run(frame, label_columns=("label_priority",)).report
    assert not report.passed
    failure = result(report, "label_priority", "label on at least 50% of the rows")
    assert failure.severity == "critical" and not failure.success
    assert failure.observed == "present on 0.00% (0 of 50 rows), minimum 50%"
    assert failure.examples[:2] == ("ticket_id=T0", "ticket_id=T1")
    assert "column `label_priority`: rule 'label on at least 50% of the rows' failed" in (
        report.summary()
    )


def test_label_completeness_at_the_minimum_passes() -> None:
    frame = tickets()
    frame.loc[:24, "label_priority"] = pd.NA  # 25 of 50 present: exactly 50%
    report = run(frame, label_columns=("label_priority",)).report
    assert report.passed, report.summary()
    assert result(report, "label_priority", "label on at least 50%").observed.startswith(
        "present on 50.00% (25 of 50 rows)"
    )


def test_labels_are_judged_only_when_asked_and_present() -> None:
    frame = tickets().assign(label_priority=pd.array([None] * 50, dtype="string"))
    assert run(frame).report.passed  # no model's label: nothing to judge
    # A model whose label the export lacks is skipped later with a note; not this rule's job.
    report = run(tickets(), label_columns=("label_category", "label_priority")).report
    assert report.passed
    assert {r.column for r in report.results if r.name.startswith("label on")} == {"label_priority"}


def test_a_month_below_its_minimum_stops_the_table_naming_the_months() -> None:
    frame = monthly()
    early = frame.opened_at < pd.Timestamp("2024-03-01")  # January and February
    frame.loc[early, "label_assignment_group"] = pd.NA  # 2 of 12 months: 83% overall
    report = run(frame, label_columns=("label_assignment_group",)).report
    assert not report.passed
    failure = result(report, "label_assignment_group", "label on at least 30% of the rows of each")
    assert failure.name == "label on at least 30% of the rows of each month (the newest exempt)"
    assert failure.observed.startswith(
        "below in 2 of 11 months judged: 2024-01: 0.00% (0 of 30 rows),"
        " 2024-02: 0.00% (0 of 30 rows); the newest month (2024-12) is exempt"
    )
    assert failure.examples[0] == "ticket_id=T0 (opened_at='2024-01-01T09:00:00')"
    assert result(report, "label_assignment_group", "label on at least 50% of the rows").success


def test_the_newest_period_is_exempt_and_small_periods_are_not_judged() -> None:
    frame = monthly()
    frame.loc[frame.opened_at >= pd.Timestamp("2024-12-01"), "label_assignment_group"] = pd.NA
    report = run(frame, label_columns=("label_assignment_group",)).report
    assert report.passed, report.summary()
    observed = result(report, "label_assignment_group", "label on at least 30% of the rows of")
    assert "the newest month (2024-12) is exempt: its open tickets have no final value yet" in (
        observed.observed
    )
    small = monthly(per_month=5)  # under min_period_rows (20): too few to judge
    small.loc[small.opened_at < pd.Timestamp("2024-03-01"), "label_assignment_group"] = pd.NA
    report = run(small, label_columns=("label_assignment_group",)).report
    assert report.passed, report.summary()
    assert "11 months with fewer than 20 rows not judged" in (
        result(report, "label_assignment_group", "label on at least 30% of the rows of").observed
    )


def test_a_short_export_is_judged_by_tenths_of_its_range() -> None:
    # Three months, labels only on the last two days: the case of a broken export.
    opened = pd.date_range("2024-01-01", "2024-03-31 23:00", periods=900)
    frame = tickets(900).assign(opened_at=opened, closed_at=opened + pd.Timedelta(hours=1))
    frame.loc[frame.opened_at < pd.Timestamp("2024-03-30"), "label_priority"] = pd.NA
    report = run(frame, label_columns=("label_priority",)).report
    assert not report.passed
    failure = result(report, "label_priority", "label on at least 30% of the rows of each")
    assert failure.name.endswith("each tenth of the time range (the newest exempt)")
    assert failure.observed.startswith("below in 9 of 9 tenths of the time range judged:")
    assert "2024-01-01 00:00 to 2024-01-10 02:18: 0.00% (0 of 90 rows)" in failure.observed
    assert not result(report, "label_priority", "label on at least 50% of the rows").success


def test_periods_are_months_over_ten_months_and_tenths_below() -> None:
    from itsm_ml.data.validation import Periods

    months = Periods.of(pd.Series(pd.to_datetime(["2024-01-31", "2024-10-01", None])))
    assert months is not None and months.unit == "month"
    assert months.names == tuple(f"2024-{m:02d}" for m in range(1, 11))
    assert months.number.tolist() == [0, 9, pd.NA]
    tenths = Periods.of(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-06", "2024-01-11"])))
    assert tenths is not None and tenths.unit == "tenth of the time range"
    assert tenths.number.tolist() == [0, 5, 9] and len(tenths.names) == 10
    assert Periods.of(pd.Series(pd.to_datetime([None, None]))) is None
    one = Periods.of(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01"])))
    assert one is not None and one.number.tolist() == [0, 0] and len(one.names) == 1


def test_a_table_without_open_times_is_judged_overall_only() -> None:
    frame = tickets().assign(opened_at=pd.NaT, closed_at=pd.NaT)
    frame.loc[:9, "label_priority"] = pd.NA
    report = validate_table(
        frame,
        TICKETS,
        ValidationParams(min_rows=1),
        source="t.csv",
        expect_text=True,
        labels=("label_priority",),
        now=NOW,
    ).report
    assert report.passed, report.summary()
    assert result(
        report, "label_priority", "label on at least 30% of the rows of each"
    ).observed == ("not judged: no open times")


# ------------------------------------------------------------------ counts, lengths, open times


def test_negative_counts_are_quarantined_with_their_values() -> None:
    frame = tickets().assign(
        label_reassignment_count=pd.array([1] * 48 + [-3, None], dtype="Int64")
    )
    outcome = run(frame)
    failure = result(outcome.report, "label_reassignment_count", "not negative")
    assert failure.severity == "row" and failure.failed_count == 1
    assert failure.examples == ("ticket_id=T48 (label_reassignment_count=-3)",)
    assert outcome.quarantine[QUARANTINE_REASON].tolist() == [
        "label_reassignment_count: not negative (label_reassignment_count=-3)"
    ]


def test_the_schema_marks_counts_and_sizes_and_params_add_mapped_numbers() -> None:
    from itsm_ml.schemas import CHANGES

    assert TICKETS.non_negative_columns == ("label_reassignment_count", "label_reopen_count")
    assert CHANGES.non_negative_columns == ("size",)
    frame = tickets().assign(la=[1.0] * 49 + [-1.0])
    outcome = run(frame, non_negative=("la",))
    assert result(outcome.report, "la", "not negative").failed_count == 1
    missing = run(tickets(), non_negative=("ld",)).report
    assert [r.name for r in missing.critical_failures] == [
        "column `ld` present: `tickets.validation.non_negative` in params.yaml names it;"
        " map it in the source or remove that entry"
    ]


def test_conflicting_open_times_of_one_id_stop_the_table_naming_ids_and_values() -> None:
    frame = tickets().assign(_conflicting_opened_at=pd.array([None] * 50, dtype="string"))
    frame.loc[3, "_conflicting_opened_at"] = "2025-01-01 03:00:00 | 2025-03-01 10:00:00"
    outcome = run(frame)
    report = outcome.report
    assert not report.passed
    failure = result(report, "opened_at", "one opened_at per id")
    assert failure.severity == "critical"
    assert failure.examples == (
        "ticket_id=T3 (opened_at='2025-01-01 03:00:00 | 2025-03-01 10:00:00')",
    )
    assert failure.observed.startswith("the events of 1 id disagree on `opened_at`")
    assert "_conflicting_opened_at" not in outcome.valid_rows


def test_every_text_column_has_a_length_limit() -> None:
    frame = tickets().assign(location=pd.array(["Site 1"] * 50, dtype="string"))
    frame.loc[7, "location"] = "x" * 2_000_000
    frame.loc[8, "text"] = "y" * 5_000  # the text column keeps its own limit (max_text_chars)
    outcome = run(frame)
    failure = result(outcome.report, "location", "at most 4000 characters")
    assert failure.severity == "row" and failure.failed_count == 1
    assert failure.examples == (f"ticket_id=T7 (location='{'x' * 56}...)",)  # shortened
    assert set(outcome.quarantine.ticket_id) == {"T7"}
    assert result(outcome.report, "text", "text at most").success
    assert run(frame, max_field_chars=2_000_000).report.quarantined_rows == 0


def test_resolution_notes_are_prose_held_to_the_text_limit() -> None:
    frame = tickets().assign(label_resolution_notes=pd.array(["Reset it."] * 50, dtype="string"))
    frame.loc[3, "label_resolution_notes"] = "Steps taken: " + "z" * 5_000
    frame.loc[4, "label_resolution_notes"] = "w" * 200_000
    outcome = run(frame)
    failure = result(outcome.report, "label_resolution_notes", "text at most")
    assert failure.failed_count == 1
    assert set(outcome.quarantine.ticket_id) == {"T4"}


# ------------------------------------------------------------------ formulas


@pytest.mark.parametrize(
    ("value", "formula"),
    [
        ('=HYPERLINK("http://attacker.example","x")', True),
        ("@SUM(A1:A9)", True),
        ("+cmd|' /C calc'!A0", True),
        ("-2+3+cmd|' /C calc'!A0", True),
        ("\t=1+1", True),
        ("\r\nfirst line", True),
        ("- see the attachment", True),
        ("-3", False),
        ("+44 20 7946 0000", False),
        ("+1 (555) 010-0100", False),
        ("-", False),
        ("a=b", False),
        ("caller 3", False),
    ],
)
def test_what_counts_as_a_formula(value: str, formula: bool) -> None:
    import re

    from itsm_ml.data.validation import FORMULA_PATTERN

    assert bool(re.search(FORMULA_PATTERN, value)) is formula


def test_formula_like_cells_are_escaped_in_every_text_column_and_counted() -> None:
    frame = tickets().assign(caller=pd.array(["caller"] * 50, dtype="string"))
    frame.loc[2, "caller"] = '=HYPERLINK("http://attacker.example","x")'
    frame.loc[3, "caller"] = "+44 20 7946 0000"
    frame.loc[4, "text"] = "@SUM(A1)"
    frame.loc[5, "text"] = "=1+1"
    frame.loc[5, "closed_at"] = pd.Timestamp("2024-01-01")  # quarantined anyway
    outcome = run(frame)
    report = outcome.report
    assert report.passed and report.escaped_cells == 2 and report.quarantined_rows == 1
    caller = result(report, "caller", "not formula-like")
    assert caller.severity == "warning" and caller.failed_count == 1
    assert caller.observed == "1 cells escaped with a leading ' in the validated table"
    text = result(report, "text", "not formula-like")
    assert text.observed == (
        "1 cells escaped with a leading ' in the validated table, 1 in quarantined rows"
    )
    valid = outcome.valid_rows.set_index("ticket_id")
    assert valid.at["T2", "caller"] == '\'=HYPERLINK("http://attacker.example","x")'
    assert valid.at["T3", "caller"] == "+44 20 7946 0000"  # a phone number stays data
    assert valid.at["T4", "text"] == "'@SUM(A1)"
    assert outcome.quarantine.at[5, "text"] == "=1+1"  # its CSV writer escapes it
    assert frame.at[2, "caller"].startswith("=")  # the caller's frame is left as it was
    assert report.metrics()["escaped_cells"] == 2 and report.to_dict()["escaped_cells"] == 2
    assert "2 formula-like cells escaped" in report.summary()


def test_formula_like_cells_can_quarantine_their_rows_instead() -> None:
    frame = tickets()
    frame.loc[4, "text"] = "@SUM(A1)"
    outcome = run(frame, formulas="quarantine")
    failure = result(outcome.report, "text", "not formula-like")
    assert failure.severity == "row" and failure.examples == ("ticket_id=T4 (text='@SUM(A1)')",)
    assert outcome.report.escaped_cells == 0 and set(outcome.quarantine.ticket_id) == {"T4"}


# ------------------------------------------------------------------ labels over time: warnings


def test_label_values_new_in_or_gone_from_the_newest_rows_are_warnings() -> None:
    frame = monthly()
    newest = frame.opened_at >= pd.Timestamp("2024-10-01")  # the last 3 of 12 months: 25%
    frame.loc[newest, "label_assignment_group"] = [
        "GRP_NEW" if i % 2 else "GRP_0" for i in range(int(newest.sum()))
    ]
    outcome = run(frame, label_columns=("label_assignment_group",), labels={"newest_share": 0.25})
    report = outcome.report
    assert report.passed and report.quarantined_rows == 0  # warnings never fail the table
    warning = result(report, "label_assignment_group", "no label value only in")
    assert warning.severity == "warning" and not warning.success and warning.failed_count == 3
    assert warning.examples == (
        "new: 'GRP_NEW' on 45 of the newest rows, first opened 2024-10-01",
        "gone: 'GRP_1' on 90 earlier rows, last opened 2024-09-02, about 30 expected among"
        " the newest",
        "gone: 'GRP_2' on 90 earlier rows, last opened 2024-09-02, about 30 expected among"
        " the newest",
    )
    assert warning.observed.startswith(
        "the newest 25%: 90 labelled rows opened from 2024-10-01 09:00; 1 values seen only"
        " there, 2 no longer seen there"
    )
    assert report.warnings == (warning,)
    assert report.metrics()["warnings"] == 1 and report.to_dict()["warnings"] == 1
    assert "warning (does not fail the table): column `label_assignment_group`" in (
        report.summary()
    )
    page = render_html(report)
    assert '<span class="note">warning</span>' in page and "1 warnings" in page


def test_steady_labels_and_rare_values_raise_no_warning() -> None:
    frame = monthly()
    frame.loc[frame.index[-3:], "label_assignment_group"] = "GRP_RARE"  # under min_count
    report = run(frame, label_columns=("label_assignment_group",)).report
    warning = result(report, "label_assignment_group", "no label value only in")
    assert warning.success and not report.warnings, warning.observed
