"""The problems stage and `itsm-ml problems` on a project: candidates written and shown, and
the ids of the last run kept when the grouping settings change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from itsm_ml import cli, io
from itsm_ml.cli import app
from itsm_ml.config import load_params
from itsm_ml.problems.stage import groups_file, problems
from tests.unit.problems.test_detection import micro_records, tickets

runner = CliRunner()


def project(tmp_path: Path, threshold: float = 0.6) -> Path:
    params = {
        "tickets": {"source": {"kind": "generator"}},
        "changes": {"source": {"kind": "generator"}},
        "problems": {"threshold": threshold, "rule": {"min_records": 4, "min_callers": 3}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    io.write_table(tickets(), tmp_path / "data" / "interim" / "tickets.parquet")
    io.write_table(micro_records(), tmp_path / "data" / "interim" / "micro_records.parquet")
    return tmp_path / "params.yaml"


def test_the_stage_writes_the_candidates_and_keeps_ids_across_a_threshold_change(
    tmp_path: Path,
) -> None:
    result = problems(load_params(project(tmp_path)), "history", tmp_path)
    summary = result.figures
    assert result.summary().startswith("1 candidate raised from 138 records")
    written = json.loads((tmp_path / "reports/problems/candidates.json").read_text())
    [candidate] = written["candidates"]
    assert summary["raised"] == 1 and summary["micro_records"] == 10
    assert candidate["micro_share"] == 1.0
    html = (tmp_path / "reports/problems/candidates.html").read_text()
    assert candidate["id"] in html and "data:image/png;base64," in html
    before = json.loads(groups_file(tmp_path).read_text())
    # A stricter threshold splits the VPN group in two: the part holding most of it keeps
    # the id (decisions recorded against it stay attached), the other part is new.
    stricter = project(tmp_path, threshold=0.75)
    again = problems(load_params(stricter), "history", tmp_path).figures
    after = json.loads((tmp_path / "reports/problems/candidates.json").read_text())["candidates"]
    assert again["raised"] == 2 and [c["records"] for c in after] == [6, 4]
    assert after[0]["id"] == candidate["id"] and after[1]["id"] != candidate["id"]
    assert candidate["id"] in before and candidate["id"] in json.loads(
        groups_file(tmp_path).read_text()
    )


def test_problems_shows_the_candidates_and_exits_3_when_there_are_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params_path = project(tmp_path)
    monkeypatch.setattr(cli.out, "width", 200)
    result = runner.invoke(app, ["problems", "--params", str(params_path)])
    assert result.exit_code == 3, result.output
    candidate = json.loads((tmp_path / "reports/problems/candidates.json").read_text())
    assert candidate["candidates"][0]["id"] in result.output and "a month" in result.output
    # It stopped recurring before the history's end: not shown among the active ones.
    active = runner.invoke(app, ["problems", "--params", str(params_path), "--active"])
    assert active.exit_code == 0, active.output
    written_back = runner.invoke(app, ["problems", "--params", str(params_path), "--write-back"])
    assert written_back.exit_code == 2 and "serving.writeback.url" in written_back.output
