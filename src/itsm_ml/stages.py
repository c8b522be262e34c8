"""The pipeline's wiring: where each stage reads and writes, in one place.

Stage scripts under ``pipelines/`` and the ``itsm-ml`` command both call these functions, so
a file layout change happens here only. Logic lives in the modules they call.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from itsm_ml import io, sources, telemetry
from itsm_ml.config import GeneratorSource, Params, ValidationParams, load_params
from itsm_ml.errors import ItsmMlError, ValidationFailed
from itsm_ml.schemas import schema_for
from itsm_ml.split import split_table
from itsm_ml.validation import ValidationOutcome, ValidationReport, render_html, validate_table

TABLES = ("tickets", "changes")


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
    if not isinstance(source, GeneratorSource):
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
) -> ValidationOutcome:
    """Validate a table loaded from `source`, demanding what that kind of source provides."""
    traits = sources.traits(table, source)
    return validate_table(
        frame,
        schema_for(table),
        rules,
        source=sources.describe(source),
        expect_text=traits.has_text,
        non_null=traits.non_null,
        now=now,
    )


def write_report(report: ValidationReport, json_path: Path) -> None:
    io.write_json(report.to_dict(), json_path)
    io.write_text(render_html(report), json_path.with_suffix(".html"))


def validate(params: Params, table: str, root: Path) -> ValidationReport:
    """Validate the ingested table; on failure write only the report, then raise."""
    layout = Layout(root, table)
    table_params = params.table(table)
    outcome = validate_loaded(
        table, table_params.source, io.read_table(layout.raw), table_params.validation
    )
    write_report(outcome.report, layout.validation_report)
    io.write_json(outcome.report.metrics(), layout.validation_metrics)
    if not outcome.report.passed:
        raise ValidationFailed(
            f"{outcome.report.summary()}\nReport: {layout.validation_report.with_suffix('.html')}"
        )
    io.write_csv_for_humans(outcome.quarantine, layout.quarantine)
    io.write_table(outcome.valid_rows, layout.validated)
    return outcome.report


def split(params: Params, table: str, root: Path) -> dict[str, object]:
    layout = Layout(root, table)
    schema = schema_for(table)
    result = split_table(
        io.read_table(layout.validated),
        time_column=schema.time_column,
        stratify=params.split.stratify.get(table),
        valid_share=params.split.valid_share,
        test_share=params.split.test_share,
        seed=params.split.seed,
    )
    for part, frame in result.parts().items():
        io.write_table(frame, layout.split(part))
    summary = result.summary(schema.time_column)
    io.write_json(summary, layout.split_summary)
    return summary


def profile(params: Params, table: str, root: Path) -> dict[str, object]:
    from itsm_ml.profile import plot_profile, profile_table

    layout = Layout(root, table)
    frame = io.read_table(layout.validated)
    schema = schema_for(table)
    report = profile_table(frame, schema)
    io.write_json(report, layout.profile)
    plot_profile(frame, schema, layout.profile_plot)
    return report


def stage_main(
    stage: str,
    action: Callable[[Params, str, Path], object],
    argv: list[str] | None,
    *,
    item: str = "table",
    choices: tuple[str, ...] | None = TABLES,
) -> int:
    """Entry point of a DVC stage script: parse arguments, run, turn errors into exit 1."""
    parser = argparse.ArgumentParser(prog=f"pipelines/{stage}.py", description=f"DVC stage {stage}")
    only = choices[0] if choices is not None and len(choices) == 1 else None
    parser.add_argument(f"--{item}", choices=choices, required=only is None, default=only)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    telemetry.disable()
    root = args.params.resolve().parent
    name = getattr(args, item)
    started = time.perf_counter()
    try:
        outcome = action(load_params(args.params), name, root)
    except ItsmMlError as exc:
        print(f"[{stage} {name}] FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"[{stage} {name}] {_note(outcome)} ({time.perf_counter() - started:.1f} s)")
    return 0


def _note(outcome: object) -> str:
    """One line on what a stage produced, for the `dvc repro` log."""
    if isinstance(outcome, ValidationReport):
        return outcome.summary()
    if isinstance(outcome, pd.DataFrame):
        return f"{len(outcome):,} rows, {outcome.shape[1]} columns"
    if isinstance(outcome, dict) and "method" in outcome:
        sizes = " / ".join(
            f"{part} {outcome[part]['rows']:,}" for part in ("train", "valid", "test")
        )
        return f"{outcome['method']} split: {sizes}"
    if isinstance(outcome, dict) and "promotion" in outcome:
        if outcome["promotion"] is None:
            return str(outcome["note"])
        failed = [c["name"] for c in outcome["checks"] if not c["passed"]]
        if outcome["passed"]:
            return f"{outcome['model']} v{outcome['challenger']} promoted to champion"
        return f"{outcome['model']} v{outcome['challenger']} refused: {'; '.join(failed)}"
    if isinstance(outcome, dict) and "alert_windows" in outcome:
        return (
            f"{outcome['model']} v{outcome['version']}: {outcome['drifted_windows']} of"
            f" {outcome['windows']} windows drifted, {outcome['alert_windows']} alerts;"
            f" {outcome['performance_metric']} estimate off by"
            f" {outcome['estimate_mean_abs_error']:.3f} on average"
        )
    if isinstance(outcome, dict) and "band_thresholds" in outcome:
        return (
            f"{outcome['boosting_rounds']} rounds on {outcome['train_rows']:,} changes"
            f" ({outcome['train_failures']:,} failed), {len(outcome['features'])} features"
        )
    if isinstance(outcome, dict) and "auc" in outcome and "registered" in outcome:
        return (
            f"AUC {outcome['auc']:.3f}, PR-AUC {outcome['pr_auc']:.3f}, ECE {outcome['ece']:.3f};"
            f" registered {outcome['registered']} as challenger"
        )
    if isinstance(outcome, dict) and "fit_seconds" in outcome:
        return f"{outcome['classes']} classes from {outcome['train_rows']:,} tickets"
    if isinstance(outcome, dict) and "registered" in outcome:
        return (
            f"accuracy {outcome['accuracy']:.3f}, macro-F1 {outcome['macro_f1']:.3f}, "
            f"{outcome['coverage']:.0%} auto-routed at {outcome['auto_routed_precision']:.1%}; "
            f"registered {outcome['registered']} as challenger"
        )
    if isinstance(outcome, dict) and "rows" in outcome:
        return f"profile of {outcome['rows']:,} rows"
    return "done"
