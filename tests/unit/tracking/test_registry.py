"""Logging and registering a triage model in an isolated tracking store, then loading it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import joblib
import pandas as pd
import pytest

from itsm_ml.config import GeneratorSource
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import time_split
from itsm_ml.tracking import registry
from itsm_ml.triage.model import TriageModel

SRC = Path(__file__).parents[3] / "src" / "itsm_ml"


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


CARD = "# Model card: ticket-priority\n\n## Intended use\n\nSuggests a priority.\n\nOwner: desk.\n"


def test_versions_are_registered_as_challenger_and_load_by_alias(tracking: Path) -> None:
    import mlflow

    tickets = load_table(
        "tickets",
        GeneratorSource(
            kind="generator", rows=800, seed=2, start=date(2025, 1, 1), end=date(2025, 3, 1)
        ),
    )
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    model = TriageModel(categorical=["caller", "service"], n_estimators=20, n_jobs=1)
    model.fit(split.train, split.train.label_priority, split.valid, split.valid.label_priority)
    joblib.dump(model, tracking / "m.joblib")
    registry.configure(tracking)
    example = split.test[["caller", "service", "text"]].head(3)
    first, second = (
        registry.log_and_register(
            model=model,
            model_path=tracking / "m.joblib",
            registered_model="ticket-priority",
            params={"n_estimators": 20},
            metrics={"accuracy": 0.5, "class Identity & Access": 1.0},
            tags={"purpose": "test"},
            artifacts=[],
            inputs={
                "training": (
                    split.train[["caller", "service", "text", "label_priority"]],
                    "train.parquet",
                    "label_priority",
                )
            },
            input_example=example,
            code_path=SRC,
            description=CARD,
        )
        for _ in range(2)
    )
    assert (first.version, second.version) == ("1", "2")
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("ticket-priority", "challenger").version) == "2"
    assert client.get_model_version("ticket-priority", "2").description == CARD  # the card
    run = client.get_run(second.run_id)
    assert run.data.tags["purpose"] == "test"
    assert "class Identity _ Access" in run.data.metrics
    assert [i.dataset.name for i in run.inputs.dataset_inputs] == ["tickets-training"]
    loaded = mlflow.pyfunc.load_model("models:/ticket-priority@challenger")
    answer = loaded.predict(pd.DataFrame({"caller": ["someone new"]}))
    assert set(answer.columns) >= {"label", "probability", "auto_route", "suggestions", "notes"}
    assert (tracking / "mlartifacts").is_dir()


def test_a_card_longer_than_the_registry_holds_is_cut_at_a_line_saying_so() -> None:
    assert registry.version_description(CARD) == CARD
    card = "# Model card\n\n" + "".join(f"| class {i} | 0.9 |\n" for i in range(600))
    description = registry.version_description(card)
    assert len(card) > registry.DESCRIPTION_MAX_CHARS >= len(description)
    kept, note = description.split("\n\n*(Cut at the registry's limit of 5,000 characters")
    assert card.startswith(kept + "\n") and kept.endswith("0.9 |")
    assert "artifact of this version's run" in note


def test_lineage_tags_name_commit_and_data_hashes(tmp_path: Path) -> None:
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  split@tickets:\n    outs:\n    - path: data/processed/tickets\n      md5: abc.dir\n"
    )
    tags = registry.lineage_tags(tmp_path, ["data/processed/tickets", "data/other"])
    assert tags["dvc.md5.data/processed/tickets"] == "abc.dir"
    assert tags["dvc.md5.data/other"].startswith("unknown")
    assert "commit" in " ".join(tags)


def test_input_schema_keeps_types_and_makes_every_column_optional() -> None:
    example = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(["2025-01-01"]),
            "size": [3.0],
            "ci": pd.array(["db-01"], dtype="string"),
            "urgent": [True],
        }
    )
    schema = registry.input_schema(example)
    assert [(c.name, c.type.name, c.required) for c in schema.inputs] == [
        ("opened_at", "datetime", False),
        ("size", "double", False),
        ("ci", "string", False),
        ("urgent", "boolean", False),
    ]


def test_the_runs_own_outputs_do_not_make_the_tree_dirty(tmp_path: Path) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/metrics.json").write_text("{}")
    (tmp_path / "dvc.lock").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    git("init", "-q")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "add", ".")
    git("-c", "user.email=t@example.org", "-c", "user.name=t", "commit", "-qm", "first")
    # dvc repro rewrites its reports and lock while the runs are logged: still clean.
    (tmp_path / "reports/metrics.json").write_text('{"accuracy": 0.7}')
    (tmp_path / "dvc.lock").write_text("stages: {train: {}}\n")
    assert registry.lineage_tags(tmp_path, [])["git.dirty"] == "false"
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    tags = registry.lineage_tags(tmp_path, [])
    assert tags["git.dirty"] == "true" and tags["git.changed"] == "params.yaml"
