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

import pandas as pd

from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.early_warning.model import (
    TIME_COLUMN,
    DetectorModel,
    judge_period,
    labelled_windows,
)
from itsm_ml.monitoring.report import budget_figure
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
    from itsm_ml.monitoring.drift import Measured, budget_period, level_ratio, with_alerts

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
        ratio, shifted = level_ratio(float(part["value"].mean()), level, LEVEL_SHIFT)
        budget = settings.false_alarms_per_day
        rate = verdict.false_alarms_per_day
        end = part["timestamp"].max()
        reports.append(
            budget_period(
                f"{pd.Timestamp(start):%Y-%m-%d} to {end:%Y-%m-%d}",
                len(part),
                Measured(
                    "incident volume",
                    "mean per bin, against training's",
                    ratio,
                    LEVEL_SHIFT,
                    shifted,
                ),
                Measured(
                    METRIC,
                    "alarms outside labelled windows per day",
                    rate,
                    budget,
                    bool(rate > budget),
                ),
                {k: float(v) for k, v in verdict.metrics().items() if isinstance(v, int | float)},
                f"{METRIC} {rate:.3f} (budget {budget:g}); {verdict.detected} of"
                f" {verdict.windows} labelled windows found",
            )
        )
    return with_alerts(reports, params.drift.persistence), level


def summary_of(
    reports: list[dict[str, Any]], registered: dict[str, Any], item: str, params: Params
) -> dict[str, Any]:
    from itsm_ml.monitoring.drift import budget_summary

    settings = params.early_warning
    return budget_summary(
        reports,
        registered,
        item,
        params.drift.persistence,
        rate="false_alarms_per_day",
        budget=settings.false_alarms_per_day,
        window=settings.monitor_period,
        metric=METRIC,
    )


def drift(params: Params, item: str, root: Path, model: DetectorModel) -> StageResult:
    from itsm_ml.monitoring.stage import _registered, _registered_run, monitored, write_drift

    target = monitored(params, item, root)
    registered = _registered(target.registered)
    run_id = _registered_run(root, registered)
    test = Layout(root, target.table).read_splits()["test"]
    test = test[test[TIME_COLUMN].notna()].sort_values(TIME_COLUMN, kind="stable")
    reports, level = periods(model, params, test)
    summary = summary_of(reports, registered, item, params)
    budget = params.early_warning.false_alarms_per_day
    figure = budget_figure(
        reports,
        summary,
        metric="false_alarms_per_day",
        budget=budget,
        budget_label=f"budget {budget:g} per day",
        title="over-alerting per period",
        judged=("windows", "detected_windows", "labelled windows", "found", "windows"),
    )
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
