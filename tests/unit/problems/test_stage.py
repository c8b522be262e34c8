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
    assert "chose threshold" not in result.output  # no recurrence model trained
    # A recurrence model whose training chose another threshold than the one raising these.
    params = yaml.safe_load(params_path.read_text())
    params["models"] = {"issues": {"table": "tickets", "kind": "recurrence", "label": "p"}}
    params_path.write_text(yaml.safe_dump(params))
    io.write_json(
        {"model": "issues", "threshold": 0.8}, tmp_path / "reports/models/issues/train.json"
    )
    hinted = runner.invoke(app, ["problems", "--params", str(params_path)])
    assert "issues chose threshold 0.8 on validation's problem links" in hinted.output
    assert "problems.threshold 0.6" in hinted.output


def test_decisions_read_back_are_kept_beside_the_groups_not_among_the_stage_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.servicenow import FakeServiceNow

    params_path = project(tmp_path)
    problems(load_params(params_path), "history", tmp_path)
    [raised] = json.loads((tmp_path / "reports/problems/candidates.json").read_text())["candidates"]
    with FakeServiceNow(table="problem", number_prefix="PRB") as snow:
        # A problem manager took the candidate's problem on: accepted.
        snow.seed("p1", number="PRB1", correlation_id=raised["id"], correlation_display="itsm-ml",
                  state="Root Cause Analysis", resolution_code="")  # fmt: skip
        params = yaml.safe_load(params_path.read_text())
        params["serving"] = {"writeback": {"url": snow.url}}
        params_path.write_text(yaml.safe_dump(params))
        monkeypatch.setenv("ITSM_ML_ITSM_USER", snow.user)
        monkeypatch.setenv("ITSM_ML_ITSM_PASSWORD", snow.password)
        monkeypatch.setattr(cli.out, "width", 200)
        result = runner.invoke(app, ["problems", "--params", str(params_path), "--read-decisions"])
    assert result.exit_code == 3, result.output  # a candidate shown
    assert "1 accepted, 0 rejected, 0 pending; precision 100%" in result.output
    # No recurrence model is declared: nothing to log the precision on, and nothing fails.
    assert "logged on" not in result.output
    decisions = json.loads((tmp_path / "data/problems/decisions.json").read_text())
    assert decisions["precision"] == 1.0 and decisions["decisions"][0]["problem"] == "PRB1"
    assert not (tmp_path / "reports/problems/decisions.json").exists()


def test_tune_needs_decisions_then_shows_each_setting_and_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params_path = project(tmp_path)
    monkeypatch.setattr(cli.out, "width", 200)
    missing = runner.invoke(app, ["problems", "--params", str(params_path), "--tune"])
    assert missing.exit_code == 2 and "--read-decisions" in missing.output
    assert not (tmp_path / "reports/problems").exists()  # refused before any work
    problems(load_params(params_path), "history", tmp_path)
    [raised] = json.loads((tmp_path / "reports/problems/candidates.json").read_text())["candidates"]
    decided = {"decisions": [{"candidate": raised["id"], "decision": "accepted"}]}
    params = yaml.safe_load(params_path.read_text())
    params["problems"] |= {"tried": [0.75], "tried_growth": [3.0]}
    params_path.write_text(yaml.safe_dump(params))
    io.write_json(decided, tmp_path / "data/problems/decisions.json")
    result = runner.invoke(app, ["problems", "--params", str(params_path), "--tune"])
    assert result.exit_code == 3, result.output
    assert "settings against 1 decided candidates, best first" in result.output
    assert "only 1 decided candidates" in result.output
    tuned = json.loads((tmp_path / "data/problems/tuning.json").read_text())
    # problems.tried (0.75) and the current 0.6 x tried_growth (3) and the current 2.
    assert len(tuned["settings"]) == 4 and tuned["current"] == {"threshold": 0.6, "growth": 2.0}
    assert tuned["settings"][0]["accepted"] == 1
