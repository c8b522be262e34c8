"""`itsm-ml monitor`: the newest data against the model that serves it.

For each model with a `champion`: that version (not the latest challenger) and the reference
profiles the drift stage logged with it; the newest `persistence` windows of the current
table, cut back from its newest record; per window the data and prediction drift, the
estimated performance, and the performance check on the records whose label arrived in it
(tickets by their close time). An alert needs every one of those windows flagged, the same
persistence rule as the drift stage, so one noisy window pages no one.

Each watch writes `reports/monitor/<model>.json` and `.html` and tags the version
(`monitor.status`, `monitor.at`), where the ITSM integration and the gate can read it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml import io
from itsm_ml.catalog import catalog
from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError
from itsm_ml.monitoring.stage import (
    PROFILE_FOLDER,
    judge_windows,
    latest_windows,
    load_profiles,
    monitored,
)
from itsm_ml.tracking import registry

FINE, DRIFT, ALERT, NO_VERDICT, NO_CHAMPION = "fine", "drift", "alert", "no verdict", "no champion"


@dataclass(frozen=True)
class Watch:
    """What monitoring found for one model's champion."""

    item: str
    model: str
    version: str | None
    status: str
    windows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.windows[-1] if self.windows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "windows": self.windows,
        }


def current_table(root: Path, table: str, path: Path | None = None) -> pd.DataFrame:
    """The records to watch: a canonical table given, or the last one the pipeline validated."""
    source = path or Layout(root, table).validated
    if source.suffix != ".parquet":
        raise ItsmMlError(f"{source}: give current {table} as a canonical .parquet table")
    if not source.exists():
        raise ItsmMlError(
            f"{source}: no current {table} to watch (run the pipeline, or pass a canonical table)"
        )
    return io.read_table(source)


def watch(params: Params, item: str, root: Path, current: pd.DataFrame) -> Watch:
    """Judge the newest windows of `current` for the champion of `item`; report and tag."""
    import mlflow

    target = monitored(params, item, root)
    name = catalog(params).get(item).registered_model
    client = registry.client(root)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        return Watch(item, name, None, NO_CHAMPION)
    if current.empty:
        raise ItsmMlError(f"no current {target.table} to watch for {name}")
    version = str(champion.version)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}").unwrap_python_model().model
    if target.family == "early_warning":
        reports = _detector_periods(model, params, current, name, version)
    elif target.family == "problems":
        reports = _recurrence_periods(model, params, current, root, name, version)
    else:
        profiles = _champion_profiles(champion, item, name)
        windows = latest_windows(current, params, params.drift.persistence)
        reports = judge_windows(target, model, profiles, windows, current, params)
    latest = reports[-1]
    status = (
        ALERT
        if latest["alert"]
        else DRIFT
        if latest["flagged"]
        else FINE
        if latest["has_verdict"]
        else NO_VERDICT
    )
    found = Watch(item, name, version, status, reports)
    _record(root, client, found, version, params)
    return found


def _detector_periods(
    model: Any, params: Params, current: pd.DataFrame, name: str, version: str
) -> list[dict[str, Any]]:
    """A detector's champion over the current tickets after its training: over-alerting and
    volume per monitoring period, the newest `drift.persistence` of them."""
    from itsm_ml.monitoring.detector import periods

    timed = current[current["opened_at"].notna()].sort_values("opened_at", kind="stable")
    reports, _ = periods(model, params, timed)
    if not reports:
        raise ItsmMlError(
            f"{name} v{version}: no ticket of its series after its training (last point"
            f" {model.last_seen_}) to watch; pass newer tickets with --tickets"
        )
    return reports[-params.drift.persistence :]


def _recurrence_periods(
    model: Any, params: Params, current: pd.DataFrame, root: Path, name: str, version: str
) -> list[dict[str, Any]]:
    """A recurrence model's champion over the current tickets (and micro-records) after its
    training: the review load and the groups founded per monitoring period, the newest
    `drift.persistence` of them."""
    from itsm_ml.monitoring.recurrence import periods
    from itsm_ml.problems.training import micro_records

    timed = current[current["opened_at"].notna()]
    after = timed[timed["opened_at"] > model.last_seen_] if model.last_seen_ is not None else timed
    if after.empty:
        raise ItsmMlError(
            f"{name} v{version}: no ticket after its training (last record"
            f" {model.last_seen_}) to watch; pass newer tickets with --tickets"
        )
    start = pd.Timestamp(after["opened_at"].min())
    reports, _ = periods(model, params, timed, micro_records(root), start)
    return reports[-params.drift.persistence :]


def _champion_profiles(champion: Any, item: str, name: str) -> dict[str, Any]:
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    artifact = f"{PROFILE_FOLDER}/{item}.joblib"
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = download_artifacts(
                run_id=champion.run_id, artifact_path=artifact, dst_path=folder
            )
        except (MlflowException, OSError) as exc:
            raise ItsmMlError(
                f"{name} v{champion.version}: no reference profile `{artifact}` in its run"
                f" {champion.run_id}; the drift stage logs it (dvc repro drift@{item})"
            ) from exc
        return load_profiles(Path(path))


def _record(root: Path, client: Any, found: Watch, version: str, params: Params) -> None:
    from itsm_ml.monitoring.report import render_html

    at = datetime.now(UTC).isoformat(timespec="seconds")
    out = root / "reports" / "monitor"
    io.write_json({"at": at, **found.to_dict()}, out / f"{found.item}.json")
    summary = {
        "windows": len(found.windows),
        "alert_windows": sum(bool(w["alert"]) for w in found.windows),
        "window": params.drift.window_period or f"{params.drift.window_rows} rows",
        "persistence": params.drift.persistence,
        "min_window": params.drift.min_window,
    }
    io.write_text(
        render_html(found.model, version, summary, found.windows), out / f"{found.item}.html"
    )
    client.set_model_version_tag(found.model, version, "monitor.status", found.status)
    client.set_model_version_tag(found.model, version, "monitor.at", at)
