"""Entry point of every DVC stage script: arguments, params, one line of outcome, exit code.

Stage scripts under ``pipelines/`` stay two lines long: they hand a stage function to
`stage_main`, which turns an `ItsmMlError` into a one-line message and exit code 1 (5 when
the export itself is unreadable or fails validation).
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
from itsm_ml.errors import ItsmMlError, SourceError, ValidationFailed
from itsm_ml.schemas import TABLES

REJECTED = "REJECTED"
EXIT_DATA_REJECTED = 5  # the new export cannot be read or failed validation; nothing ran after


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
    except (SourceError, ValidationFailed) as exc:
        # The export itself is unusable: `itsm-ml retrain` reads this word in this run's log
        # (not a report a previous run left) to tell rejected data from a failure.
        print(f"[{stage} {name}] {REJECTED}: {exc}", file=sys.stderr)
        return EXIT_DATA_REJECTED
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
    return "done"
