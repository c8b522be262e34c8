"""Entry point of every DVC stage script: arguments, params, one line of outcome, exit code.

Stage scripts under ``pipelines/`` stay two lines long: they hand a stage function to
`stage_main`, which turns an `ItsmMlError` into a one-line message and exit code 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from itsm_ml import telemetry
from itsm_ml.config import Params, load_params
from itsm_ml.errors import ItsmMlError

TABLES = ("tickets", "changes")


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
    summary = getattr(outcome, "summary", None)
    if callable(summary):
        return str(summary())
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
