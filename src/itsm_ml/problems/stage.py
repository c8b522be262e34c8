"""DVC stage `problems` and `itsm-ml problems`: the validated tickets and micro-records
grouped and replayed (`detection`), the groups the rule raised written, ranked, as
reports/problems/candidates.json and candidates.html.

Group ids survive a change of the grouping settings: the groups of the last run are kept in
data/problems/groups.json (a persisted output), and each new group takes the id of the
earlier group it mostly is (`grouping.carry_ids`), so decisions recorded against an id stay
attached to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml import io
from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError
from itsm_ml.problems import detection, report
from itsm_ml.results import StageResult


def report_folder(root: Path) -> Path:
    return root / "reports" / "problems"


def groups_file(root: Path) -> Path:
    return root / "data" / "problems" / "groups.json"


def read_groups(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ItsmMlError(f"{path}: the groups of the last run cannot be read ({exc})") from exc
    return {str(k): [str(m) for m in v] for k, v in loaded.items()}


def find_candidates(
    tickets: pd.DataFrame,
    micro_records: pd.DataFrame | None,
    params: Params,
    previous: dict[str, list[str]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], detection.Grouped, pd.DataFrame]:
    settings = params.problems
    records = detection.combine(tickets, micro_records)
    if records.empty:
        raise ItsmMlError("problems: no ticket or micro-record has an open time to place it by")
    grouped = detection.group_records(records, settings)
    if previous:
        grouped = detection.carried(grouped, previous)
    raised = detection.replay(grouped, settings)
    now = grouped.records["opened_at"].max()
    found = detection.evidence(grouped, raised, settings, now)
    first = grouped.records["opened_at"].min()
    months = max((now - first) / pd.Timedelta(days=30.44), 1.0)
    rule = settings.rule
    summary = {
        "records": len(records),
        "tickets": int((records["source"] == detection.TICKET).sum()),
        "micro_records": int((records["source"] == detection.MICRO).sum()),
        "left_out_without_time": len(tickets)
        + (0 if micro_records is None else len(micro_records))
        - len(records),
        "first": first.isoformat(),
        "now": now.isoformat(),
        "groups": len(grouped.groups),
        "groups_of_two_or_more": sum(len(m) >= 2 for m in grouped.groups.values()),
        "raised": len(found),
        "active": sum(c["active"] for c in found),
        "raised_per_month": round(len(found) / months, 2),
        "with_micro_records": sum(c["micro_records"] > 0 for c in found),
        "rule": f"at least {rule.min_records} records from {rule.min_callers} callers within"
        f" {rule.window_days:g} days, no linked problem, more than {rule.growth:g}x the usual"
        " number of records like them",
        "settings": settings.model_dump(mode="json"),
    }
    return summary, found, grouped, raised


def weekly_chart(raised: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 2.6))
    if len(raised):
        weekly = raised.set_index("raised_at").resample("W").size()
        axis.bar(weekly.index, weekly.to_numpy(), width=5, color="#c0392b")
    axis.set_ylabel("raised")
    axis.set_title("Problem candidates raised per week")
    figure.tight_layout()
    png = io.figure_png(figure)
    plt.close(figure)
    return png


def write_candidates(params: Params, root: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Candidates from the validated tables, written to the reports; the summary and the
    ranked candidates (what `itsm-ml problems` shows)."""
    tickets = io.read_table(Layout(root, "tickets").validated)
    micro_path = Layout(root, "micro_records").validated
    micro = io.read_table(micro_path) if micro_path.exists() else None
    state = groups_file(root)
    summary, found, grouped, raised = find_candidates(tickets, micro, params, read_groups(state))
    folder = report_folder(root)
    io.write_json({"summary": summary, "candidates": found}, folder / "candidates.json")
    io.write_text(
        report.render_html(summary, found, weekly_chart(raised)), folder / "candidates.html"
    )
    io.write_json(grouped.groups, state)
    return summary, found


def problems(params: Params, _: str, root: Path) -> StageResult:
    summary, _found = write_candidates(params, root)
    return StageResult(
        f"{summary['raised']} candidate{'s' if summary['raised'] != 1 else ''} raised from"
        f" {summary['records']:,} records"
        f" ({summary['raised_per_month']} a month, {summary['with_micro_records']} holding"
        f" micro-records), {summary['active']} recurring now",
        summary,
    )
