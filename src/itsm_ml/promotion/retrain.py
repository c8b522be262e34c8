"""`itsm-ml retrain`: the pipeline on the newest data, ending at the promotion gate.

The sources are re-read first (`dvc repro --force` on the ingest stages only): an export
overwritten in place at the same path is new data DVC cannot see by its params. When the
ingested tables hash as before, DVC skips every later stage and nothing is retrained. The
gate is the pipeline's last stage, so every model retrained gets a ledgered decision; a
refusal is a decision, not a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsm_ml.data.stage import Layout
from itsm_ml.promotion.stage import ledger
from itsm_ml.schemas import TABLES
from itsm_ml.tracking.receipts import prune_stale


@dataclass(frozen=True)
class Retraining:
    """How a retraining ended: the pipeline's exit code, the decisions it ledgered, and the
    tables whose new data failed validation (nothing downstream of them ran)."""

    returncode: int
    decisions: list[dict[str, Any]]
    rejected: list[str]

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


def retrain(root: Path, echo: Callable[[str], None] = print) -> Retraining:
    book = ledger(root)
    before = len(book.entries())
    for stale in prune_stale(root):
        echo(f"not in the tracking store: {stale.stem}@{stale.parent.name} runs again")
    commands = [
        [sys.executable, "-m", "dvc", "repro", "--force", "--single-item"]
        + [f"ingest@{table}" for table in TABLES],
        [sys.executable, "-m", "dvc", "repro"],
    ]
    returncode = 0
    for command in commands:
        echo("$ " + " ".join(["dvc", *command[3:]]))
        with subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                echo(line.rstrip("\n"))
        returncode = process.returncode
        if returncode != 0:
            break
    decisions = [e for e in book.entries()[before:] if e["event"] == "decision"]
    return Retraining(returncode, decisions, _rejected(root))


def _rejected(root: Path) -> list[str]:
    """Tables whose last validation failed (the last good table stayed in place)."""
    rejected = []
    for table in TABLES:
        path = Layout(root, table).validation_metrics
        if path.exists() and not json.loads(path.read_text()).get("passed", True):
            rejected.append(table)
    return rejected
