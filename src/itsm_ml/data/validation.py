"""Expectation suites as code, their runner, quarantine, and the offline report.

Three severities:
- critical rules (schema, row counts, text present, label completeness, one open time per id)
  judge the table as a whole: one failure stops the pipeline;
- row rules (ids, parseable values, time order, vocabularies, counts not negative, lengths)
  judge single rows: offending rows go to quarantine with their reasons, as long as their
  share stays under ``max_quarantine_share``; above it the table is rejected as a whole;
- warnings (label values new in, or gone from, the newest rows; formula-like cells escaped)
  are shown in the report and never fail the table.

Great Expectations evaluates every rule on single columns; this module builds the suite and
reads the results. Two checks look at the table over time, which no GX expectation does (GX
has no grouped expectation): label completeness per period and label appearance. They are
computed here with pandas and reported like the rules. GX is imported when a table is
validated, not when this module is imported: it takes seconds to load and most commands never
need it.

Formula-like text (OWASP's CSV injection guidance): a cell starting with `=`, `@`, a tab or a
carriage return, or with `+` or `-` followed by anything but a number (digits, white space and
`. , ( ) / : + -`). A signed number or a phone number (`-3`, `+44 20 7946 0000`) can at worst
be computed by a spreadsheet, never call a function or another program, and changing it would
change the data models learn from; numeric columns hold numbers, never text, so the rule reads
text columns only. By default (`formulas: escape`) such cells get a leading `'` in the
validated table; `formulas: quarantine` sends their rows to quarantine instead. CSV files
meant for people (`io.write_csv_for_humans`) escape every cell starting with one of the six
characters, numbers included.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from itsm_ml import io, telemetry
from itsm_ml.config import LabelValidationParams, ValidationParams
from itsm_ml.schemas import (
    BOOL,
    CONFLICT_PREFIX,
    DATETIME,
    FLOAT,
    INT,
    SOURCE_ROW,
    STRING,
    UNPARSED_PREFIX,
    TableSchema,
    is_metadata,
    unparsed_column,
)

Severity = Literal["critical", "row", "warning"]
QUARANTINE_REASON = "_quarantine_reason"
MAX_EXAMPLES = 5
FORMULA_PATTERN = r"^(?:[=@\t\r]|[+-](?![\d\s.,()/:+-]*$))"
# Open times touching this many calendar months are judged month by month; fewer, by tenths
# of their range (a three-month export still gets ten periods).
MONTHS_FOR_CALENDAR = 10
TENTHS = 10

# GX checks pandas extension dtypes through the Python type of their values.
_GX_TYPE = {STRING: "str", DATETIME: "datetime64", FLOAT: "float64", BOOL: "bool", INT: "int64"}
_DTYPE_WORDS = {
    DATETIME: "a timestamp",
    FLOAT: "a number",
    INT: "a whole number",
    BOOL: "true/false",
}
# Planned dates of changes are in the future by nature; only these must lie in the past.
_PAST_ONLY = ("opened_at", "resolved_at", "closed_at")
_TIME_ORDER = (
    ("closed_at", "opened_at", "closed before opened"),
    ("resolved_at", "opened_at", "resolved before opened"),
    ("planned_end", "planned_start", "planned end before planned start"),
)
_SEVERITY_ORDER = {"critical": 0, "row": 1, "warning": 2}


@dataclass(frozen=True)
class Rule:
    """One expectation with what a person needs to read its result."""

    name: str
    column: str | None
    severity: Severity
    expectation: Any
    involved: tuple[str, ...] = ()  # columns shown in examples of failing rows
    # What GX's result says in words (default: its observed value, if any).
    observe: Callable[[dict[str, Any]], str] | None = None
    escapes: bool = False  # a formula rule whose cells are escaped in the validated table


@dataclass(frozen=True)
class RuleResult:
    name: str
    column: str | None
    severity: Severity
    success: bool
    failed_count: int
    examples: tuple[str, ...]
    expectation: str
    observed: str = ""


@dataclass(frozen=True)
class ValidationReport:
    table: str
    source: str
    rows: int
    results: tuple[RuleResult, ...]
    quarantined_rows: int
    max_quarantine_share: float
    checked_at: str | None  # None in the pipeline's reports: they are tracked in git
    escaped_cells: int = 0  # formula-like cells given a leading ' in the validated table

    @property
    def quarantine_share(self) -> float:
        return self.quarantined_rows / self.rows if self.rows else 0.0

    @property
    def critical_failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.severity == "critical" and not r.success)

    @property
    def row_failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.severity == "row" and not r.success)

    @property
    def warnings(self) -> tuple[RuleResult, ...]:
        """Findings shown to a person that never fail the table."""
        return tuple(r for r in self.results if r.severity == "warning" and not r.success)

    @property
    def too_many_quarantined(self) -> bool:
        return self.quarantine_share > self.max_quarantine_share

    @property
    def passed(self) -> bool:
        return not self.critical_failures and not self.too_many_quarantined

    def summary(self) -> str:
        head = f"table {self.table} from {self.source}: {self.rows} rows"
        escaped = f"; {self.escaped_cells} formula-like cells escaped" if self.escaped_cells else ""
        warnings = [f"  warning (does not fail the table): {_describe(r)}" for r in self.warnings]
        if self.passed:
            line = (
                f"{head}, valid; {self.quarantined_rows} quarantined "
                f"({self.quarantine_share:.2%}, limit {self.max_quarantine_share:.2%}){escaped}"
            )
            quarantined = [f"  quarantined: {_describe(r)}" for r in self.row_failures]
            return "\n".join([line, *quarantined, *warnings])
        lines = [f"{head}, INVALID:"]
        for result in self.critical_failures:
            lines.append(f"  - {_describe(result)}")
        if self.too_many_quarantined:
            lines.append(
                f"  - {self.quarantined_rows} rows ({self.quarantine_share:.2%}) broke row rules, "
                f"above the limit of {self.max_quarantine_share:.2%} (max_quarantine_share):"
            )
            for result in self.row_failures:
                lines.append(f"      {_describe(result)}")
        return "\n".join([*lines, *warnings])

    def metrics(self) -> dict[str, Any]:
        """The few numbers worth comparing between runs (`dvc metrics diff`)."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "quarantined_rows": self.quarantined_rows,
            "quarantine_share": round(self.quarantine_share, 6),
            "critical_failures": len(self.critical_failures),
            "row_rules_failed": len(self.row_failures),
            "warnings": len(self.warnings),
            "escaped_cells": self.escaped_cells,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "source": self.source,
            "checked_at": self.checked_at,
            "passed": self.passed,
            "rows": self.rows,
            "quarantined_rows": self.quarantined_rows,
            "quarantine_share": round(self.quarantine_share, 6),
            "max_quarantine_share": self.max_quarantine_share,
            "warnings": len(self.warnings),
            "escaped_cells": self.escaped_cells,
            "results": [asdict(r) for r in self.results],
        }


@dataclass
class ValidationOutcome:
    report: ValidationReport
    valid_rows: pd.DataFrame = field(repr=False)
    quarantine: pd.DataFrame = field(repr=False)


def _describe(result: RuleResult) -> str:
    where = f"column `{result.column}`" if result.column else "table"
    examples = f", e.g. {', '.join(result.examples)}" if result.examples else ""
    if result.severity == "warning":
        found = f"found {result.failed_count} ({result.observed})"
        return f"{where}: rule '{result.name}' {found}{examples}"
    count = f"{result.failed_count} rows" if result.severity == "row" else result.observed
    return f"{where}: rule '{result.name}' failed ({count}){examples}"


def is_text_column(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype) or values.dtype == object


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2%} ({part:,} of {whole:,} rows)" if whole else "no rows"


def _observe_conflicts(column: str, detail: dict[str, Any]) -> str:
    count = int(detail.get("unexpected_count") or 0)
    return (
        f"the events of {count} {'id' if count == 1 else 'ids'} disagree on `{column}`: each"
        " id's events were merged into one ticket (an id reused for another case?)"
    )


def _observe_completeness(minimum: float, detail: dict[str, Any]) -> str:
    rows = int(detail.get("element_count") or 0)
    present = rows - int(detail.get("unexpected_count") or 0)
    return f"present on {_share(present, rows)}, minimum {minimum:.0%}"


def build_suite(
    frame: pd.DataFrame,
    schema: TableSchema,
    params: ValidationParams,
    *,
    expect_text: bool,
    non_null: tuple[str, ...] = (),
    labels: Sequence[str] = (),
    now: pd.Timestamp,
) -> list[Rule]:
    """The expectation suite of one canonical table, fitted to the columns it has; `labels`
    are the label columns of the table's models (those the table lacks are not judged)."""
    telemetry.disable()
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    expect = gx.expectations
    ident = schema.id_column
    rules: list[Rule] = []

    def add(name: str, column: str | None, severity: Severity, expectation: Any, *inv: str) -> None:
        rules.append(Rule(name, column, severity, expectation, inv))

    def add_present(column: str, key: str) -> None:
        add(
            f"column `{column}` present: `{schema.name}.validation.{key}` in"
            f" params.yaml names it; map it in the source or remove that entry",
            column,
            "critical",
            expect.ExpectColumnToExist(column=column),
        )

    for column in schema.core_columns:
        add(
            "required column present", column, "critical", expect.ExpectColumnToExist(column=column)
        )
    for column in frame.columns:
        dtype = schema.dtype_of(column)
        if dtype is not None and not is_metadata(column):
            add(
                f"dtype is {dtype}",
                column,
                "critical",
                expect.ExpectColumnValuesToBeOfType(column=column, type_=_GX_TYPE[dtype]),
            )
    add(
        f"row count between {params.min_rows} and {params.max_rows}",
        None,
        "critical",
        expect.ExpectTableRowCountToBeBetween(min_value=params.min_rows, max_value=params.max_rows),
    )
    if expect_text and schema.text_column:
        add(
            "text not all empty",
            schema.text_column,
            "critical",
            expect.ExpectColumnUniqueValueCountToBeBetween(column=schema.text_column, min_value=1),
        )
    for marker in (c for c in frame.columns if c.startswith(CONFLICT_PREFIX)):
        column = marker.removeprefix(CONFLICT_PREFIX)
        rules.append(
            Rule(
                f"one {column} per id",
                column,
                "critical",
                expect.ExpectColumnValuesToBeNull(column=marker),
                (marker,),
                observe=partial(_observe_conflicts, column),
            )
        )
    minimum = params.labels.min_completeness
    for label in (c for c in dict.fromkeys(labels) if c in frame and minimum > 0):
        rules.append(
            Rule(
                f"label on at least {minimum:.0%} of the rows",
                label,
                "critical",
                expect.ExpectColumnValuesToNotBeNull(column=label, mostly=minimum),
                observe=partial(_observe_completeness, minimum),
            )
        )
    for column, vocabulary in (params.vocabularies or {}).items():
        if column not in frame:
            add_present(column, "vocabularies")
        else:
            add(
                "value in the configured vocabulary",
                column,
                "row",
                expect.ExpectColumnValuesToBeInSet(column=column, value_set=list(vocabulary)),
                column,
            )

    add("id not null", ident, "row", expect.ExpectColumnValuesToNotBeNull(column=ident))
    add("id unique", ident, "row", expect.ExpectColumnValuesToBeUnique(column=ident), ident)
    for column in (c for c in non_null if c in frame):
        marker = unparsed_column(column)
        # A cell that failed to parse is reported by its parse rule, with its raw text; here
        # only cells that were empty in the export.
        condition = Column(marker).is_null() if marker in frame else None
        add(
            "value present",
            column,
            "row",
            expect.ExpectColumnValuesToNotBeNull(column=column, row_condition=condition),
        )
    for marker in (c for c in frame.columns if c.startswith(UNPARSED_PREFIX)):
        column = marker.removeprefix(UNPARSED_PREFIX)
        word = _DTYPE_WORDS.get(schema.dtype_of(column) or "", "the declared type")
        add(
            f"value parses as {word}",
            column,
            "row",
            expect.ExpectColumnValuesToBeNull(column=marker),
            marker,
        )
    for later, earlier, name in _TIME_ORDER:
        if later in frame and earlier in frame:
            add(
                f"not {name}",
                later,
                "row",
                expect.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=later,
                    column_B=earlier,
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                ),
                later,
                earlier,
            )
    for column in (c for c in _PAST_ONLY if c in frame):
        add(
            "not in the future",
            column,
            "row",
            expect.ExpectColumnValuesToBeBetween(column=column, max_value=now),
            column,
        )
    counts = dict.fromkeys(c for c in schema.non_negative_columns if c in frame)
    for column in params.non_negative:
        if column not in frame:
            add_present(column, "non_negative")
        else:
            counts[column] = None
    for column in counts:
        add(
            "not negative",
            column,
            "row",
            expect.ExpectColumnValuesToBeBetween(column=column, min_value=0),
            column,
        )
    # Ticket text and resolution notes are prose, held to the text limit; any other text
    # column is a field value.
    prose = [c for c in (schema.text_column, *schema.prose_columns) if c and c in frame]
    for column in prose:
        add(
            f"text at most {params.max_text_chars} characters",
            column,
            "row",
            expect.ExpectColumnValueLengthsToBeBetween(
                column=column, max_value=params.max_text_chars
            ),
        )
    texts = [c for c in frame.columns if not is_metadata(c) and is_text_column(frame[c])]
    for column in (c for c in texts if c not in prose):
        add(
            f"at most {params.max_field_chars} characters",
            column,
            "row",
            expect.ExpectColumnValueLengthsToBeBetween(
                column=column, max_value=params.max_field_chars
            ),
            column,
        )
    escape = params.formulas == "escape"
    for column in texts:
        rules.append(
            Rule(
                "not formula-like",
                column,
                "warning" if escape else "row",
                expect.ExpectColumnValuesToNotMatchRegex(column=column, regex=FORMULA_PATTERN),
                (column,),
                escapes=escape,
            )
        )
    for number, rule in enumerate(rules):
        rule.expectation.meta = {"rule": number}
    return rules


def _run(frame: pd.DataFrame, table: str, rules: list[Rule]) -> list[Any]:
    telemetry.disable()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas(f"{table}_source")
        .add_dataframe_asset(name=table)
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=f"{table}_suite")
    for rule in rules:
        suite.add_expectation(rule.expectation)
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    by_rule: dict[int, Any] = {r.expectation_config.meta["rule"]: r for r in result.results}
    return [by_rule[number] for number in range(len(rules))]


def _shown(column: str) -> str:
    """A column as a person knows it: metadata columns by the column they are about."""
    for prefix in (UNPARSED_PREFIX, CONFLICT_PREFIX):
        column = column.removeprefix(prefix)
    return column


def _example(frame: pd.DataFrame, ident: str, row: int, columns: tuple[str, ...]) -> str:
    label = frame.at[row, ident] if ident in frame else pd.NA
    record = frame.at[row, SOURCE_ROW] if SOURCE_ROW in frame else row + 1
    where = f"{ident}={label}" if pd.notna(label) else f"record {record}"
    shown = ", ".join(
        f"{_shown(c)}={_short(frame.at[row, c])}" for c in columns if c != ident and c in frame
    )
    return f"{where} ({shown})" if shown else where


def _short(value: object, limit: int = 60) -> str:
    if isinstance(value, np.generic):  # numpy 2 shows np.int64(-3) otherwise
        value = value.item()
    text = repr(value.isoformat() if isinstance(value, pd.Timestamp) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_table(
    frame: pd.DataFrame,
    schema: TableSchema,
    params: ValidationParams,
    *,
    source: str,
    expect_text: bool,
    non_null: tuple[str, ...] = (),
    labels: Sequence[str] = (),
    now: pd.Timestamp | None = None,
) -> ValidationOutcome:
    """Run the suite; split rows into valid and quarantined; never raises on bad data.

    `labels`: the label columns of the table's models, judged for completeness (overall and
    per period) and appearance; one the table lacks is not judged here."""
    frame = frame.reset_index(drop=True)
    now = now if now is not None else pd.Timestamp.now()
    labels = tuple(c for c in dict.fromkeys(labels) if c in frame)
    rules = build_suite(
        frame, schema, params, expect_text=expect_text, non_null=non_null, labels=labels, now=now
    )
    raw_results = _run(frame, schema.name, rules)

    reasons: dict[int, list[str]] = {}
    results: list[RuleResult] = []
    to_escape: dict[int, tuple[str, list[int]]] = {}  # result number: column, rows
    for rule, raw in zip(rules, raw_results, strict=True):
        detail = raw.result or {}
        failed_rows: list[int] = list(detail.get("unexpected_index_list") or [])
        info = raw.exception_info or {}
        error = info.get("exception_message") if info.get("raised_exception") else None
        success = bool(raw.success) and not error
        # A row rule that failed without naming rows (GX could not evaluate it, e.g. a date
        # rule on a text column) judged nothing: the table cannot pass on it.
        unexplained = not success and not failed_rows
        severity: Severity = "critical" if error or unexplained else rule.severity
        if unexplained and not error and rule.severity != "critical":
            error = f"failed without naming rows ({_short(detail, 200)})"
        examples: tuple[str, ...] = ()
        if not success:
            examples = tuple(
                _example(frame, schema.id_column, row, rule.involved)
                for row in failed_rows[:MAX_EXAMPLES]
            )
        if severity == "row":
            for row in failed_rows:
                reasons.setdefault(row, []).append(_reason(rule, frame, row))
        if severity == "warning" and rule.escapes and failed_rows:
            to_escape[len(results)] = (str(rule.column), failed_rows)
        observed = detail.get("observed_value")
        if error:
            said = f"could not be evaluated: {error}"
        elif rule.observe is not None:
            said = rule.observe(detail)
        else:
            said = "observed " + str(observed) if observed is not None else ""
        results.append(
            RuleResult(
                name=rule.name,
                column=rule.column,
                severity=severity,
                success=success,
                failed_count=len(failed_rows) if severity != "critical" else int(not success),
                examples=examples,
                expectation=type(rule.expectation).__name__,
                observed=said,
            )
        )
    # Over time, once the time column is one (a wrong dtype already stops the table).
    if pd.api.types.is_datetime64_any_dtype(frame.get(schema.time_column)):
        for label in labels:
            results.append(label_completeness_by_period(frame, schema, label, params.labels))
            results.append(label_appearance(frame, schema, label, params.labels))

    bad = frame.index.isin(list(reasons))
    clean = frame.loc[~bad, [c for c in frame.columns if not is_metadata(c)]].copy()
    escaped = 0
    for number, (column, rows) in to_escape.items():
        kept = [row for row in rows if not bad[row]]
        clean.loc[kept, column] = clean.loc[kept, column].map(io.escape_formula)
        escaped += len(kept)
        results[number] = replace(
            results[number],
            observed=f"{len(kept)} cells escaped with a leading ' in the validated table"
            + (f", {len(rows) - len(kept)} in quarantined rows" if len(kept) < len(rows) else ""),
        )
    report = ValidationReport(
        table=schema.name,
        source=source,
        rows=len(frame),
        results=tuple(results),
        quarantined_rows=len(reasons),
        max_quarantine_share=params.max_quarantine_share,
        checked_at=pd.Timestamp.now().isoformat(timespec="seconds"),
        escaped_cells=escaped,
    )
    quarantine = frame.loc[bad].copy()
    quarantine.insert(0, QUARANTINE_REASON, ["; ".join(reasons[row]) for row in quarantine.index])
    return ValidationOutcome(report, clean.reset_index(drop=True), quarantine)


def _reason(rule: Rule, frame: pd.DataFrame, row: int) -> str:
    values = ", ".join(f"{_shown(c)}={_short(frame.at[row, c], 40)}" for c in rule.involved)
    column = f"{rule.column}: " if rule.column else ""
    return f"{column}{rule.name}" + (f" ({values})" if values else "")


# ---------------------------------------------------------------- checks of the table over time


@dataclass(frozen=True)
class Periods:
    """The periods label completeness is judged in: calendar months when the open times touch
    `MONTHS_FOR_CALENDAR` months or more, else ten equal slices of their range."""

    unit: str  # a period, in words
    units: str
    number: pd.Series  # period of each row, 0 the oldest; NA where the row has no time
    names: tuple[str, ...]

    def count(self, number: int) -> str:
        return f"{number} {self.unit if number == 1 else self.units}"

    @classmethod
    def of(cls, times: pd.Series) -> Periods | None:
        known = times.dropna()
        if known.empty:
            return None
        first, last = known.min(), known.max()
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        if months >= MONTHS_FOR_CALENDAR:
            number = (times.dt.year - first.year) * 12 + times.dt.month - first.month
            start = first.to_period("M")
            names = tuple(str(start + k) for k in range(months))
            return cls("month", "months", number.astype("Int64"), names)
        span = last - first
        slices = TENTHS if span > pd.Timedelta(0) else 1
        edges = [first + span * k / TENTHS for k in range(TENTHS + 1)]
        position = (times - first) / span * TENTHS if slices > 1 else (times - first).dt.days
        number = np.floor(position.astype(float)).clip(upper=slices - 1)
        names = tuple(
            f"{edges[k]:%Y-%m-%d %H:%M} to {edges[k + 1]:%Y-%m-%d %H:%M}" for k in range(slices)
        )
        number = number.astype("Int64")
        return cls("tenth of the time range", "tenths of the time range", number, names)


def label_completeness_by_period(
    frame: pd.DataFrame, schema: TableSchema, label: str, rules: LabelValidationParams
) -> RuleResult:
    """Critical: the share of rows holding `label` in each period (see `Periods`). The newest
    period is exempt (its open tickets have no final value yet), and periods with fewer than
    `min_period_rows` rows are too small to judge."""
    minimum = rules.min_period_completeness
    periods = Periods.of(frame[schema.time_column])
    unit = periods.unit if periods else "period"
    name = f"label on at least {minimum:.0%} of the rows of each {unit} (the newest exempt)"

    def result(success: bool, observed: str, examples: tuple[str, ...] = ()) -> RuleResult:
        expectation = "completeness per period (pandas)"
        return RuleResult(
            name, label, "critical", success, int(not success), examples, expectation, observed
        )

    if periods is None:
        return result(True, "not judged: no open times")
    present = frame[label].notna()
    stats = (
        pd.DataFrame({"period": periods.number, "present": present})
        .dropna(subset=["period"])
        .groupby("period")["present"]
        .agg(["size", "sum"])
    )
    newest = int(stats.index.max())
    exempt = (
        f"the newest {unit} ({periods.names[newest]}) is exempt: its open tickets have no"
        " final value yet"
    )
    judged = stats[(stats.index != newest) & (stats["size"] >= rules.min_period_rows)]
    small = len(stats) - 1 - len(judged)
    small_note = (
        f"; {periods.count(small)} with fewer than {rules.min_period_rows} rows not judged"
        if small
        else ""
    )
    share = judged["sum"] / judged["size"]
    low = share[share < minimum]
    if low.empty:
        lowest = (
            f"lowest {share.min():.2%} ({periods.names[int(share.idxmin())]}) of"
            f" {periods.count(len(judged))} judged"
            if len(judged)
            else f"no {unit} judged"
        )
        return result(True, f"{lowest}{small_note}; {exempt}")
    listed = ", ".join(
        f"{periods.names[int(p)]}: {_share(int(judged.at[p, 'sum']), int(judged.at[p, 'size']))}"
        for p in low.index[:MAX_EXAMPLES]
    )
    more = f" and {len(low) - MAX_EXAMPLES} more" if len(low) > MAX_EXAMPLES else ""
    observed = (
        f"below in {len(low)} of {periods.count(len(judged))} judged: {listed}{more}"
        f"{small_note}; {exempt}"
    )
    missing = periods.number.isin(list(low.index)).fillna(False).astype(bool) & ~present
    examples = tuple(
        _example(frame, schema.id_column, row, (schema.time_column,))
        for row in frame.index[missing.to_numpy()][:MAX_EXAMPLES]
    )
    return result(False, observed, examples)


def label_appearance(
    frame: pd.DataFrame, schema: TableSchema, label: str, rules: LabelValidationParams
) -> RuleResult:
    """Warning: label values seen only among the newest rows (by open time), or no longer
    seen there though their earlier rate predicts `min_count` rows or more."""
    time = schema.time_column
    share = rules.newest_share
    name = f"no label value only in, or missing from, the newest {share:.0%} of the rows"

    def result(success: bool, found: list[str], observed: str) -> RuleResult:
        examples = tuple(found[:MAX_EXAMPLES])
        expectation = "label values over time (pandas)"
        return RuleResult(
            name, label, "warning", success, len(found), examples, expectation, observed
        )

    known = frame.loc[frame[time].notna() & frame[label].notna(), [time, label]]
    ordered = known.sort_values(time, kind="stable")
    if ordered.empty:
        return result(True, [], "not judged: no labelled rows with an open time")
    cut = ordered[time].iloc[min(int(len(ordered) * (1 - share)), len(ordered) - 1)]
    newest, before = ordered[ordered[time] >= cut], ordered[ordered[time] < cut]
    if before.empty:
        return result(True, [], "not judged: every labelled row has the same open time")
    values_new, values_before = newest[label].astype(str), before[label].astype(str)
    counts_new, counts_before = values_new.value_counts(), values_before.value_counts()
    appeared = counts_new[
        (counts_new >= rules.min_count) & ~counts_new.index.isin(counts_before.index)
    ]
    expected = (counts_before * (len(newest) / len(before))).sort_values(ascending=False)
    vanished = expected[(expected >= rules.min_count) & ~expected.index.isin(counts_new.index)]
    first_seen = newest[time].groupby(values_new).min()
    last_seen = before[time].groupby(values_before).max()
    found = [
        f"new: {value!r} on {count} of the newest rows, first opened {first_seen[value]:%Y-%m-%d}"
        for value, count in appeared.items()
    ] + [
        f"gone: {value!r} on {counts_before[value]} earlier rows, last opened"
        f" {last_seen[value]:%Y-%m-%d}, about {count:.0f} expected among the newest"
        for value, count in vanished.items()
    ]
    observed = (
        f"the newest {share:.0%}: {len(newest):,} labelled rows opened from {cut:%Y-%m-%d %H:%M};"
        f" {len(appeared)} values seen only there, {len(vanished)} no longer seen there"
    )
    if found:
        observed += (
            " (a model trained before a new value has never seen it; a value gone may be a"
            " team or category renamed or retired)"
        )
    return result(not found, found, observed)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2733}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #dde3ea;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f6f9}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.warn{color:#b26a00;font-weight:600}.note{color:#5b4a00;font-weight:600}
code{background:#f3f6f9;padding:0 .2rem}
.verdict{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.pass{background:#e6f4ea}.fail{background:#fdecea}ul{margin:0;padding-left:1.1rem}
"""
_STATUS = {
    "critical": '<span class="bad">FAILED</span>',
    "row": '<span class="warn">quarantined</span>',
    "warning": '<span class="note">warning</span>',
}


def render_html(report: ValidationReport) -> str:
    """A static page with inline CSS: it renders the same with or without a network."""
    esc = html.escape
    verdict = "pass" if report.passed else "fail"
    rows = []
    # Failures first: critical, then quarantining rules, then warnings; passed rules keep the
    # suite's order.
    ordered = sorted(report.results, key=lambda r: (r.success, _SEVERITY_ORDER[r.severity]))
    for r in ordered:
        status = '<span class="ok">passed</span>' if r.success else _STATUS[r.severity]
        examples = "".join(f"<li><code>{esc(e)}</code></li>" for e in r.examples)
        rows.append(
            f"<tr><td>{status}</td><td>{esc(r.severity)}</td><td>{esc(r.column or '(table)')}</td>"
            f"<td>{esc(r.name)}<br><small>{esc(r.expectation)}</small></td>"
            f"<td>{r.failed_count if r.severity != 'critical' else ''}</td>"
            f"<td>{esc(r.observed)}<ul>{examples}</ul></td></tr>"
        )
    summary = esc(report.summary()).replace("\n", "<br>")
    checked = f"checked {esc(report.checked_at)} &middot;" if report.checked_at else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Validation of {esc(report.table)}</title><style>{_CSS}</style></head>
<body><h1>Validation of <code>{esc(report.table)}</code></h1>
<p>Source: <code>{esc(report.source)}</code> &middot; {checked}
{report.rows} rows &middot; {report.quarantined_rows} quarantined
({report.quarantine_share:.2%}, limit {report.max_quarantine_share:.2%}) &middot;
{len(report.warnings)} warnings (never fail the table) &middot;
{report.escaped_cells} formula-like cells escaped</p>
<div class="verdict {verdict}">{summary}</div>
<table><thead><tr><th>status</th><th>severity</th><th>column</th><th>rule</th>
<th>rows</th><th>details and examples</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
