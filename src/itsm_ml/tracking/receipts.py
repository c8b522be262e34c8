"""Receipts: what a pipeline stage wrote into the tracking store, as files DVC can see.

`evaluate` registers a version and `drift` tags it, but the tracking store is no DVC output.
Without a trace DVC can see, a fresh clone (no `mlflow.db`, reports committed, models
byte-identical once retrained) skips `evaluate`, and `drift` then looks up a version that
was never registered. Each of those stages writes a receipt under `models/registry/` (not in
git: run ids differ on every machine) naming the run it wrote to; the next stage depends on
it, so a new registration re-runs drift and the gate. `prune_stale` deletes the receipts
whose runs the current store does not hold, so DVC runs those stages again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from itsm_ml import io

FOLDER = Path("models") / "registry"
STAGES = ("evaluate", "drift")


def receipt_path(root: Path, model: str, stage: str) -> Path:
    return root / FOLDER / model / f"{stage}.json"


def write_receipt(root: Path, model: str, stage: str, content: dict[str, Any]) -> None:
    from itsm_ml.tracking.registry import tracking_uri

    io.write_json({**content, "tracking_uri": tracking_uri(root)}, receipt_path(root, model, stage))


def prune_stale(root: Path) -> list[Path]:
    """Delete the receipts naming a run the tracking store does not hold (a new or reset
    store, another MLFLOW_TRACKING_URI); returns what was deleted."""
    receipts = sorted((root / FOLDER).glob("*/*.json"))
    with_runs: list[tuple[Path, str]] = []
    for path in receipts:
        run = _run_of(path)
        if run is not None:
            with_runs.append((path, run))
    if not with_runs:
        return []
    from itsm_ml.tracking.registry import tracking_uri

    uri = tracking_uri(root)
    store_file = _sqlite_file(uri)
    if store_file is not None and not store_file.exists():
        stale = [path for path, _ in with_runs]
    else:
        present = _runs_held(root, {run for _, run in with_runs})
        stale = [path for path, run in with_runs if run not in present]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _run_of(path: Path) -> str | None:
    """The run a receipt names; None for a receipt of a skipped model (nothing in the store),
    or an unreadable one, which is stale by any measure."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    run = content.get("run_id") if isinstance(content, dict) else ""
    return str(run) if run is not None else None


def _sqlite_file(uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


def _runs_held(root: Path, runs: set[str]) -> set[str]:
    from mlflow.exceptions import MlflowException

    from itsm_ml.tracking.registry import client

    store = client(root)
    held = set()
    for run in runs:
        if not run:
            continue
        try:
            store.get_run(run)
        except MlflowException:
            continue
        held.add(run)
    return held
