"""The stages end to end on small slices of the real datasets.

Slices are cut at test time into a temporary folder (never into the repository): the first
incidents of the ServiceNow audit log, with all their events, and one jit-changes project.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from itsm_ml.config import load_params
from itsm_ml.data import stage as stages

pytestmark = pytest.mark.real_data
MAPPINGS = Path(__file__).parents[2] / "pipelines" / "sources"


@pytest.fixture(scope="module")
def project(datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real")
    events = pd.read_csv(datasets / "servicenow-incident-log/incident_event_log.csv.gz", dtype=str)
    first = events.number.drop_duplicates().iloc[:3000]
    with gzip.open(root / "log.csv.gz", "wt", encoding="utf-8") as out:
        events[events.number.isin(first)].to_csv(out, index=False)
    jit = yaml.safe_load((MAPPINGS / "jit-changes.yaml").read_text())
    params = {
        "tickets": {"source": {"kind": "servicenow_audit_log", "path": "log.csv.gz"}},
        "changes": {"source": {**jit, "path": str(datasets / "jit-changes/jdt_k_feature.csv")}},
        "change_risk": {"size_column": "la", "n_jobs": 1},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.mark.parametrize("table", ["tickets", "changes"])
def test_stages_run_end_to_end(project: Path, table: str) -> None:
    params = load_params(project / "params.yaml")
    raw = stages.ingest(params, table, project)
    report = stages.validate(params, table, project)
    summary = stages.split(params, table, project)
    profile = stages.profile(params, table, project)

    layout = stages.Layout(project, table)
    assert report.passed and report.rows == len(raw)
    assert len(raw) == (3000 if table == "tickets" else 3279)
    parts = {part: pd.read_parquet(layout.split(part)) for part in ("train", "valid", "test")}
    assert summary.figures["method"] == "time"
    assert sum(len(p) for p in parts.values()) == len(pd.read_parquet(layout.validated))
    # Train on the past, test on the future: no training row is later than any test row.
    assert parts["train"].opened_at.max() < parts["valid"].opened_at.min()
    assert parts["valid"].opened_at.max() < parts["test"].opened_at.min()
    assert profile.figures["rows"] == len(pd.read_parquet(layout.validated))
    assert layout.profile_plot.read_bytes()[:4] == b"\x89PNG"
    assert layout.validation_report.with_suffix(".html").exists()


def test_change_risk_trains_evaluates_and_registers_on_real_changes(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itsm_ml import training

    jit = yaml.safe_load((MAPPINGS / "jit-changes.yaml").read_text())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project}/mlflow.db")
    params = load_params(project / "params.yaml")
    for stage in (stages.ingest, stages.validate, stages.split):
        stage(params, "changes", project)
    summary = training.train(params, "change-risk", project)
    # jit-changes has no planned windows, teams or CIs: only its own 14 metrics are used, and
    # nobody listed them: the catalog's default is every column the source maps.
    assert sorted(summary.figures["features"]) == sorted(jit["numeric"])
    outcome = training.evaluate(params, "change-risk", project)
    metrics = json.loads(
        (project / "reports/models/change-risk/evaluation/metrics.json").read_text()
    )
    assert outcome.figures["auc"] == metrics["auc"]
    # jdt is the hardest project (published `la` alone: 0.676 on its own 80/20 cut); our
    # 70/15/15 split differs, so only the order is asserted here; `make bench` has the figures.
    assert metrics["auc"] > metrics["baselines"]["la alone"]["auc"] > 0.6
    card = (project / "reports/model_cards/change-risk.md").read_text()
    assert "No planned windows in this source" in card and "| baseline: la alone |" in card
