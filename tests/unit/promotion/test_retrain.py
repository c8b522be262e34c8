"""`itsm-ml retrain` judges what this run did, never a report an earlier run left."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest

from itsm_ml.promotion import retrain as retraining

ROOT = Path(__file__).parents[3]


class _FakeDvc:
    """Popen stand-in: each command prints its lines and exits with its code."""

    runs: ClassVar[list[tuple[list[str], int]]] = []

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        lines, self.returncode = self.runs.pop(0)
        self.stdout = iter(line + "\n" for line in lines)

    def __enter__(self) -> _FakeDvc:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setattr(retraining.subprocess, "Popen", _FakeDvc)
    return tmp_path


def _stale_failed_validation(root: Path) -> None:
    path = root / "reports/validation/tickets.metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"passed": False}))


def test_rejected_export_is_read_from_this_runs_log(root: Path) -> None:
    _FakeDvc.runs = [
        (["[ingest tickets] REJECTED: export.csv.gz: the gzip stream is cut short"], 1)
    ]
    result = retraining.retrain(root, echo=lambda line: None)
    assert not result.succeeded
    assert result.rejected == ["tickets"]


def test_a_failure_after_an_earlier_rejection_is_not_a_rejection(root: Path) -> None:
    _stale_failed_validation(root)  # what the previous run left
    _FakeDvc.runs = [
        ([], 0),
        (["[train routing] FAILED: models.routing.kind: 'binary'", "ERROR: failed"], 1),
    ]
    result = retraining.retrain(root, echo=lambda line: None)
    assert not result.succeeded
    assert result.rejected == []


def test_a_run_that_succeeds_rejects_nothing_whatever_an_earlier_report_says(root: Path) -> None:
    _stale_failed_validation(root)
    _FakeDvc.runs = [([], 0), (["Data and pipelines are up to date."], 0)]
    result = retraining.retrain(root, echo=lambda line: None)
    assert result.succeeded and result.rejected == [] and result.decisions == []


@pytest.mark.parametrize(
    ("line", "table"),
    [
        ("[validate changes] REJECTED: table changes: rule 'id unique' failed", "changes"),
        ("[ingest tickets] REJECTED: x.csv: file not found", "tickets"),
        ("[train routing] REJECTED: something", None),  # only ingest and validate reject data
        ("[validate incidents] REJECTED: not a table of ours", None),
        ("  [validate tickets] REJECTED: quoted in another message", None),
    ],
)
def test_only_ingest_and_validate_lines_name_a_rejected_table(line: str, table: str | None) -> None:
    assert retraining._rejected_table(line) == table
