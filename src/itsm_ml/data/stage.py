"""The pipeline's wiring: where each stage reads and writes, in one place.

Stage scripts under ``pipelines/`` and the ``itsm-ml`` command both call these functions, so
a file layout change happens here only. Logic lives in the modules they call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from itsm_ml import io
from itsm_ml.config import CsvFileSource, Params, ValidationParams
from itsm_ml.data import sources
from itsm_ml.data.split import split_table
from itsm_ml.data.validation import ValidationOutcome, ValidationReport, render_html, validate_table
from itsm_ml.errors import ValidationFailed
from itsm_ml.results import StageResult
from itsm_ml.schemas import schema_for


@dataclass(frozen=True)
class Layout:
    """Where a table's files live under the project root."""

    root: Path
    table: str

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / f"{self.table}.parquet"

    @property
    def validated(self) -> Path:
        return self.root / "data" / "interim" / f"{self.table}.parquet"

    @property
    def quarantine(self) -> Path:
        return self.root / "data" / "quarantine" / f"{self.table}.csv"

    @property
    def validation_report(self) -> Path:
        return self.root / "reports" / "validation" / f"{self.table}.json"

    @property
    def validation_metrics(self) -> Path:
        return self.root / "reports" / "validation" / f"{self.table}.metrics.json"

    def split(self, part: str) -> Path:
        return self.root / "data" / "processed" / self.table / f"{part}.parquet"

    def read_splits(self) -> dict[str, pd.DataFrame]:
        """The train, valid and test splits, read from their files."""
        return {part: io.read_table(self.split(part)) for part in ("train", "valid", "test")}

    @property
    def split_summary(self) -> Path:
        return self.root / "reports" / "data" / f"{self.table}_split.json"

    @property
    def profile(self) -> Path:
        return self.root / "reports" / "data" / f"{self.table}.json"

    @property
    def profile_plot(self) -> Path:
        return self.root / "reports" / "data" / f"{self.table}.png"


def ingest(params: Params, table: str, root: Path) -> pd.DataFrame:
    source = params.table(table).source
    if isinstance(source, CsvFileSource):
        source = source.model_copy(update={"path": str(source.resolved_path(root))})
    frame = sources.load_table(table, source)
    io.write_table(frame, Layout(root, table).raw)
    return frame


def validate_loaded(
    table: str,
    source: sources.AnySource,
    frame: pd.DataFrame,
    rules: ValidationParams,
    now: pd.Timestamp | None = None,
    *,
    labels: Sequence[str] = (),
) -> ValidationOutcome:
    """Validate a table loaded from `source`, demanding what that kind of source provides.

    `labels`: the label columns of the table's models (`catalog(params).of_table(table)`,
    each entry's `label`), judged for completeness and appearance; by default none."""
    traits = sources.traits(table, source)
    if rules.vocabularies is None:
        rules = rules.model_copy(update={"vocabularies": traits.vocabularies})
    return validate_table(
        frame,
        schema_for(table),
        rules,
        source=sources.describe(source),
        expect_text=traits.has_text,
        non_null=traits.non_null,
        labels=labels,
        now=now,
    )


def write_report(report: ValidationReport, json_path: Path) -> None:
    io.write_json(report.to_dict(), json_path)
    io.write_text(render_html(report), json_path.with_suffix(".html"))


def judged_labels(params: Params, table: str) -> list[str]:
    """The labels of the table's models that completeness and appearance rules judge.
    References (a knowledge article, a problem) are left out: only the tickets linked to one
    carry it, so a sparse column is what a healthy export looks like."""
    from itsm_ml.catalog import catalog

    references = set(schema_for(table).reference_columns)
    return [e.label for e in catalog(params).of_table(table) if e.label not in references]


def validate(params: Params, table: str, root: Path) -> ValidationReport:
    """Validate the ingested table; on failure write only the report, then raise."""

    layout = Layout(root, table)
    table_params = params.table(table)
    outcome = validate_loaded(
        table,
        table_params.source,
        io.read_table(layout.raw),
        table_params.validation,
        labels=judged_labels(params, table),
    )
    # No time of checking: the report is tracked in git and must not change when the data
    # did not (DVC records when the stage ran).
    report = replace(outcome.report, checked_at=None)
    write_report(report, layout.validation_report)
    io.write_json(report.metrics(), layout.validation_metrics)
    if not report.passed:
        raise ValidationFailed(
            f"{report.summary()}\nReport: {layout.validation_report.with_suffix('.html')}"
        )
    io.write_csv_for_humans(outcome.quarantine, layout.quarantine)
    io.write_table(outcome.valid_rows, layout.validated)
    return report


def split(params: Params, table: str, root: Path) -> StageResult:
    layout = Layout(root, table)
    schema = schema_for(table)
    frame = io.read_table(layout.validated)
    result = split_table(
        frame,
        time_column=schema.time_column,
        stratify=params.split.stratify.get(table) or _first_label(params, table, frame),
        valid_share=params.split.valid_share,
        test_share=params.split.test_share,
        seed=params.split.seed,
    )
    io.write_tables({layout.split(part): frame for part, frame in result.parts().items()})
    summary = result.summary(schema.time_column)
    io.write_json(summary, layout.split_summary)
    sizes = " / ".join(f"{part} {len(frame):,}" for part, frame in result.parts().items())
    return StageResult(f"{result.method} split: {sizes}", summary)


def _first_label(params: Params, table: str, frame: pd.DataFrame) -> str | None:
    """The label of the table's first model that this export has (a model to be skipped
    must not decide how the others' data is split)."""
    from itsm_ml.catalog import catalog

    for entry in catalog(params).of_table(table):
        if entry.label in frame and frame[entry.label].notna().any():
            return entry.label
    return None


def profile(params: Params, table: str, root: Path) -> StageResult:
    from itsm_ml.data.profile import plot_profile, profile_table

    layout = Layout(root, table)
    frame = io.read_table(layout.validated)
    schema = schema_for(table)
    report = profile_table(frame, schema)
    io.write_json(report, layout.profile)
    plot_profile(frame, schema, layout.profile_plot)
    return StageResult(f"profile of {len(frame):,} rows", report)
