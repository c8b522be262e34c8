"""Wiring of the `drift` stage: each registered model's held-out period against its training data.

Per model: a reference profile of the features the model sees, fitted on its training split,
and one of its predictions, fitted on the validation split (out of sample, as predictions in
production are); the test split cut into windows; per window the drift report, the estimated
performance (from calibrated probabilities) beside the realised one, and alerts under the
persistence rule. Reports go to `reports/drift/<model>/`, and to MLflow against the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml import io
from itsm_ml.catalog import ModelLayout, Skipped, catalog
from itsm_ml.config import DriftParams, Params
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError
from itsm_ml.monitoring.performance import PerformanceDrift
from itsm_ml.results import StageResult

PROFILE_FOLDER = "drift/reference"  # in each version's run: the profiles monitoring reads
NEAREST_SCORE = "nearest neighbour score"


@dataclass(frozen=True)
class Monitored:
    """What the stage needs of one model: its table, label, and how it sees and answers."""

    name: str
    table: str
    family: str
    label: str
    model_path: Path
    registered: Path
    metric: str

    def features(self, model: Any, frame: pd.DataFrame) -> pd.DataFrame:
        if self.family == "change_risk":
            return model.featurizer.transform(frame).reset_index(drop=True)
        columns = [*model.categorical_, *([model.text_column] if model.uses_text_ else [])]
        return frame[columns].reset_index(drop=True)

    def columns(self, model: Any) -> dict[str, Any]:
        if self.family == "change_risk":
            # Track records grow and fill in over time by construction (counts rise; rates
            # are missing until the first outcomes are known), so they would always "drift";
            # the performance estimate watches what they do to the model.
            trending = ("_known_changes", "_recent_changes", "_failure_rate")
            numeric = [c for c in model.model.numeric_ if not c.endswith(trending)]
            return {"numeric": numeric, "categorical": model.model.categorical_}
        return {
            "categorical": list(model.categorical_),
            "text": model.text_column if model.uses_text_ else None,
        }

    def predictions(self, model: Any, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The prediction as a column to profile, and the probabilities behind it."""
        probabilities = model.predict_proba(frame)
        if self.family == "change_risk":
            return pd.DataFrame({"predicted risk": probabilities[:, 1]}), probabilities
        labels = model.classes_[probabilities.argmax(axis=1)]
        predicted = pd.DataFrame({"predicted class": labels.astype(str)})
        if self.family == "knowledge":
            # How close the nearest earlier ticket is: new kinds of tickets (or an index
            # gone stale) show as a fall before any resolution is known.
            best = model.neighbours(frame, 1).scores[:, 0]
            predicted[NEAREST_SCORE] = np.where(np.isfinite(best), best, np.nan)
        return predicted, probabilities

    def performance(
        self, probabilities: np.ndarray, frame: pd.DataFrame, model: Any
    ) -> dict[str, float]:
        """Estimated from every record's probabilities (known at once); realised on the
        records already labelled."""
        from sklearn.metrics import roc_auc_score

        from itsm_ml.monitoring.performance import estimated_accuracy, estimated_auc

        known = frame[self.label].notna().to_numpy()
        truth = frame[self.label][known]
        if self.family == "change_risk":
            failed = truth.astype(bool).to_numpy()
            realised = (
                float(roc_auc_score(failed, probabilities[known, 1]))
                if len(set(failed.tolist())) == 2
                else float("nan")
            )
            return {
                "estimated": estimated_auc(probabilities[:, 1]),
                "realised": realised,
                "labelled": int(known.sum()),
                "estimated_failure_rate": float(probabilities[:, 1].mean()),
                "realised_failure_rate": float(failed.mean()) if len(failed) else float("nan"),
            }
        predicted = model.classes_[probabilities.argmax(axis=1)].astype(str)
        realised = (
            float(np.mean(predicted[known] == truth.astype(str).to_numpy()))
            if known.any()
            else float("nan")
        )
        return {
            "estimated": estimated_accuracy(probabilities),
            "realised": realised,
            "labelled": int(known.sum()),
        }

    def performance_check(
        self, model: Any, labelled: pd.DataFrame, settings: DriftParams
    ) -> PerformanceDrift:
        """Realised performance of records whose label arrived, against their promise."""
        from itsm_ml.monitoring.performance import accuracy_drift, auc_drift

        limits = settings.thresholds
        z, min_drop, min_rows = limits.z, limits.performance_drop, settings.min_window
        probabilities = np.empty((0, 2)) if labelled.empty else self.predictions(model, labelled)[1]
        truth = labelled[self.label]
        if self.family == "change_risk":
            failed = truth.astype(bool).to_numpy()
            return auc_drift(probabilities[:, 1], failed, z=z, min_drop=min_drop, min_rows=min_rows)
        predicted = model.classes_[probabilities.argmax(axis=1)].astype(str)
        correct = predicted == truth.astype(str).to_numpy()
        return accuracy_drift(probabilities, correct, z=z, min_drop=min_drop, min_rows=min_rows)


def monitored(params: Params, item: str, root: Path) -> Monitored:
    entry = catalog(params).get(item)
    layout = ModelLayout(root, entry.name)
    return Monitored(
        entry.name,
        entry.table,
        entry.family,
        entry.label,
        layout.model,
        layout.registered,
        "ROC AUC" if entry.family == "change_risk" else "accuracy",
    )


def drift_folder(root: Path, item: str) -> Path:
    return root / "reports" / "drift" / item


def profile_path(root: Path, item: str) -> Path:
    return root / "models" / "drift" / f"{item}.joblib"


def _windows(frame: pd.DataFrame, params: Params) -> list[tuple[str, pd.DataFrame]]:
    from itsm_ml.monitoring.drift import count_windows, time_windows

    settings = params.drift
    if settings.window_period and _timed(frame):
        return list(time_windows(frame, "opened_at", settings.window_period))
    return list(count_windows(frame, settings.window_rows, "opened_at" if _timed(frame) else None))


def latest_windows(
    frame: pd.DataFrame, params: Params, count: int
) -> list[tuple[str, pd.DataFrame]]:
    """The `count` most recent windows, cut back from the newest record: the newest window
    is full (by count) or the current calendar period (by time)."""
    settings = params.drift
    if settings.window_period and _timed(frame):
        return _windows(frame, params)[-count:]
    from itsm_ml.monitoring.drift import count_windows

    timed = _timed(frame)
    ordered = frame.sort_values("opened_at", kind="stable") if timed else frame
    recent = ordered.iloc[-count * settings.window_rows :]
    cut = len(recent) % settings.window_rows  # the short window is the oldest
    older = [(_label(recent.iloc[:cut]), recent.iloc[:cut])] if cut else []
    time_column = "opened_at" if timed else None
    return older + list(count_windows(recent.iloc[cut:], settings.window_rows, time_column))


def _label(part: pd.DataFrame) -> str:
    if _timed(part):
        return f"{part['opened_at'].min():%Y-%m-%d} to {part['opened_at'].max():%Y-%m-%d}"
    return f"{len(part)} rows"


def _timed(frame: pd.DataFrame) -> bool:
    return "opened_at" in frame and len(frame) > 0 and bool(frame["opened_at"].notna().all())


def _labelled_in_span(
    pool: pd.DataFrame, window: pd.DataFrame, label: str, start: Any, end: Any
) -> tuple[pd.DataFrame, str]:
    """Records whose label arrived within [start, end): tickets by their close time, since a
    ticket opened in a window closes in a later one. Without close times: the window's own
    labelled records."""
    if "closed_at" in pool and pool["closed_at"].notna().any() and start is not None:
        closed = pool["closed_at"]
        chosen = pool[pool[label].notna() & (closed >= start) & (closed < end)]
        return chosen.reset_index(drop=True), "closed in window"
    return window[window[label].notna()].reset_index(drop=True), "opened in window (no close times)"


def judge_windows(
    target: Monitored,
    model: Any,
    profiles: dict[str, Any],
    windows: list[tuple[str, pd.DataFrame]],
    pool: pd.DataFrame,
    params: Params,
) -> list[dict[str, Any]]:
    """Each window against the model's reference profiles, and its performance.

    Per window: data drift (features) and prediction drift; performance estimated from the
    window's probabilities (known at once) beside the realised one of its labelled records;
    and the performance check on the records of `pool` whose label arrived within the
    window's span. A window is flagged when its data or its performance drifted; alerts
    follow the persistence rule over flagged windows.
    """
    from itsm_ml.monitoring.drift import DriftReport, persistent_alerts

    starts = [part["opened_at"].min() if _timed(part) else None for _, part in windows]
    ends = [*starts[1:], pd.Timestamp.max]
    reports: list[dict[str, Any]] = []
    for (name, window), start, end in zip(windows, starts, ends, strict=True):
        window = window.reset_index(drop=True)
        predictions, probabilities = target.predictions(model, window)
        data = profiles["features"].score(target.features(model, window), name)
        predicted = profiles["predictions"].score(predictions, name)
        report = DriftReport(
            name, data.rows, data.min_rows, data.features + predicted.features
        ).to_dict()
        report["performance"] = target.performance(probabilities, window, model)
        arrived, basis = _labelled_in_span(pool, window, target.label, start, end)
        check = target.performance_check(model, arrived, params.drift)
        report["performance_check"] = {**check.to_dict(), "basis": basis}
        report["flagged"] = bool(report["drifted"] or check.drifted)
        reports.append(report)
    alerts = persistent_alerts([r["flagged"] for r in reports], params.drift.persistence)
    for report, alert in zip(reports, alerts, strict=True):
        report["alert"] = alert
    return reports


def load_profiles(path: Path) -> dict[str, Any]:
    import joblib

    return dict(joblib.load(path))


def drift(params: Params, item: str, root: Path) -> Any:
    import joblib

    from itsm_ml.monitoring.drift import ReferenceProfile, persistent_alerts
    from itsm_ml.monitoring.report import timeline_figure

    target = monitored(params, item, root)
    model = joblib.load(target.model_path)
    if isinstance(model, Skipped):
        # DVC wants every output; they say why there is nothing to watch.
        io.write_json(
            {"skipped": True, "reason": model.reason}, drift_folder(root, item) / "drift.json"
        )
        with io.atomic_path(profile_path(root, item)) as tmp:
            joblib.dump(model, tmp)
        return model
    if target.family == "early_warning":
        from itsm_ml.monitoring import detector as detector_monitoring

        return detector_monitoring.drift(params, item, root, model)
    if target.family == "problems":
        from itsm_ml.monitoring import recurrence as recurrence_monitoring

        return recurrence_monitoring.drift(params, item, root, model)
    layout = Layout(root, target.table)
    parts = layout.read_splits()
    test = parts["test"].reset_index(drop=True)
    if not test[target.label].notna().any():
        raise ItsmMlError(f"drift of {item}: no labelled record in the test split")

    registered = _registered(target.registered)
    run_id = _registered_run(root, registered)  # before any work: a reset store fails at once
    columns = target.columns(model)
    train = parts["train"]
    reference = ReferenceProfile(params.drift).fit(
        target.features(model, train),
        **columns,
        time=train["opened_at"].to_numpy() if "opened_at" in train else None,
    )
    valid_predictions, _ = target.predictions(model, parts["valid"])
    numeric = [c for c in valid_predictions if pd.api.types.is_numeric_dtype(valid_predictions[c])]
    prediction_reference = ReferenceProfile(params.drift).fit(
        valid_predictions,
        numeric=numeric,
        categorical=[c for c in valid_predictions if c not in numeric],
    )
    profiles = {"features": reference, "predictions": prediction_reference}
    reports = judge_windows(target, model, profiles, _windows(test, params), test, params)
    alerts = [r["alert"] for r in reports]
    performance_rows = [r["performance"] for r in reports]
    performance = pd.DataFrame(performance_rows)
    performance.attrs["metric"] = target.metric
    judged = [r["has_verdict"] for r in reports]
    errors = (performance.estimated - performance.realised).abs()[judged]
    # The gate weighs the two kinds apart: data drift warns, performance drift blocks.
    data_alerts = persistent_alerts([r["drifted"] for r in reports], params.drift.persistence)
    performance_alerts = persistent_alerts(
        [r["performance_check"]["drifted"] for r in reports], params.drift.persistence
    )
    verdicts = [r["performance_check"] for r in reports if r["performance_check"]["has_verdict"]]
    last = verdicts[-1] if verdicts else {"estimated": float("nan"), "realised": float("nan")}
    summary = {
        "model": registered.get("name", item),
        "version": registered.get("version", "unknown"),
        "windows": len(reports),
        "windows_with_verdict": int(sum(judged)),
        "drifted_windows": int(sum(r["drifted"] for r in reports)),
        "performance_drifted_windows": int(sum(r["performance_check"]["drifted"] for r in reports)),
        "alert_windows": int(sum(alerts)),
        "alert_at_end": bool(alerts[-1]) if alerts else False,
        "data_alert_windows": int(sum(data_alerts)),
        "data_alert_at_end": bool(data_alerts[-1]) if data_alerts else False,
        "performance_alert_windows": int(sum(performance_alerts)),
        "performance_alert_at_end": bool(performance_alerts[-1]) if performance_alerts else False,
        "last_estimated": float(last["estimated"]),
        "last_realised": float(last["realised"]),
        "persistence": params.drift.persistence,
        "min_window": params.drift.min_window,
        "window": params.drift.window_period or f"{params.drift.window_rows} rows",
        "performance_metric": target.metric,
        "estimate_mean_abs_error": float(errors.mean()) if len(errors.dropna()) else float("nan"),
    }

    figure = timeline_figure(
        reports, performance, f"{summary['model']} v{summary['version']}: drift per window"
    )
    write_drift(root, item, summary, reports, figure, profiles, {**registered, "run_id": run_id})
    return StageResult(
        f"{summary['model']} v{summary['version']}: {summary['drifted_windows']} of"
        f" {summary['windows']} windows drifted, {summary['alert_windows']} alerts;"
        f" {summary['performance_metric']} estimate off by"
        f" {summary['estimate_mean_abs_error']:.3f} on average",
        summary,
    )


def write_drift(
    root: Path,
    item: str,
    summary: dict[str, Any],
    reports: list[dict[str, Any]],
    figure: Any,
    reference: Any,
    registered: dict[str, Any],
) -> None:
    """The drift stage's outputs (drift.json, metrics.json, the page, the timeline, the
    reference `itsm-ml monitor` reads), logged to the version when one was registered
    (`registered["run_id"]` not None)."""
    import joblib

    from itsm_ml.monitoring.report import render_html

    out = drift_folder(root, item)
    io.write_json({"summary": summary, "windows": reports}, out / "drift.json")
    io.write_json(summary, out / "metrics.json")
    io.write_text(
        render_html(summary["model"], str(summary["version"]), summary, reports, timeline=figure),
        out / "drift.html",
    )
    io.save_figure(figure, out / "timeline.png")
    reference_file = profile_path(root, item)
    with io.atomic_path(reference_file) as tmp:
        joblib.dump(reference, tmp)
    if registered.get("run_id") is not None:
        _log_to_registry(registered, summary, out, reference_file)


def _registered(path: Path) -> dict[str, Any]:
    import json

    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def _registered_run(root: Path, registered: dict[str, Any]) -> str | None:
    """The run of the version an evaluation registered, looked up in the store (run ids
    differ on every machine, and registered.json is tracked in git); None when nothing was
    registered. Checked before any work, so a reset store fails the stage at once."""
    if not registered.get("version"):
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    from itsm_ml.tracking import registry

    registry.configure(root)
    name, version = registered["name"], str(registered["version"])
    try:
        return str(mlflow.MlflowClient().get_model_version(name, version).run_id)
    except MlflowException as exc:
        raise ItsmMlError(
            f"{name} v{version}, registered by the last `evaluate`, is not in the tracking"
            f" store {registry.tracking_uri(root)}: the store was reset or replaced since."
            " `make run` or `itsm-ml retrain` registers it again (by hand:"
            " `itsm-ml registry-sync`, then `dvc repro`)"
        ) from exc


def _log_to_registry(
    registered: dict[str, Any], summary: dict[str, Any], out: Path, profiles: Path
) -> None:
    """The drift figures on the model version they judge, its run (`registered["run_id"]`,
    looked up by `_registered_run`) and its tags; and the reference profiles, which
    `itsm-ml monitor` reads back for the version serving. The store is the one
    `_registered_run` configured."""
    import mlflow

    client = mlflow.MlflowClient()
    for name in ("drift.html", "timeline.png", "drift.json"):
        client.log_artifact(registered["run_id"], str(out / name), "drift")
    client.log_artifact(registered["run_id"], str(profiles), PROFILE_FOLDER)
    keys = (
        "windows",
        "drifted_windows",
        "performance_drifted_windows",
        "alert_windows",
        "alert_at_end",
        "data_alert_windows",
        "data_alert_at_end",
        "performance_alert_windows",
        "performance_alert_at_end",
        "last_estimated",
        "last_realised",
        "estimate_mean_abs_error",
    )
    for key in keys:
        value = summary[key]
        if isinstance(value, float) and np.isnan(value):
            continue
        client.log_metric(registered["run_id"], f"drift {key}", float(value))
        client.set_model_version_tag(
            registered["name"], str(registered["version"]), f"drift.{key}", str(value)
        )
    client.set_model_version_tag(
        registered["name"],
        str(registered["version"]),
        "drift.performance_metric",
        summary["performance_metric"],
    )
