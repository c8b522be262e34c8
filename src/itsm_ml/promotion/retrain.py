"""`itsm-ml retrain`: the pipeline on the newest data, ending at the promotion gate.

The sources are re-read first (`dvc repro --force` on the ingest stages only): an export
overwritten in place at the same path is new data DVC cannot see by its params. When the
ingested tables hash as before, DVC skips every later stage and nothing is retrained. The
gate is the pipeline's last stage, so every model retrained gets a ledgered decision; a
refusal is a decision, not a failure.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsm_ml.catalog import catalog
from itsm_ml.config import load_params
from itsm_ml.promotion.registry_sync import sync
from itsm_ml.promotion.stage import ledger
from itsm_ml.runner import REJECTED
from itsm_ml.schemas import TABLES


@dataclass(frozen=True)
class Retraining:
    """How a retraining ended: the pipeline's exit code, the decisions it ledgered, and the
    tables whose new export this run found unreadable or invalid (nothing downstream of them
    ran)."""

    returncode: int
    decisions: list[dict[str, Any]]
    rejected: list[str]

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


def retrain(root: Path, echo: Callable[[str], None] = print) -> Retraining:
    book = ledger(root)
    before = len(book.entries())
    for stale in sync(root, catalog(load_params(root / "params.yaml"))):
        echo(f"runs again: {stale}")
    commands = [
        [sys.executable, "-m", "dvc", "repro", "--force", "--single-item"]
        + [f"ingest@{table}" for table in TABLES],
        [sys.executable, "-m", "dvc", "repro"],
    ]
    returncode = 0
    rejected: list[str] = []
    for command in commands:
        echo("$ " + " ".join(["dvc", *command[3:]]))
        with subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                echo(line.rstrip("\n"))
                table = _rejected_table(line)
                if table and table not in rejected:
                    rejected.append(table)
        returncode = process.returncode
        if returncode != 0:
            break
    decisions = [e for e in book.entries()[before:] if e["event"] == "decision"]
    return Retraining(returncode, decisions, rejected if returncode else [])


_REJECTION = re.compile(rf"^\[(?:ingest|validate) (\w+)\] {REJECTED}: ")


def _rejected_table(line: str) -> str | None:
    """The table whose export this run's ingest or validation rejected, from its log line;
    never from a report an earlier run left behind."""
    found = _REJECTION.match(line)
    return found.group(1) if found and found.group(1) in TABLES else None
