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
from itsm_ml.config import Params
from itsm_ml.errors import ItsmMlError
from itsm_ml.stages import Layout

MODELS = ("routing", "category", "priority", "change-risk")


@dataclass(frozen=True)
class Monitored:
    """What the stage needs of one model: its table, label, and how it sees and answers."""

    name: str
    table: str
    label: str
    model_path: Path
    registered: Path
    metric: str

    def features(self, model: Any, frame: pd.DataFrame) -> pd.DataFrame:
        if self.table == "changes":
            return model.featurizer.transform(frame).reset_index(drop=True)
        columns = [*model.categorical_, *([model.text_column] if model.uses_text_ else [])]
        return frame[columns].reset_index(drop=True)

    def columns(self, model: Any) -> dict[str, Any]:
        if self.table == "changes":
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
        if self.table == "changes":
            return pd.DataFrame({"predicted risk": probabilities[:, 1]}), probabilities
        labels = model.classes_[probabilities.argmax(axis=1)]
        return pd.DataFrame({"predicted class": labels.astype(str)}), probabilities

    def performance(
        self, probabilities: np.ndarray, frame: pd.DataFrame, model: Any
    ) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        from itsm_ml.performance import estimated_accuracy, estimated_auc

        truth = frame[self.label]
        if self.table == "changes":
            failed = truth.astype(bool).to_numpy()
            realised = (
                float(roc_auc_score(failed, probabilities[:, 1]))
                if len(set(failed.tolist())) == 2
                else float("nan")
            )
            return {
                "estimated": estimated_auc(probabilities[:, 1]),
                "realised": realised,
                "estimated_failure_rate": float(probabilities[:, 1].mean()),
                "realised_failure_rate": float(failed.mean()),
            }
        predicted = model.classes_[probabilities.argmax(axis=1)].astype(str)
        known = truth.notna().to_numpy()
        realised = float(np.mean(predicted[known] == truth[known].astype(str).to_numpy()))
        return {"estimated": estimated_accuracy(probabilities), "realised": realised}


def monitored(params: Params, item: str, root: Path) -> Monitored:
    if item == "change-risk":
        return Monitored(
            item,
            "changes",
            "label_failed",
            root / "models" / "change_risk.joblib",
            root / "reports" / "change_risk" / "registered.json",
            "ROC AUC",
        )
    if item not in params.triage.targets:
        raise ItsmMlError(f"unknown model {item!r} for drift; known: {list(MODELS)}")
    return Monitored(
        item,
        "tickets",
        params.triage.targets[item].label,
        root / "models" / "triage" / f"{item}.joblib",
        root / "reports" / "triage" / item / "registered.json",
        "accuracy",
    )


def _windows(frame: pd.DataFrame, params: Params) -> list[tuple[str, pd.DataFrame]]:
    from itsm_ml.drift import count_windows, time_windows

    settings = params.drift
    timed = "opened_at" in frame and frame["opened_at"].notna().all()
    if settings.window_period and timed:
        return list(time_windows(frame, "opened_at", settings.window_period))
    return list(count_windows(frame, settings.window_rows, "opened_at" if timed else None))


def drift(params: Params, item: str, root: Path) -> dict[str, Any]:
    import joblib

    from itsm_ml.drift import DriftReport, ReferenceProfile, persistent_alerts
    from itsm_ml.drift_report import render_html, timeline_figure

    target = monitored(params, item, root)
    model = joblib.load(target.model_path)
    layout = Layout(root, target.table)
    parts = {part: io.read_table(layout.split(part)) for part in ("train", "valid", "test")}
    test = parts["test"][parts["test"][target.label].notna()].reset_index(drop=True)
    if test.empty:
        raise ItsmMlError(f"drift of {item}: no labelled record in the test split")

    columns = target.columns(model)
    reference = ReferenceProfile(params.drift).fit(
        target.features(model, parts["train"]), **columns
    )
    valid_predictions, _ = target.predictions(model, parts["valid"])
    is_risk = "predicted risk" in valid_predictions
    prediction_reference = ReferenceProfile(params.drift).fit(
        valid_predictions,
        numeric=["predicted risk"] if is_risk else [],
        categorical=[] if is_risk else ["predicted class"],
    )

    reports: list[dict[str, Any]] = []
    performance_rows = []
    for name, window in _windows(test, params):
        window = window.reset_index(drop=True)
        predictions, probabilities = target.predictions(model, window)
        data = reference.score(target.features(model, window), name)
        predicted = prediction_reference.score(predictions, name)
        combined = DriftReport(
            name, data.rows, data.min_rows, data.features + predicted.features
        ).to_dict()
        combined["performance"] = target.performance(probabilities, window, model)
        reports.append(combined)
        performance_rows.append(combined["performance"])
    alerts = persistent_alerts([r["drifted"] for r in reports], params.drift.persistence)
    for report, alert in zip(reports, alerts, strict=True):
        report["alert"] = alert
    performance = pd.DataFrame(performance_rows)
    performance.attrs["metric"] = target.metric
    judged = [r["has_verdict"] for r in reports]
    errors = (performance.estimated - performance.realised).abs()[judged]
    registered = _registered(target.registered)
    summary = {
        "model": registered.get("name", item),
        "version": registered.get("version", "unknown"),
        "windows": len(reports),
        "windows_with_verdict": int(sum(judged)),
        "drifted_windows": int(sum(r["drifted"] for r in reports)),
        "alert_windows": int(sum(alerts)),
        "alert_at_end": bool(alerts[-1]) if alerts else False,
        "persistence": params.drift.persistence,
        "min_window": params.drift.min_window,
        "window": params.drift.window_period or f"{params.drift.window_rows} rows",
        "performance_metric": target.metric,
        "estimate_mean_abs_error": float(errors.mean()) if len(errors.dropna()) else float("nan"),
    }

    out = root / "reports" / "drift" / item
    io.write_json({"summary": summary, "windows": reports}, out / "drift.json")
    io.write_json(summary, out / "metrics.json")
    io.write_text(
        render_html(summary["model"], str(summary["version"]), summary, reports), out / "drift.html"
    )
    figure = timeline_figure(
        reports, performance, f"{summary['model']} v{summary['version']}: drift per window"
    )
    _save(figure, out / "timeline.png")
    with io.atomic_path(root / "models" / "drift" / f"{item}.joblib") as tmp:
        joblib.dump({"features": reference, "predictions": prediction_reference}, tmp)
    _log_to_registry(root, registered, summary, out)
    return summary


def _registered(path: Path) -> dict[str, Any]:
    import json

    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()))


def _log_to_registry(
    root: Path, registered: dict[str, Any], summary: dict[str, Any], out: Path
) -> None:
    """The drift figures on the model version they judge: its run and its tags."""
    if not registered.get("run_id"):
        return
    import mlflow

    from itsm_ml import registry

    registry.configure(root)
    client = mlflow.MlflowClient()
    for name in ("drift.html", "timeline.png", "drift.json"):
        client.log_artifact(registered["run_id"], str(out / name), "drift")
    keys = (
        "windows",
        "drifted_windows",
        "alert_windows",
        "alert_at_end",
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


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with io.atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)
