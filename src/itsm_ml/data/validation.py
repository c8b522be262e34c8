"""Expectation suites as code, their runner, quarantine, and the offline report.

Two severities:
- critical rules (schema, row counts, text present) judge the table as a whole: one failure
  stops the pipeline;
- row rules (ids, parseable values, time order, vocabularies) judge single rows: offending rows
  go to quarantine with their reasons, as long as their share stays under
  ``max_quarantine_share``; above it the table is rejected as a whole.

Great Expectations evaluates every rule; this module only builds the suite and reads the
results. GX is imported when a table is validated, not when this module is imported: it takes
seconds to load and most commands never need it.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from itsm_ml import telemetry
from itsm_ml.config import ValidationParams
from itsm_ml.schemas import (
    BOOL,
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

Severity = Literal["critical", "row"]
QUARANTINE_REASON = "_quarantine_reason"
MAX_EXAMPLES = 5

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


@dataclass(frozen=True)
class Rule:
    """One expectation with what a person needs to read its result."""

    name: str
    column: str | None
    severity: Severity
    expectation: Any
    involved: tuple[str, ...] = ()  # columns shown in examples of failing rows


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
    def too_many_quarantined(self) -> bool:
        return self.quarantine_share > self.max_quarantine_share

    @property
    def passed(self) -> bool:
        return not self.critical_failures and not self.too_many_quarantined

    def summary(self) -> str:
        head = f"table {self.table} from {self.source}: {self.rows} rows"
        if self.passed:
            return (
                f"{head}, valid; {self.quarantined_rows} quarantined "
                f"({self.quarantine_share:.2%}, limit {self.max_quarantine_share:.2%})"
            )
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
        return "\n".join(lines)

    def metrics(self) -> dict[str, Any]:
        """The few numbers worth comparing between runs (`dvc metrics diff`)."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "quarantined_rows": self.quarantined_rows,
            "quarantine_share": round(self.quarantine_share, 6),
            "critical_failures": len(self.critical_failures),
            "row_rules_failed": len(self.row_failures),
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
            "results": [asdict(r) for r in self.results],
        }


@dataclass
class ValidationOutcome:
    report: ValidationReport
    valid_rows: pd.DataFrame = field(repr=False)
    quarantine: pd.DataFrame = field(repr=False)


def _describe(result: RuleResult) -> str:
    where = f"column `{result.column}`" if result.column else "table"
    count = f"{result.failed_count} rows" if result.severity == "row" else result.observed
    examples = f", e.g. {', '.join(result.examples)}" if result.examples else ""
    return f"{where}: rule '{result.name}' failed ({count}){examples}"


def build_suite(
    frame: pd.DataFrame,
    schema: TableSchema,
    params: ValidationParams,
    *,
    expect_text: bool,
    non_null: tuple[str, ...] = (),
    now: pd.Timestamp,
) -> list[Rule]:
    """The expectation suite of one canonical table, fitted to the columns it has."""
    telemetry.disable()
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    expect = gx.expectations
    ident = schema.id_column
    rules: list[Rule] = []

    def add(name: str, column: str | None, severity: Severity, expectation: Any, *inv: str) -> None:
        rules.append(Rule(name, column, severity, expectation, inv))

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
    for column, vocabulary in (params.vocabularies or {}).items():
        if column not in frame:
            add(
                f"column `{column}` present: `{schema.name}.validation.vocabularies` in"
                f" params.yaml names it; map it in the source or remove that entry",
                column,
                "critical",
                expect.ExpectColumnToExist(column=column),
            )
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
    if schema.text_column and schema.text_column in frame:
        add(
            f"text at most {params.max_text_chars} characters",
            schema.text_column,
            "row",
            expect.ExpectColumnValueLengthsToBeBetween(
                column=schema.text_column, max_value=params.max_text_chars
            ),
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


def _example(frame: pd.DataFrame, ident: str, row: int, columns: tuple[str, ...]) -> str:
    label = frame.at[row, ident]
    where = f"{ident}={label}" if pd.notna(label) else f"record {frame.at[row, SOURCE_ROW]}"
    shown = ", ".join(
        f"{c.removeprefix(UNPARSED_PREFIX)}={_short(frame.at[row, c])}"
        for c in columns
        if c != ident
    )
    return f"{where} ({shown})" if shown else where


def _short(value: object, limit: int = 60) -> str:
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
    now: pd.Timestamp | None = None,
) -> ValidationOutcome:
    """Run the suite; split rows into valid and quarantined; never raises on bad data."""
    frame = frame.reset_index(drop=True)
    now = now if now is not None else pd.Timestamp.now()
    rules = build_suite(frame, schema, params, expect_text=expect_text, non_null=non_null, now=now)
    raw_results = _run(frame, schema.name, rules)

    reasons: dict[int, list[str]] = {}
    results: list[RuleResult] = []
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
        if unexplained and not error and rule.severity == "row":
            error = f"failed without naming rows ({_short(detail, 200)})"
        examples: tuple[str, ...] = ()
        if severity == "row":
            examples = tuple(
                _example(frame, schema.id_column, row, rule.involved)
                for row in failed_rows[:MAX_EXAMPLES]
            )
            for row in failed_rows:
                reasons.setdefault(row, []).append(_reason(rule, frame, row))
        observed = detail.get("observed_value")
        results.append(
            RuleResult(
                name=rule.name,
                column=rule.column,
                severity=severity,
                success=success,
                failed_count=len(failed_rows) if severity == "row" else int(not success),
                examples=examples,
                expectation=type(rule.expectation).__name__,
                observed=f"could not be evaluated: {error}"
                if error
                else ("observed " + str(observed) if observed is not None else ""),
            )
        )

    report = ValidationReport(
        table=schema.name,
        source=source,
        rows=len(frame),
        results=tuple(results),
        quarantined_rows=len(reasons),
        max_quarantine_share=params.max_quarantine_share,
        checked_at=pd.Timestamp.now().isoformat(timespec="seconds"),
    )
    bad = frame.index.isin(list(reasons))
    clean = frame.loc[~bad, [c for c in frame.columns if not is_metadata(c)]]
    quarantine = frame.loc[bad].copy()
    quarantine.insert(0, QUARANTINE_REASON, ["; ".join(reasons[row]) for row in quarantine.index])
    return ValidationOutcome(report, clean.reset_index(drop=True), quarantine)


def _reason(rule: Rule, frame: pd.DataFrame, row: int) -> str:
    values = ", ".join(
        f"{c.removeprefix(UNPARSED_PREFIX)}={_short(frame.at[row, c], 40)}" for c in rule.involved
    )
    column = f"{rule.column}: " if rule.column else ""
    return f"{column}{rule.name}" + (f" ({values})" if values else "")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2733}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #dde3ea;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f6f9}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.warn{color:#b26a00;font-weight:600}code{background:#f3f6f9;padding:0 .2rem}
.verdict{padding:.6rem 1rem;border-radius:6px;margin:1rem 0;font-weight:600}
.pass{background:#e6f4ea}.fail{background:#fdecea}ul{margin:0;padding-left:1.1rem}
"""


def render_html(report: ValidationReport) -> str:
    """A static page with inline CSS: it renders the same with or without a network."""
    esc = html.escape
    verdict = "pass" if report.passed else "fail"
    rows = []
    # Failures first: critical, then quarantining rules; passed rules keep the suite's order.
    ordered = sorted(report.results, key=lambda r: (r.success, r.severity != "critical"))
    for r in ordered:
        if r.success:
            status = '<span class="ok">passed</span>'
        elif r.severity == "row":
            status = '<span class="warn">quarantined</span>'
        else:
            status = '<span class="bad">FAILED</span>'
        examples = "".join(f"<li><code>{esc(e)}</code></li>" for e in r.examples)
        rows.append(
            f"<tr><td>{status}</td><td>{esc(r.severity)}</td><td>{esc(r.column or '(table)')}</td>"
            f"<td>{esc(r.name)}<br><small>{esc(r.expectation)}</small></td>"
            f"<td>{r.failed_count if r.severity == 'row' else ''}</td>"
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
({report.quarantine_share:.2%}, limit {report.max_quarantine_share:.2%})</p>
<div class="verdict {verdict}">{summary}</div>
<table><thead><tr><th>status</th><th>severity</th><th>column</th><th>rule</th>
<th>rows</th><th>details and examples</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>
"""
