"""The DVC pipeline end to end on generator data, in a throw-away copy of the project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.state import last_good_state

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow
TARGETS = ("routing", "category", "priority")
JUDGED = (*TARGETS, "ticket-similarity", "incident-surges", "change-risk")
# 1,500 generated tickets link no two test incidents to one problem: nothing to judge it by.
MODELS = (*JUDGED, "recurring-issues")


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false"}
    return subprocess.run(
        ["dvc", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def set_param(project: Path, keys: str, value: object) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    *parents, last = keys.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {
        line.split("'")[1]
        for line in result.stdout.splitlines()
        if line.startswith("Running stage")
    }


def run_python(project: Path, code: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that rich does not wrap the words a test looks for across table rows.
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db", "COLUMNS": "400"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def copy_project(copy: Path) -> Path:
    """Tracked files of the project, as a fresh clone has them, without its outputs."""
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in tracked:
        if name.startswith(("reports/", "dvc.lock")) or not (ROOT / name).exists():
            continue
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
    return copy


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with small generated tables, after a first `dvc repro`."""
    copy = copy_project(tmp_path_factory.mktemp("project"))
    set_param(copy, "tickets.source.rows", 1500)
    set_param(copy, "changes.source.rows", 800)
    set_param(copy, "micro_records.source.rows", 300)
    first = dvc(copy, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert ran(first) == {
        f"{stage}@{table}"
        for stage in ("ingest", "validate", "split", "profile")
        for table in ("tickets", "changes")
    } | {f"{stage}@micro_records" for stage in ("ingest", "validate", "profile")} | {
        f"{stage}@{model}"
        for stage in ("train", "evaluate", "drift", "promote")
        for model in MODELS
    } | {"early-warning", "problems"}
    return copy


def test_first_run_writes_every_output(project: Path) -> None:
    warnings = json.loads((project / "reports/early_warning/warnings.json").read_text())
    summary = json.loads((project / "reports/early_warning/summary.json").read_text())
    assert summary["warnings"] == len(warnings) and summary["series"] >= 1
    for table in ("tickets", "changes"):
        assert (project / f"data/interim/{table}.parquet").exists()
        for part in ("train", "valid", "test"):
            assert len(pd.read_parquet(project / f"data/processed/{table}/{part}.parquet")) > 0
        assert (project / f"reports/validation/{table}.html").exists()
        assert (project / f"reports/data/{table}.png").stat().st_size > 10_000
        metrics = yaml.safe_load((project / f"reports/validation/{table}.metrics.json").read_text())
        assert metrics["passed"] is True and metrics["critical_failures"] == 0
    # Micro-records are ingested and validated like tickets, then grouped with them.
    micro = pd.read_parquet(project / "data/interim/micro_records.parquet")
    assert len(micro) == 300 + 4 * 12
    candidates = json.loads((project / "reports/problems/candidates.json").read_text())
    tickets = pd.read_parquet(project / "data/interim/tickets.parquet")
    assert candidates["summary"]["records"] == len(tickets) + len(micro)
    assert candidates["summary"]["raised"] == len(candidates["candidates"]) >= 1
    assert (project / "reports/problems/candidates.html").stat().st_size > 10_000
    assert json.loads((project / "data/problems/groups.json").read_text())


def test_triage_models_are_evaluated_and_registered_as_challenger(project: Path) -> None:
    for target in TARGETS:
        out = project / "reports/models" / target
        metrics = yaml.safe_load((out / "evaluation/metrics.json").read_text())
        headline = yaml.safe_load((out / "metrics.json").read_text())
        assert headline == {
            "skipped": False,
            "accuracy": metrics["accuracy"],
            "best baseline accuracy": max(b["accuracy"] for b in metrics["baselines"].values()),
        }
        assert 0 <= metrics["accuracy"] <= 1 and "majority class" in metrics["baselines"]
        card = (project / f"reports/model_cards/{target}.md").read_text()
        assert "## Quality on the test split" in card and "baseline: majority class" in card
        for plot in ("reliability.png", "precision_coverage.png", "confusion.png"):
            assert (out / "evaluation" / plot).read_bytes()[:4] == b"\x89PNG"
    # A fresh process loads the registered model by alias and answers raw canonical tickets.
    script = (
        "import mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/itsm-routing@challenger')\n"
        "tickets = pd.read_parquet('data/processed/tickets/test.parquet').head(20)\n"
        "answer = model.predict(tickets)\n"
        "odd = model.predict(pd.DataFrame({'caller': ['never seen'], 'text': ['']}))\n"
        "print(len(answer), sorted(answer.columns), odd.notes.iloc[0])\n"
    )
    result = run_python(project, script)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("20 ['auto_route', 'label', 'notes', 'probability', ")
    assert "unseen caller" in result.stdout and "no text" in result.stdout


def test_ticket_similarity_is_evaluated_and_registered_with_its_index(project: Path) -> None:
    out = project / "reports/models/ticket-similarity"
    metrics = yaml.safe_load((out / "evaluation/metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["precision@5"] <= 1
    assert {"majority class", "bm25 neighbours"} <= set(metrics["baselines"])
    card = (project / "reports/model_cards/ticket-similarity.md").read_text()
    assert "## How it was chosen" in card and "Neighbour relevance" in card
    assert (out / "evaluation/precision_at_k.png").read_bytes()[:4] == b"\x89PNG"
    drift = yaml.safe_load((project / "reports/drift/ticket-similarity/drift.json").read_text())
    watched = {f["feature"] for w in drift["windows"] for f in w["features"]}
    assert {"text", "nearest neighbour score", "predicted class"} <= watched
    # A fresh process loads the registered pyfunc (its index inside) and answers a new
    # ticket with earlier tickets only.
    script = (
        "import mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/itsm-ticket-similarity@challenger')\n"
        "test = pd.read_parquet('data/processed/tickets/test.parquet')\n"
        "answer = model.predict(test.head(3))\n"
        "first = answer.neighbours.iloc[0]\n"
        "print(sorted(answer.columns))\n"
        "print(len(first), all(n['opened_at'] < test.opened_at.iloc[0].isoformat() for n in first))\n"
    )
    result = run_python(project, script)
    assert result.returncode == 0, result.stderr[-2000:]
    columns, neighbours = result.stdout.splitlines()[-2:]
    assert columns == str(
        sorted(
            [
                "auto_suggest",
                "label",
                "neighbours",
                "probability",
                "runbook",
                "runbook_basis",
                "suggestion_probabilities",
                "suggestions",
            ]
        )
    )
    assert neighbours == "5 True"


def test_change_risk_is_evaluated_and_registered_as_challenger(project: Path) -> None:
    out = project / "reports/models/change-risk/evaluation"
    metrics = yaml.safe_load((out / "metrics.json").read_text())
    assert 0 <= metrics["auc"] <= 1 and "size alone" in metrics["baselines"]
    card = (project / "reports/model_cards/change-risk.md").read_text()
    assert "## Risk bands" in card and "baseline: failure rate of its change type" in card
    for plot in ("curves.png", "reliability.png", "bands.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    # A fresh process loads it by alias and answers change requests as an ITSM sends them:
    # times as text, two changes booked on the same CI in the same window.
    script = (
        "import mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/itsm-change-risk@challenger')\n"
        "sent = pd.DataFrame({'change_id': ['CHG1', 'CHG2'],\n"
        "    'opened_at': ['2026-01-12 09:00:00', '2026-01-12 10:00:00'],\n"
        "    'planned_start': ['2026-01-17 22:00:00', '2026-01-17 22:30:00'],\n"
        "    'planned_end': ['2026-01-17 23:30:00', '2026-01-18 00:30:00'],\n"
        "    'ci': ['db-prd-01', 'db-prd-01'], 'change_type': ['normal', 'emergency']})\n"
        "answer = model.predict(sent)\n"
        "print(sorted(answer.columns))\n"
        "print(answer.band.tolist(), answer.probability.between(0, 1).all())\n"
        "print(answer.conflicts.iloc[0])\n"
    )
    result = run_python(project, script)
    assert result.returncode == 0, result.stderr[-2000:]
    columns, bands, conflicts = result.stdout.splitlines()[-3:]
    assert columns == "['band', 'conflicts', 'probability', 'reasons']"
    assert bands.endswith("True")
    assert (
        "overlaps CHG2 on ci db-prd-01 (Sat 2026-01-17 22:30 to Sun 2026-01-18 00:30)" in conflicts
    )
    assert "starts outside business hours" in conflicts


def test_the_surge_detector_is_judged_by_nab_and_registered_with_its_state(
    project: Path,
) -> None:
    import mlflow

    out = project / "reports/models/incident-surges"
    metrics = yaml.safe_load((out / "evaluation/metrics.json").read_text())
    assert metrics["windows"] >= 1 and 0 <= metrics["detected_windows"] <= metrics["windows"]
    assert metrics["nab_standard"] <= 100 and metrics["false_alarms_per_day"] >= 0
    assert {"seasonal", "surprise"} == set(metrics["baselines"])
    headline = yaml.safe_load((out / "metrics.json").read_text())
    assert headline["nab_standard"] == metrics["nab_standard"]
    card = (project / "reports/model_cards/incident-surges.md").read_text()
    assert "| baseline: seasonal |" in card and "false alarms per day" in card
    assert any(p.read_bytes()[:4] == b"\x89PNG" for p in (out / "evaluation").glob("*.png"))
    # Over-alerting, period by period, is on the version where the gate reads it.
    drift = yaml.safe_load((project / "reports/drift/incident-surges/metrics.json").read_text())
    assert drift["performance_metric"] == "false alarms per day" and drift["windows"] >= 1
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    version = client.get_model_version_by_alias("itsm-incident-surges", "challenger")
    assert version.tags["drift.performance_metric"] == "false alarms per day"
    decision = json.loads((project / "reports/promotion/incident-surges.json").read_text())
    compared = next(c for c in decision["checks"] if "labelled period" in c["name"])
    assert set(compared["figures"]["challenger"]) == {
        "nab_standard",
        "nab_low_fp",
        "false_alarms_per_day",
    }
    # A fresh process loads the registered detector and scores the points after its
    # training from the state it was registered with; an earlier point is refused.
    script = (
        "import mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/itsm-incident-surges@challenger')\n"
        "detector = model.unwrap_python_model().model\n"
        "later = detector.last_seen_ + pd.Timedelta(hours=1)\n"
        "series = detector.series_[0]\n"
        "answer = model.predict(pd.DataFrame({'series': [series] * 2,\n"
        "    'timestamp': [later, later + pd.Timedelta(hours=1)], 'value': [0.0, 40.0]}))\n"
        "print(sorted(answer.columns), answer.alarm.tolist())\n"
        "try:\n"
        "    model.predict(pd.DataFrame({'series': [series], 'timestamp': [later],\n"
        "        'value': [1.0]}))\n"
        "except Exception as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = run_python(project, script)
    assert result.returncode == 0, result.stderr[-2000:]
    columns, refused = result.stdout.splitlines()[-2:]
    assert columns == "['alarm', 'basis', 'score', 'series', 'timestamp', 'value'] [False, True]"
    assert refused.startswith("refused:") and "earlier than the last point" in refused


def test_a_model_this_export_cannot_judge_goes_through_every_stage_saying_why(
    project: Path,
) -> None:
    reason = "no problem to judge it by in the test split: no two incidents there share a"
    train = json.loads((project / "reports/models/recurring-issues/train.json").read_text())
    assert train["skipped"] is True and train["reason"].startswith(reason)
    drift = json.loads((project / "reports/drift/recurring-issues/drift.json").read_text())
    assert drift["skipped"] is True and drift["reason"] == train["reason"]
    card = (project / "reports/model_cards/recurring-issues.md").read_text()
    assert f"Not trained: {reason}" in card


def test_drift_of_every_registered_model_is_reported_and_logged(project: Path) -> None:
    import mlflow

    for model in JUDGED:
        out = project / "reports/drift" / model
        summary = yaml.safe_load((out / "metrics.json").read_text())
        assert summary["windows"] >= 1 and 0 <= summary["alert_windows"] <= summary["windows"]
        page = (out / "drift.html").read_text()
        assert "<style>" in page and "http" not in page  # renders offline
        assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    version = client.get_model_version_by_alias("itsm-change-risk", "challenger")
    # The gate weighs data drift and performance drift apart: both are on the version.
    assert "drift.alert_windows" in version.tags
    for key in ("drift.data_alert_at_end", "drift.performance_alert_at_end"):
        assert version.tags[key] in ("True", "False")
    assert version.tags["drift.performance_metric"] == "ROC AUC"
    # No run id in the tracked file: it would differ on every machine.
    registered = json.loads((project / "reports/models/change-risk/registered.json").read_text())
    assert set(registered) == {"name", "version", "model_uri"}
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "drift")}
    assert artifacts == {
        "drift/drift.html",
        "drift/timeline.png",
        "drift/drift.json",
        "drift/reference",  # the profiles `itsm-ml monitor` reads for this version
    }
    windows = json.loads((project / "reports/drift/routing/drift.json").read_text())["windows"]
    check = windows[-1]["performance_check"]
    assert check["metric"] == "accuracy" and check["basis"] == "closed in window"


def test_second_run_does_nothing_and_says_so(project: Path) -> None:
    again = dvc(project, "repro")
    assert again.returncode == 0
    assert ran(again) == set()
    assert "Data and pipelines are up to date." in again.stdout


def test_retrain_rereads_the_sources_and_retrains_only_on_new_data(project: Path) -> None:
    unchanged = cli(project, "retrain")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr[-3000:]
    assert "no model retrained" in unchanged.stdout
    decisions = len(ledger(project, "itsm-change-risk"))
    set_param(project, "changes.source.seed", 7)  # a new export of changes
    renewed = cli(project, "retrain")
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr[-3000:]
    assert "itsm-change-risk v2:" in renewed.stdout
    assert len(ledger(project, "itsm-change-risk")) == decisions + 1
    assert "itsm-routing" not in renewed.stdout  # tickets did not change: not retrained
    set_param(project, "changes.validation.min_rows", 1_000_000)
    try:
        rejected = cli(project, "retrain")
        assert rejected.returncode == 5, rejected.stdout + rejected.stderr[-3000:]
        assert "rejected (unreadable or invalid): changes" in rejected.stdout
        assert len(ledger(project, "itsm-change-risk")) == decisions + 1  # no decision, no move
    finally:
        set_param(project, "changes.validation.min_rows", 100)


def test_a_parameter_reruns_only_the_stages_that_read_it(project: Path) -> None:
    set_param(project, "changes.validation.max_quarantine_share", 0.02)
    result = dvc(project, "repro")
    assert result.returncode == 0, result.stderr
    # The validated table is byte-identical, so split and profile of changes are skipped too.
    assert ran(result) == {"validate@changes"}


def test_failed_validation_stops_and_changes_nothing_downstream(project: Path) -> None:
    processed = project / "data/processed/tickets/train.parquet"
    validated = project / "data/interim/tickets.parquet"
    before, validated_before = processed.read_bytes(), validated.read_bytes()
    set_param(project, "tickets.validation.min_rows", 1_000_000)
    result = dvc(project, "repro")
    try:
        assert result.returncode != 0
        message = " ".join(result.stderr.split())
        assert "table tickets from built-in generator" in message
        assert "rule 'row count between 1000000 and 10000000' failed" in message
        assert processed.read_bytes() == before
        assert validated.read_bytes() == validated_before
        assert "split@tickets" not in ran(result)
        report = yaml.safe_load((project / "reports/validation/tickets.json").read_text())
        assert report["passed"] is False
    finally:
        set_param(project, "tickets.validation.min_rows", 100)


def test_a_failed_training_keeps_the_last_model_and_everything_before_it(project: Path) -> None:
    # DVC deletes a stage's outputs before running it unless they persist: the model that
    # failed to retrain must still be there, with the tables it was trained on.
    before = last_good_state(project)
    aliases = champion(project, "itsm-routing")
    set_param(project, "models.routing.kind", "binary")  # routing has more than two groups
    try:
        result = dvc(project, "repro")
        assert result.returncode != 0
        assert "models.routing.kind: 'binary'" in " ".join(result.stderr.split())
        assert "evaluate@routing" not in ran(result)
        assert last_good_state(project) == before
        assert (project / "reports/models/routing/train.json").exists(), "it describes the model"
        assert champion(project, "itsm-routing") == aliases
    finally:
        set_param(project, "models.routing.kind", "multiclass")


def test_a_rejected_export_leaves_everything_and_retrain_exits_5_whatever_ran_before(
    project: Path, tmp_path: Path
) -> None:
    import gzip

    from tests.conftest import BROKEN

    mapping = yaml.safe_load((BROKEN / "mapping.yaml").read_text())
    packed = gzip.compress((BROKEN / "valid.csv").read_bytes() * 40)
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    before, aliases = last_good_state(project), champion(project, "itsm-routing")
    book = (project / "promotion-ledger.jsonl").read_bytes()
    original = yaml.safe_load((project / "params.yaml").read_text())["tickets"]

    def unchanged() -> None:
        assert last_good_state(project) == before
        assert champion(project, "itsm-routing") == aliases
        assert (project / "promotion-ledger.jsonl").read_bytes() == book

    try:
        # After a run that succeeded: an export cut short is rejected at ingest.
        set_param(project, "tickets.source", {"kind": "ticket_csv", "path": str(tmp_path / "cut.csv.gz"), **mapping})  # fmt: skip
        cut = cli(project, "retrain")
        assert cut.returncode == 5, cut.stdout + cut.stderr[-3000:]
        assert "the gzip stream is cut short" in cut.stdout + cut.stderr
        assert "rejected (unreadable or invalid): tickets" in cut.stdout
        unchanged()
        # A readable export whose labels are all missing: refused at validation.
        set_param(project, "tickets.source.path", str(BROKEN / "labels_all_missing.csv"))
        set_param(project, "tickets.validation.min_rows", 1)
        repro = dvc(project, "repro")
        assert repro.returncode != 0
        assert "label_assignment_group" in " ".join(repro.stderr.split())
        unchanged()
        # Good data again, a training that fails: 1, though the last validation failed (a
        # retrain after a rejection that rejects again: tests/unit/promotion/test_retrain.py).
        set_param(project, "tickets", original)
        set_param(project, "models.routing.kind", "binary")
        broken = cli(project, "retrain")
        assert broken.returncode == 1, broken.stdout + broken.stderr[-3000:]
        assert "rejected" not in broken.stdout
        assert champion(project, "itsm-routing") == aliases
    finally:
        set_param(project, "tickets", original)
        set_param(project, "models.routing.kind", "multiclass")


# Last: it re-runs stage scripts by hand, which the dvc tests above must not see.
def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python(project, f"import sys; sys.argv = ['itsm-ml', *{list(args)!r}]\n"
                      "from itsm_ml.cli import main; main()")  # fmt: skip


def champion(project: Path, name: str) -> str:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    return str(client.get_model_version_by_alias(name, "champion").version)


def ledger(project: Path, name: str) -> list[dict[str, object]]:
    lines = (project / "promotion-ledger.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["model"] == name]


def test_the_gate_ledgers_every_decision_and_survives_a_crash_before_the_move(
    project: Path,
) -> None:
    name = "itsm-category"
    # The first run judged every model: each has a decision in the ledger.
    for model in ("itsm-routing", "itsm-category", "itsm-priority", "itsm-change-risk"):
        assert ledger(project, model)[0]["event"] == "decision"
    assert champion(project, name) == "1"
    # A new challenger (v2), with its drift record: the same model retrained, so let a tie
    # pass (margin 0) to have a decision that moves the alias.
    set_param(project, "promotion.margin", 0.0)
    # The failed-validation test above left a failed report; validate again (it passes).
    assert dvc(project, "repro", "validate@tickets").returncode == 0
    for script in ("evaluate.py --model category", "drift.py --model category"):
        done = run_python(project, "import runpy, sys; sys.path.insert(0, 'pipelines')\n"
                          f"sys.argv = ['x', *{script.split()[1:]!r}]\n"
                          f"runpy.run_path('pipelines/{script.split()[0]}', run_name='__main__')")  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    # The process dies after the checks passed and the decision was written, before the move.
    crash = run_python(
        project,
        "import os\nfrom pathlib import Path\nimport itsm_ml.promotion.stage as gate\n"
        "from itsm_ml.config import load_params\n"
        "gate._move_alias = lambda *args: os._exit(17)\n"
        "gate.promote(load_params(Path('params.yaml')), 'category', Path.cwd())\n",
    )
    assert crash.returncode == 17, crash.stderr[-2000:]
    assert champion(project, name) == "1"  # the old champion still serves
    last = ledger(project, name)[-1]
    assert last["event"] == "decision" and last["passed"] is True and last["challenger"] == "2"
    # Run again: promoted, and the move is ledgered after the decision.
    promoted = cli(project, "promote", "category")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert champion(project, name) == "2"
    assert ledger(project, name)[-1] == {**ledger(project, name)[-1], "event": "alias moved",
                                         "version": "2", "previous": "1"}  # fmt: skip
    again = cli(project, "promote", "category")
    assert again.returncode == 1 and "already is the champion" in again.stderr
    back = cli(project, "rollback", "category")
    assert back.returncode == 0 and champion(project, name) == "1"
    # A margin no model reaches: refused, with the way forward; forced only with a reason.
    set_param(project, "promotion.margin", 0.5)
    try:
        refused = cli(project, "promote", "category")
        assert refused.returncode == 4 and "--force --reason" in refused.stdout
        assert "below the required margin of 0.5" in refused.stdout
        no_reason = cli(project, "promote", "category", "--force")
        assert no_reason.returncode == 1 and "--force needs --reason" in no_reason.stderr
        forced = cli(project, "promote", "category", "--force", "--reason", "CAB-42 approved")
        assert forced.returncode == 0 and "FORCED" in forced.stdout, forced.stdout
    finally:
        set_param(project, "promotion.margin", 0.0)
    assert champion(project, name) == "2"
    decision = [e for e in ledger(project, name) if e["event"] == "decision"][-1]
    assert decision["forced"] is True and decision["reason"] == "CAB-42 approved"
    assert ledger(project, name)[-1]["reason"] == "CAB-42 approved"  # the move says so too
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    tags = client.get_model_version(name, "2").tags
    assert tags["promotion.decision"] == "forced" and tags["promotion.reason"] == "CAB-42 approved"
    back = cli(project, "rollback", "category")
    assert back.returncode == 0 and champion(project, name) == "1"
    shown = cli(project, "history", "category")
    assert shown.returncode == 0 and "rollback" in shown.stdout and "alias moved" in shown.stdout
    assert "FORCED past" in shown.stdout and "CAB-42 approved" in shown.stdout


def test_monitor_watches_each_champion_and_exits_3_when_labels_move(project: Path) -> None:
    # The gate test above left itsm-category v1 champion; routing's first version passed too.
    # Priority's champion alias is taken away: a model nothing serves is said so, not failed.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    client.delete_registered_model_alias("itsm-priority", "champion")
    fine = cli(project, "monitor", "routing", "priority")
    assert fine.returncode in (0, 3), fine.stdout + fine.stderr
    assert "model: itsm-priority" in fine.stdout and "nothing serves" in fine.stdout
    report = json.loads((project / "reports/monitor/routing.json").read_text())
    assert report["version"] == champion(project, "itsm-routing")
    assert len(report["windows"]) == 2  # persistence: the two newest windows
    assert (project / "reports/monitor/routing.html").read_text().startswith("<!doctype html>")
    # Concept drift: every ticket closed now goes to one group, whatever it says; the
    # features are those of the pipeline's own table, so only the labels tell.
    tickets = pd.read_parquet(project / "data/interim/tickets.parquet")
    moved = tickets.assign(label_assignment_group="Service Desk (L1)")
    moved.to_parquet(project / "moved.parquet")
    alert = cli(project, "monitor", "routing", "--tickets", "moved.parquet")
    assert alert.returncode == 3, alert.stdout + alert.stderr
    assert "status: alert" in alert.stdout and "accuracy below its promise" in alert.stdout
    version = client.get_model_version_by_alias("itsm-routing", "champion")
    assert version.tags["monitor.status"] == "alert"
    missing = cli(project, "monitor", "routing", "--tickets", "nowhere.parquet")
    assert missing.returncode == 1 and "nowhere.parquet" in missing.stderr
    # A detector's champion is watched for over-alerting after its training, period by period.
    challenger = client.get_model_version_by_alias("itsm-incident-surges", "challenger")
    client.set_registered_model_alias("itsm-incident-surges", "champion", challenger.version)
    surges = cli(project, "monitor", "incident-surges")
    assert surges.returncode in (0, 3), surges.stdout + surges.stderr
    assert "false alarms per day" in surges.stdout and "budget 1" in surges.stdout
    report = json.loads((project / "reports/monitor/incident-surges.json").read_text())
    assert 1 <= len(report["windows"]) <= 2


def test_a_reset_tracking_store_is_filled_again_by_the_next_run(project: Path) -> None:
    # A fresh clone, or a store deleted by hand: the reports and dvc.lock say every stage is
    # done, the models come back byte for byte, but the store holds no version. Last in the
    # module: it replaces the store the tests above read.
    for name in ("mlflow.db", "promotion-ledger.jsonl"):
        (project / name).unlink()
    shutil.rmtree(project / "mlartifacts")
    unsynced = dvc(project, "status")
    assert "evaluate@routing" not in unsynced.stdout, "DVC alone cannot see the store"
    synced = cli(project, "registry-sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "evaluate@routing" in synced.stdout and "drift@change-risk" in synced.stdout
    # One model's chain is enough to show it (the others would take minutes more).
    again = dvc(project, "repro", "promote@routing")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {"evaluate@routing", "drift@routing", "promote@routing"} <= ran(again)
    assert "train@routing" not in ran(again), "the model itself is current"
    assert champion(project, "itsm-routing") == "1"
    assert (
        json.loads((project / "reports/models/routing/registered.json").read_text())["version"]
        == "1"
    )
    assert cli(project, "registry-sync").stdout.strip() == "", "nothing stale is left"
