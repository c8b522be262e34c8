"""`itsm-ml monitor`: which table it watches, and the exit codes schedulers act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from itsm_ml.cli import app
from itsm_ml.errors import ItsmMlError
from itsm_ml.monitoring import watch as monitoring
from itsm_ml.monitoring.watch import ALERT, FINE, NO_CHAMPION, Watch, current_table

runner = CliRunner()
PARAMS = """\
tickets: {source: {kind: generator}}
changes: {source: {kind: generator}}
"""


def window(status: str) -> dict[str, Any]:
    return {
        "window": "2025-12-01 to 2025-12-08",
        "rows": 500,
        "has_verdict": True,
        "drifted": status == ALERT,
        "drifted_features": ["channel"] if status == ALERT else [],
        "flagged": status == ALERT,
        "alert": status == ALERT,
        "performance": {"estimated": 0.71},
        "performance_check": {
            "metric": "accuracy",
            "rows": 480,
            "basis": "closed in window",
            "estimated": 0.7,
            "realised": 0.5 if status == ALERT else 0.69,
            "has_verdict": True,
            "drifted": status == ALERT,
        },
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "params.yaml").write_text(PARAMS)
    monkeypatch.setattr(monitoring, "current_table", lambda *args: pd.DataFrame())
    return tmp_path


def run(project: Path, monkeypatch: pytest.MonkeyPatch, statuses: dict[str, Any]) -> Any:
    def fake_watch(params: Any, item: str, root: Path, current: Any) -> Watch:
        status = statuses[item]
        if isinstance(status, Exception):
            raise status
        if status == NO_CHAMPION:
            return Watch(item, f"m-{item}", None, status)
        return Watch(item, f"m-{item}", "3", status, [window(status)])

    monkeypatch.setattr(monitoring, "watch", fake_watch)
    return runner.invoke(
        app, ["monitor", *statuses, "--params", str(project / "params.yaml")], terminal_width=200
    )


def test_exit_0_when_every_champion_is_fine(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(project, monkeypatch, {"routing": FINE, "priority": NO_CHAMPION})
    assert result.exit_code == 0, result.output
    assert "fine" in result.output and "nothing serves" in result.output


def test_exit_3_on_a_drift_alert_naming_why(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(project, monkeypatch, {"routing": ALERT, "category": FINE})
    assert result.exit_code == 3, result.output
    assert "channel" in result.output and "accuracy below its promise" in result.output


def test_exit_1_when_monitoring_itself_fails(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = ItsmMlError("m-category v2: no reference profile `drift/reference/category.joblib`")
    result = run(project, monkeypatch, {"routing": ALERT, "category": broken})
    assert result.exit_code == 1  # a broken monitor outranks an alert
    assert "no reference profile" in result.output
    assert "model: itsm-category | status: error" in result.output


def test_the_current_table_must_be_a_canonical_parquet(tmp_path: Path) -> None:
    with pytest.raises(ItsmMlError, match=r"export\.csv: give current tickets as a canonical"):
        current_table(tmp_path, "tickets", tmp_path / "export.csv")
    with pytest.raises(ItsmMlError, match="no current changes to watch"):
        current_table(tmp_path, "changes")
