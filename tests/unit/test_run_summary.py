"""The end-of-run summary, from the reports the stages write."""

from __future__ import annotations

import json
from pathlib import Path

from itsm_ml.catalog import ModelLayout, catalog
from itsm_ml.config import parse_params
from itsm_ml.run_summary import early_warning_line, problems_line, summarise

PARAMS = parse_params({"tickets": {"source": {"kind": "generator"}},
                       "changes": {"source": {"kind": "generator"}}})  # fmt: skip


def write(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def check(name: str, passed: bool, detail: str, blocking: bool = True) -> dict[str, object]:
    return {"name": name, "passed": passed, "detail": detail, "blocking": blocking}


def test_each_model_says_its_metric_beside_the_best_baseline_and_the_gates_word(
    tmp_path: Path,
) -> None:
    routing, priority = ModelLayout(tmp_path, "routing"), ModelLayout(tmp_path, "priority")
    write(routing.metrics, {"skipped": False, "accuracy": 0.691})
    write(
        routing.evaluation / "metrics.json",
        {
            "coverage": 0.34,
            "auto_routed_precision": 0.931,
            "baselines": {
                "majority class": {"accuracy": 0.2},
                "keep the value set at open": {"accuracy": 0.673},
            },
        },
    )
    write(
        tmp_path / "reports/promotion/routing.json",
        {
            "challenger": "1",
            "champion": None,
            "passed": True,
            "checks": [check("current data resembles its training data", False, "7 of 8", False)],
        },
    )
    write(priority.metrics, {"skipped": False, "accuracy": 0.30})
    write(
        priority.evaluation / "metrics.json", {"baselines": {"majority class": {"accuracy": 0.47}}}
    )
    write(
        tmp_path / "reports/promotion/priority.json",
        {
            "challenger": "2",
            "champion": "1",
            "passed": False,
            "checks": [check("beats champion v1", False, "accuracy 0.300 < 0.350 of champion v1")],
        },
    )
    write(ModelLayout(tmp_path, "change-risk").metrics, {"skipped": True, "reason": "no label"})
    found = {o.name: o for o in summarise(tmp_path, catalog(PARAMS))}
    assert found["routing"].quality == (
        "accuracy 0.691 (best baseline: keep the value set at open 0.673)"
    )
    assert found["routing"].routed == "34% auto-routed at 93.1% precision"
    assert found["routing"].gate == (
        "v1 promoted to champion; warning, not met: current data resembles its training data (7 of 8)"
    )
    assert found["routing"].serving
    assert found["priority"].gate == (
        "v2 refused (beats champion v1: accuracy 0.300 < 0.350 of champion v1); champion stays v1"
    )
    assert found["priority"].serving and found["priority"].routed == ""
    assert found["change-risk"].gate == "skipped: no label" and not found["change-risk"].serving
    assert found["category"].quality == "not evaluated yet"


def test_the_early_warning_line_says_what_the_stage_found(tmp_path: Path) -> None:
    assert early_warning_line(tmp_path) == ""  # the stage has not run
    folder = tmp_path / "reports" / "early_warning"
    folder.mkdir(parents=True)
    summary = {
        "warnings": 12,
        "series": 12,
        "warnings_per_week": 0.231,
        "busiest": [
            {"series": "service=VPN", "alarms": 3},
            {"series": "service=Mail", "alarms": 1},
        ],
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    assert early_warning_line(tmp_path) == (
        "12 warnings over 12 series (0.231 per week); most: service=VPN 3, service=Mail 1"
    )


def test_the_problems_line_says_what_the_stage_raised(tmp_path: Path) -> None:
    assert problems_line(tmp_path) == ""  # the stage has not run
    folder = tmp_path / "reports" / "problems"
    folder.mkdir(parents=True)
    summary = {"raised": 9, "records": 12_345, "raised_per_month": 0.75,
               "with_micro_records": 4, "active": 1}  # fmt: skip
    (folder / "candidates.json").write_text(json.dumps({"summary": summary, "candidates": []}))
    assert problems_line(tmp_path) == (
        "9 candidates raised from 12,345 records (0.75 a month), 4 holding fixes made outside"
        " the desk, 1 recurring now"
    )
