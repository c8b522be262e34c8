"""The early-warning stage and `itsm-ml watch` on a project: the validated tickets' volume
watched, the reports written, the newest warnings shown, the exit code saying if any."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from itsm_ml import cli, io
from itsm_ml.cli import app
from itsm_ml.config import load_params
from itsm_ml.early_warning.stage import early_warning
from tests.fakes.servicenow import FakeServiceNow
from tests.unit.early_warning.test_watch import tickets

runner = CliRunner()


def project(tmp_path: Path) -> Path:
    params = {
        "tickets": {"source": {"kind": "generator"}},
        "changes": {"source": {"kind": "generator"}},
        "early_warning": {"volume": {"by": ["service"], "min_tickets": 20}, "plots": 1},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    io.write_table(tickets(), tmp_path / "data" / "interim" / "tickets.parquet")
    return tmp_path / "params.yaml"


def test_the_stage_writes_every_warning_and_the_busiest_figure(tmp_path: Path) -> None:
    params_path = project(tmp_path)
    summary = early_warning(load_params(params_path), "history", tmp_path)
    folder = tmp_path / "reports" / "early_warning"
    warnings = json.loads((folder / "warnings.json").read_text())
    assert summary["warnings"] == len(warnings) >= 1
    assert (
        len(summary["figures"]) == 1 and (folder / next(iter(summary["figures"].values()))).exists()
    )


def test_watch_shows_the_newest_warnings_and_exits_3_when_there_are_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params_path = project(tmp_path)
    monkeypatch.setattr(cli.out, "width", 200)  # the table whole, as a wide terminal shows it
    result = runner.invoke(app, ["watch", "--params", str(params_path), "--last", "5"])
    assert result.exit_code == 3, result.output
    newest = json.loads((tmp_path / "reports/early_warning/warnings.json").read_text())[-1]
    assert newest["id"] in result.output and "per week" in result.output
    later = runner.invoke(app, ["watch", "--params", str(params_path), "--since", "2030-01-01"])
    assert later.exit_code == 0, later.output
    bad = runner.invoke(app, ["watch", "--params", str(params_path), "--since", "soon"])
    assert bad.exit_code == 2 and "not a time" in bad.output


def writing_back(tmp_path: Path, snow: FakeServiceNow, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project, with write-back to `snow` and its credentials in the environment."""
    params_path = project(tmp_path)
    params = yaml.safe_load(params_path.read_text())
    params["serving"] = {"writeback": {"url": snow.url}}
    params_path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("ITSM_ML_ITSM_USER", snow.user)
    monkeypatch.setenv("ITSM_ML_ITSM_PASSWORD", snow.password)
    return params_path


def test_watch_opens_one_incident_per_warning_however_often_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeServiceNow() as snow:
        params_path = writing_back(tmp_path, snow, monkeypatch)
        monkeypatch.setattr(cli.out, "width", 200)
        command = ["watch", "--params", str(params_path), "--write-back"]
        first = runner.invoke(app, command)
        assert first.exit_code == 3, first.output
        warnings = json.loads((tmp_path / "reports/early_warning/warnings.json").read_text())
        opened = {row["correlation_id"]: row for row in snow.records()}
        assert set(opened) == {w["id"] for w in warnings[-10:]}
        newest = opened[warnings[-1]["id"]]
        assert newest["short_description"].startswith("Early warning: service=")
        assert newest["assignment_group"] == warnings[-1]["owner_group"]
        assert "opened" in first.output
        again = runner.invoke(app, command)
        assert again.exit_code == 3 and "already open" in again.output
        assert len(snow.records()) == len(opened) and snow.count("POST") == len(opened)


def test_write_back_without_an_itsm_configured_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["watch", "--params", str(project(tmp_path)), "--write-back"])
    assert result.exit_code == 2 and "serving.writeback.url" in result.output


def test_a_warning_the_itsm_refuses_is_named_and_the_exit_is_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeServiceNow() as snow:
        params_path = writing_back(tmp_path, snow, monkeypatch)
        snow.fail_next(403, method="POST")
        result = runner.invoke(app, ["watch", "--params", str(params_path), "--write-back"])
        assert result.exit_code == 1 and "not written back" in result.output
        assert "HTTP 403" in result.output and snow.records() == []
