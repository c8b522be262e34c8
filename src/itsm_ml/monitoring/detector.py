"""The `drift` stage of a detector (kind `detector`): its held-out period, period by period
(`early_warning.monitor_period`).

What fails a detector is not a feature drifting but over-alerting, the failure users hate
most: per period, the false alarms per day (alarm episodes opened outside every labelled
window, over all series) against the budget `early_warning.false_alarms_per_day`. Its input
can drift too: a detector learned its rates at one level of traffic, so a period whose volume
is far from training's is flagged as data drift. Both follow `drift.persistence`, and are
recorded on the registered version where the gate reads them, as for every model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.early_warning.model import (
    TIME_COLUMN,
    DetectorModel,
    judge_period,
    labelled_windows,
)
from itsm_ml.results import StageResult

# A period's incident volume this many times training's (or this fraction of it) is data
# drift: the detector's hour-of-week rates no longer describe the traffic it judges.
LEVEL_SHIFT = 1.5
METRIC = "false alarms per day"


def periods(
    model: DetectorModel, params: Params, test: pd.DataFrame
) -> tuple[list[dict[str, Any]], float]:
    """Per monitoring period of `test`: its false alarms per day against the budget, its
    volume against training's, and NAB's figures where it holds labelled windows."""
    from itsm_ml.monitoring.drift import persistent_alerts

    settings = params.early_warning
    points = model.volume(test, known_only=True)
    scored = model.fresh().respond(points)
    windows = labelled_windows(
        test, model.label, model.by, model.frequency, model.outage_min_tickets
    )
    level = float(model.training_level_) if model.training_level_ else float("nan")
    reports: list[dict[str, Any]] = []
    grouper = pd.Grouper(key="timestamp", freq=settings.monitor_period)
    for start, part in scored.groupby(grouper):
        if part.empty:
            continue
        verdict = judge_period(part, windows, model.threshold_, model.close_after)
        ratio = float(part["value"].mean()) / level if level == level and level else float("nan")
        shifted = bool(ratio == ratio and (ratio > LEVEL_SHIFT or ratio < 1 / LEVEL_SHIFT))
        over = bool(verdict.false_alarms_per_day > settings.false_alarms_per_day)
        end = part["timestamp"].max()
        reports.append(
            {
                "window": f"{pd.Timestamp(start):%Y-%m-%d} to {end:%Y-%m-%d}",
                "rows": len(part),
                "has_verdict": True,
                "features": [
                    {
                        "feature": "incident volume",
                        "statistic": "mean per bin, against training's",
                        "value": ratio,
                        "threshold": LEVEL_SHIFT,
                        "drifted": shifted,
                    },
                    {
                        "feature": METRIC,
                        "statistic": "alarms outside labelled windows per day",
                        "value": verdict.false_alarms_per_day,
                        "threshold": settings.false_alarms_per_day,
                        "drifted": over,
                    },
                ],
                "performance": {
                    k: float(v) for k, v in verdict.metrics().items() if isinstance(v, int | float)
                },
                "drifted": shifted,
                "over_budget": over,
                "flagged": shifted or over,
                # What `itsm-ml monitor` shows of the period, as for the other models.
                "drifted_features": [
                    name for name, flag in (("incident volume", shifted), (METRIC, over)) if flag
                ],
                "headline": f"{METRIC} {verdict.false_alarms_per_day:.3f} (budget"
                f" {settings.false_alarms_per_day:g}); {verdict.detected} of {verdict.windows}"
                " labelled windows found",
            }
        )
    persistence = params.drift.persistence
    alerts = persistent_alerts([r["flagged"] for r in reports], persistence)
    for report, alert in zip(reports, alerts, strict=True):
        report["alert"] = alert
    return reports, level


def summary_of(
    reports: list[dict[str, Any]], registered: dict[str, Any], item: str, params: Params
) -> dict[str, Any]:
    from itsm_ml.monitoring.drift import persistent_alerts

    persistence = params.drift.persistence
    data = persistent_alerts([r["drifted"] for r in reports], persistence)
    over = persistent_alerts([r["over_budget"] for r in reports], persistence)
    alerts = [r["alert"] for r in reports]
    rates = [r["performance"]["false_alarms_per_day"] for r in reports]
    return {
        "model": registered.get("name", item),
        "version": registered.get("version", "unknown"),
        "windows": len(reports),
        "windows_with_verdict": len(reports),
        "drifted_windows": int(sum(r["drifted"] for r in reports)),
        "performance_drifted_windows": int(sum(r["over_budget"] for r in reports)),
        "alert_windows": int(sum(alerts)),
        "alert_at_end": bool(alerts[-1]) if alerts else False,
        "data_alert_windows": int(sum(data)),
        "data_alert_at_end": bool(data[-1]) if data else False,
        "performance_alert_windows": int(sum(over)),
        "performance_alert_at_end": bool(over[-1]) if over else False,
        # The gate's sentence reads "realised against promised": the budget is the promise.
        "last_estimated": float(params.early_warning.false_alarms_per_day),
        "last_realised": float(rates[-1]) if rates else float("nan"),
        "false_alarms_per_day": float(np.mean(rates)) if rates else float("nan"),
        "persistence": persistence,
        "min_window": 1,
        "window": params.early_warning.monitor_period,
        "performance_metric": METRIC,
        "estimate_mean_abs_error": float("nan"),
    }


def drift(params: Params, item: str, root: Path, model: DetectorModel) -> StageResult:
    from itsm_ml.monitoring.stage import _registered, _registered_run, monitored, write_drift

    target = monitored(params, item, root)
    registered = _registered(target.registered)
    run_id = _registered_run(root, registered)
    test = Layout(root, target.table).read_splits()["test"]
    test = test[test[TIME_COLUMN].notna()].sort_values(TIME_COLUMN, kind="stable")
    reports, level = periods(model, params, test)
    summary = summary_of(reports, registered, item, params)
    figure = budget_figure(reports, params.early_warning.false_alarms_per_day, summary)
    # What the version is monitored against.
    reference = {
        "false_alarms_per_day": params.early_warning.false_alarms_per_day,
        "training_level": level,
        "threshold": model.threshold_,
    }
    write_drift(root, item, summary, reports, figure, reference, {**registered, "run_id": run_id})
    return StageResult(
        f"{summary['model']} v{summary['version']}: {summary['false_alarms_per_day']:.2f}"
        f" false alarms per day over {summary['windows']} periods of"
        f" {summary['window']} (budget {params.early_warning.false_alarms_per_day:g});"
        f" {summary['performance_drifted_windows']} over budget, {summary['drifted_windows']}"
        f" with volume off training's, {summary['alert_windows']} alerts",
        summary,
    )


def budget_figure(reports: list[dict[str, Any]], budget: float, summary: dict[str, Any]) -> Any:
    """Per period: false alarms per day against the budget, and the labelled windows found."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (upper, lower) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    positions = np.arange(len(reports))
    rates = [r["performance"]["false_alarms_per_day"] for r in reports]
    colours = ["#c0392b" if r["over_budget"] else "#33658a" for r in reports]
    upper.bar(positions, rates, color=colours)
    upper.axhline(budget, ls="--", color="grey", lw=1, label=f"budget {budget:g} per day")
    upper.set(
        ylabel=METRIC,
        title=f"{summary['model']} v{summary['version']}: over-alerting per period",
    )
    upper.legend(fontsize=8, loc="upper left")
    windows = [r["performance"]["windows"] for r in reports]
    found = [r["performance"]["detected_windows"] for r in reports]
    lower.bar(positions, windows, color="#dddddd", label="labelled windows")
    lower.bar(positions, found, color="#27ae60", label="found")
    for position, report in enumerate(reports):
        if report.get("alert"):
            for axis in (upper, lower):
                axis.axvspan(position - 0.5, position + 0.5, color="#fdecea", zorder=0)
    lower.set(ylabel="windows")
    lower.set_xticks(positions, [r["window"] for r in reports], rotation=45, ha="right", fontsize=7)
    lower.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return figure
