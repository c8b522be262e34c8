"""The `drift` stage of a recurrence model (kind `recurrence`): its held-out period, period by
period (`problems.monitor_period`).

What fails a problem-candidate detector in use is the review load: a problem manager who gets
more candidates than anyone can read stops reading them. Per period, the candidates raised
(per month) against the budget `problems.max_candidates_per_month`. Its input can drift too:
when a period's records found new groups far more (or less) often than in training, the words
or fields of the desk changed under the grouping. Both follow `drift.persistence` and are
recorded on the registered version where the gate reads them, as for every model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.monitoring.report import budget_figure
from itsm_ml.problems.model import RecurrenceModel, first_time
from itsm_ml.results import StageResult

# A period whose records found new groups this many times as often as training's (or this
# fraction) is data drift: the grouping no longer recognises what arrives.
NEW_GROUP_SHIFT = 1.5
METRIC = "candidates per month"
FOUNDING = "records founding a group"


def _founding(records: pd.DataFrame) -> pd.Series:
    """Whether each record founded its group (the first of its group in time order)."""
    return ~records["group"].duplicated()


def periods(
    model: RecurrenceModel,
    params: Params,
    tickets: pd.DataFrame,
    micro_records: pd.DataFrame | None,
    start: pd.Timestamp,
) -> tuple[list[dict[str, Any]], float]:
    """Per monitoring period of the records opened from `start` (the history before it is
    replayed too, so groups and the rule see what they saw then): candidates per month
    against the budget, the share of records founding a group against the history's before
    `start`, and the problems raised where the period has linked incidents."""
    from itsm_ml.monitoring.drift import Measured, budget_period, level_ratio, with_alerts
    from itsm_ml.problems.evaluation import period_figures

    settings = params.problems
    budget = settings.max_candidates_per_month
    judged = model.judge(tickets, micro_records, start)
    records = judged.grouped.records.assign(founding=_founding(judged.grouped.records))
    before = records[records["opened_at"] < start]
    level = float(before["founding"].mean()) if len(before) else float("nan")
    after = records[records["opened_at"] >= start]
    reports: list[dict[str, Any]] = []
    grouper = pd.Grouper(key="opened_at", freq=settings.monitor_period)
    for period_start, part in after.groupby(grouper):
        if part.empty:
            continue
        begin = max(pd.Timestamp(period_start), start)
        end = part["opened_at"].max()
        figures = period_figures(judged.grouped, judged.raised, begin, end)
        ratio, shifted = level_ratio(float(part["founding"].mean()), level, NEW_GROUP_SHIFT)
        rate = figures["candidates_per_month"]
        reports.append(
            budget_period(
                f"{begin:%Y-%m-%d} to {end:%Y-%m-%d}",
                len(part),
                Measured(
                    FOUNDING,
                    "share, against the history's before the period",
                    ratio,
                    NEW_GROUP_SHIFT,
                    shifted,
                ),
                Measured(
                    METRIC,
                    "candidates raised in the period, per month",
                    rate,
                    budget,
                    bool(rate > budget),
                ),
                {k: float(v) for k, v in figures.items()},
                f"{METRIC} {rate:.1f} (budget {budget:g}); {figures['problems_raised']} of"
                f" {figures['problems']} problems raised",
            )
        )
    return with_alerts(reports, params.drift.persistence), level


def summary_of(
    reports: list[dict[str, Any]], registered: dict[str, Any], item: str, params: Params
) -> dict[str, Any]:
    from itsm_ml.monitoring.drift import budget_summary

    settings = params.problems
    return budget_summary(
        reports,
        registered,
        item,
        params.drift.persistence,
        rate="candidates_per_month",
        budget=settings.max_candidates_per_month,
        window=settings.monitor_period,
        metric=METRIC,
    )


def drift(params: Params, item: str, root: Path, model: RecurrenceModel) -> StageResult:
    from itsm_ml.monitoring.stage import _registered, _registered_run, monitored, write_drift
    from itsm_ml.problems.training import micro_records

    target = monitored(params, item, root)
    registered = _registered(target.registered)
    run_id = _registered_run(root, registered)
    parts = Layout(root, target.table).read_splits()
    history = pd.concat([parts["train"], parts["valid"], parts["test"]], ignore_index=True)
    reports, level = periods(model, params, history, micro_records(root), first_time(parts["test"]))
    summary = summary_of(reports, registered, item, params)
    budget = params.problems.max_candidates_per_month
    figure = budget_figure(
        reports,
        summary,
        metric="candidates_per_month",
        budget=budget,
        budget_label=f"budget {budget:g} a month",
        title="review load per period",
        judged=(
            "problems",
            "problems_raised",
            "problems (2+ linked incidents)",
            "raised",
            "problems",
        ),
    )
    reference = {
        "max_candidates_per_month": params.problems.max_candidates_per_month,
        "founding_share": level,
        "threshold": model.threshold,
    }
    write_drift(root, item, summary, reports, figure, reference, {**registered, "run_id": run_id})
    return StageResult(
        f"{summary['model']} v{summary['version']}: {summary['candidates_per_month']:.1f}"
        f" candidates a month over {summary['windows']} periods of {summary['window']} (budget"
        f" {params.problems.max_candidates_per_month:g}); {summary['performance_drifted_windows']}"
        f" over budget, {summary['drifted_windows']} founding groups unlike training,"
        f" {summary['alert_windows']} alerts",
        summary,
    )
