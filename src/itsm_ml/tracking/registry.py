"""MLflow tracking and registry: where runs go, what they record, how versions are named.

Every training run records its parameters, metrics, plots, the git commit and the DVC hashes
of its input data as tags, and its input datasets, so each model version traces back to the
exact code and data, and carries its model card as its description. New versions get the alias
`challenger`; only the promotion gate moves `champion`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from itsm_ml import telemetry

CHALLENGER = "challenger"
CHAMPION = "champion"
EXPERIMENT = "itsm-ml-triage"
CHANGE_RISK_EXPERIMENT = "itsm-ml-change-risk"
# A model version's description in MLflow's SQL stores is a VARCHAR(5000): PostgreSQL and
# MySQL refuse a longer one (sqlite would keep it).
DESCRIPTION_MAX_CHARS = 5000
_REQUIREMENTS = (
    "mlflow",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "joblib",
    "pyarrow",
)


def tracking_uri(root: Path) -> str:
    """MLFLOW_TRACKING_URI when set, else the embedded sqlite store at the project root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def configure(root: Path, experiment: str = EXPERIMENT) -> str:
    """Point MLflow at the project's store and experiment; returns the experiment id.

    The embedded store keeps artifacts in `mlartifacts/` beside it, as `mlflow server` would.
    """
    telemetry.disable()
    # A progress bar per small artifact (the input example, the model files) is noise in a
    # pipeline's log; the user's own setting wins.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        mlflow.set_experiment(experiment_id=found.experiment_id)
        return str(found.experiment_id)
    location = (root / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
    experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return str(experiment_id)


def client(root: Path) -> Any:
    """An MLflow client on the project's store."""
    import mlflow

    configure(root)
    return mlflow.MlflowClient()


def version_by_alias(found: Any, name: str, alias: str) -> Any | None:
    """The version an alias points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return found.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


# Pathspecs of what `dvc repro` writes into tracked files.
PIPELINE_OUTPUTS = (":(exclude)reports", ":(exclude)dvc.lock")


def lineage_tags(root: Path, data_paths: list[str]) -> dict[str, str]:
    """Git commit (and whether the tree was dirty) and the DVC hashes of the input data."""
    tags: dict[str, str] = {}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        # What the pipeline writes itself (reports, dvc.lock) changes while it runs: only a
        # change to anything else (code, params, docs) makes the run's code differ from the
        # commit.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *PIPELINE_OUTPUTS],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        changed = [line[3:] for line in dirty if line.strip()]
        tags["mlflow.source.git.commit"] = commit
        tags["git.dirty"] = str(bool(changed)).lower()
        if changed:
            tags["git.changed"] = ", ".join(changed[:20]) + (" ..." if len(changed) > 20 else "")
    except (OSError, subprocess.CalledProcessError):
        tags["git.commit"] = "unknown (not a git checkout)"
    lock = root / "dvc.lock"
    hashes = _dvc_hashes(lock) if lock.exists() else {}
    for path in data_paths:
        tags[f"dvc.md5.{path}"] = hashes.get(path, "unknown (not produced by dvc repro)")
    return tags


def model_tags(root: Path, model: str, table: str, source: str) -> dict[str, str]:
    """What every registered model's run is tagged with: its catalog name, its source, the
    lineage of its table's splits and the validation they passed."""
    return {
        "model": model,
        "source": source,
        **lineage_tags(root, [f"data/processed/{table}"]),
        **validation_tags(root, table),
    }


def split_inputs(
    root: Path, table: str, splits: dict[str, pd.DataFrame], columns: list[str], label: str
) -> dict[str, tuple[pd.DataFrame, str, str]]:
    """The train, valid and test splits as `log_and_register` inputs: context -> (the
    model's columns and label, the split's file, the label)."""
    from itsm_ml.data.stage import Layout

    contexts = {"train": "training", "valid": "validation", "test": "testing"}
    return {
        contexts[part]: (frame[[*columns, label]], str(Layout(root, table).split(part)), label)
        for part, frame in splits.items()
    }


def validation_tags(root: Path, table: str) -> dict[str, str]:
    """Whether the training table passed validation, for the promotion gate's first check."""
    metrics = root / "reports" / "validation" / f"{table}.metrics.json"
    if not metrics.exists():
        return {}
    passed = bool(yaml.safe_load(metrics.read_text()).get("passed"))
    return {
        "validation.passed": str(passed).lower(),
        "validation.report": f"reports/validation/{table}.html",
    }


def _dvc_hashes(lock: Path) -> dict[str, str]:
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    found: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.get("outs", []):
            if "md5" in out:
                found[out["path"]] = out["md5"]
    return found


def metric_name(text: str) -> str:
    """MLflow accepts letters, digits, _ - . / and spaces in metric names."""
    return re.sub(r"[^\w\-./ ]", "_", text)


def logged_figures(
    metrics: dict[str, Any], baselines: dict[str, dict[str, Any]], compared: Iterable[str]
) -> dict[str, float]:
    """What a run logs of an evaluation: the model's known numeric figures, and each
    baseline's `compared` ones as `baseline <name> <metric>`."""
    keep = set(compared)
    return {
        **{k: v for k, v in metrics.items() if isinstance(v, int | float) and v == v},
        **{
            f"baseline {name} {k}": v
            for name, figures in baselines.items()
            for k, v in figures.items()
            if k in keep and v == v
        },
    }


def pip_requirements(extra: tuple[str, ...] = ()) -> list[str]:
    """Pinned requirements of a served model; `extra`: packages only its family needs."""
    return [f"{name}=={version(name)}" for name in (*_REQUIREMENTS, *extra)]


def input_schema(example: pd.DataFrame) -> Any:
    """The example's columns with their types, every one optional: a record missing a field
    is still answered (the model treats it as missing), as an ITSM sends what it has."""
    from mlflow.types import ColSpec, Schema

    def kind(column: pd.Series) -> str:
        if pd.api.types.is_datetime64_any_dtype(column):
            return "datetime"
        if pd.api.types.is_bool_dtype(column):
            return "boolean"
        if pd.api.types.is_numeric_dtype(column):
            return "double"
        return "string"

    return Schema([ColSpec(kind(example[name]), name, required=False) for name in example])


def version_description(card: str, limit: int = DESCRIPTION_MAX_CHARS) -> str:
    """A model card as a version's description (markdown, which the MLflow UI renders); one
    longer than the registry holds is cut at a line, saying where the whole card is."""
    if len(card) <= limit:
        return card
    note = (
        f"\n\n*(Cut at the registry's limit of {limit:,} characters: the whole card is an"
        " artifact of this version's run.)*\n"
    )
    kept = card[: limit - len(note)]
    line_end = kept.rfind("\n")
    return (kept[:line_end] if line_end > 0 else kept).rstrip() + note


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    model_uri: str


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """MLflow's messages about choices this module made on purpose, silenced here only:
    the model is a Python object we ship with its code (the CloudPickle notice), the
    environment is uv's and has no pip to version (the pip notice), a local parquet path is
    the dataset source (MLflow registers its local artifact source twice and says so), and
    the uv and signature INFO lines. Anything else MLflow says still shows."""
    loggers = ("mlflow.pyfunc", "mlflow.utils.environment", "mlflow.utils.uv_utils")
    levels = {name: logging.getLogger(name).level for name in loggers}
    try:
        for name in loggers:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message="The specified dataset source can be interpreted in multiple ways",
                category=UserWarning,
            )
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def log_and_register(
    *,
    model: Any,
    model_path: Path,
    registered_model: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: list[Path],
    inputs: dict[str, tuple[pd.DataFrame, str, str]],
    input_example: pd.DataFrame,
    code_path: Path,
    dataset_name: str = "tickets",
    description: str | None = None,
    requirements: tuple[str, ...] = (),
) -> RegisteredVersion:
    """One MLflow run: params, metrics, tags, artifacts, inputs, the pyfunc; then register it.

    `model` is the fitted model saved at `model_path`; it answers the input example.
    `inputs`: context ("training", "validation", "testing") -> (frame, source path, target),
    logged as datasets named `{dataset_name}-{context}`.
    `description`: the model card, set as the new version's description.
    `requirements`: packages the model needs beyond the common ones.
    The alias `challenger` moves to the new version only once everything above is logged.
    """
    import mlflow
    from mlflow.models import infer_signature

    from itsm_ml.tracking.pyfunc import MODEL_ARTIFACT, RespondingPyfunc

    with _quiet_logging(), mlflow.start_run(run_name=registered_model) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({metric_name(k): float(v) for k, v in metrics.items()})
        for context, (frame, source, target) in inputs.items():
            dataset = mlflow.data.from_pandas(
                frame, source=source, name=f"{dataset_name}-{context}", targets=target
            )
            mlflow.log_input(dataset, context=context)
        for path in artifacts:
            mlflow.log_artifact(str(path))

        output_example = model.respond(input_example)
        signature = infer_signature(input_example, output_example)
        signature.inputs = input_schema(input_example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=RespondingPyfunc(),
            artifacts={MODEL_ARTIFACT: str(model_path)},
            code_paths=[str(code_path)],
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements(requirements),
            registered_model_name=registered_model,
        )
        version_number = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        if description:
            client.update_model_version(
                registered_model, version_number, description=version_description(description)
            )
        client.set_registered_model_alias(registered_model, CHALLENGER, version_number)
        return RegisteredVersion(
            name=registered_model,
            version=version_number,
            run_id=run.info.run_id,
            model_uri=f"models:/{registered_model}@{CHALLENGER}",
        )
