"""Warnings from the history: incident volume (and a metrics export) scored point by point,
alarms turned into records the ITSM can act on.

Each warning says which series, when the alarm opened and how long it stayed open, how
surprising it was and by which signal, the points before it (the evidence), the group that
owns what it counts, and the runbook `early_warning.runbooks` recommends. Its id is a digest
of the series and the time the alarm opened, so the same alarm found again (a stage run
twice, a watch repeated) is the same warning: an integration can create a ticket once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml import io
from itsm_ml.config import EarlyWarningParams
from itsm_ml.early_warning.alarms import alarm_events
from itsm_ml.early_warning.detectors import DETECTORS, StreamingDetector
from itsm_ml.early_warning.volume import incident_volume
from itsm_ml.errors import ConfigError

GROUP_COLUMN = "label_assignment_group"
SERIES_COLUMNS = (
    "series",
    "detector",
    "points",
    "first",
    "last",
    "alarms",
    "alarms_per_week",
    "owner_group",
)


@dataclass(frozen=True)
class Watched:
    """Points of one kind scored by one detector."""

    scored: pd.DataFrame  # series, timestamp, value, score, basis
    detector: str
    threshold: float


@dataclass(frozen=True)
class Watch:
    warnings: list[dict[str, Any]]
    series: pd.DataFrame  # one row per series watched
    watched: list[Watched]
    notes: list[str]


def threshold_of(detector: StreamingDetector, params: EarlyWarningParams) -> float:
    configured = params.thresholds.get(detector.name)  # type: ignore[call-overload]
    return float(configured) if configured is not None else detector.alarm


def _split_name(series: str) -> tuple[str | None, str]:
    column, found, value = series.partition("=")
    return (column, value) if found else (None, series)


def owners_from_tickets(tickets: pd.DataFrame, by: tuple[str, ...]) -> dict[str, str]:
    """`<column>=<value>` -> the group that handled most of that value's tickets."""
    if GROUP_COLUMN not in tickets.columns:
        return {}
    owners: dict[str, str] = {}
    for column in by:
        known = tickets[[column, GROUP_COLUMN]].dropna()
        if known.empty:
            continue
        top = known.groupby(column)[GROUP_COLUMN].agg(lambda groups: groups.value_counts().index[0])
        owners.update({f"{column}={value}": str(group) for value, group in top.items()})
    return owners


def _first_match(keys: list[str | None], table: dict[str, str]) -> tuple[str | None, str | None]:
    for key in keys:
        if key is not None and key in table:
            return table[key], key
    return None, None


def _warning(
    event: pd.Series,
    points: pd.DataFrame,
    watched: Watched,
    params: EarlyWarningParams,
    owners: dict[str, str],
) -> dict[str, Any]:
    series = str(event.series)
    _, value = _split_name(series)
    opened = pd.Timestamp(event.opened_at)
    before = points[points.timestamp < opened].tail(params.evidence)
    during = points[(points.timestamp >= opened) & (points.timestamp <= event.last_at)]
    evidence = pd.concat([before, during])
    owner, owner_basis = _first_match([series, value], params.owners)
    if owner is None and series in owners:
        owner, owner_basis = owners[series], "most tickets of this value"
    runbook, runbook_basis = _first_match([series, value, str(event.basis)], params.runbooks)
    digest = hashlib.sha256(f"{series}|{opened.isoformat()}".encode()).hexdigest()[:12]
    return {
        "id": f"EW-{digest}",
        "series": series,
        "opened_at": opened.isoformat(),
        "last_at": pd.Timestamp(event.last_at).isoformat(),
        "points_above": int(event.points),
        "peak": round(float(event.peak), 3),
        "peak_at": pd.Timestamp(event.peak_at).isoformat(),
        "signal": str(event.basis),
        "detector": watched.detector,
        "threshold": watched.threshold,
        "short_description": (
            f"Early warning: {series}, {event.basis} (surprise {float(event.peak):.1f})"
        ),
        "owner_group": owner,
        "owner_basis": owner_basis,
        "recommended_action": runbook,
        "runbook_basis": runbook_basis,
        "evidence": [
            {"timestamp": t.isoformat(), "value": float(v), "score": round(float(s), 3)}
            for t, v, s in zip(evidence.timestamp, evidence.value, evidence.score, strict=True)
        ],
    }


def _score(points: pd.DataFrame, detector_name: str, params: EarlyWarningParams) -> Watched:
    detector = DETECTORS[detector_name]()
    scored = detector.score(points)
    return Watched(scored, detector.name, threshold_of(detector, params))


def watch(
    params: EarlyWarningParams,
    tickets: pd.DataFrame | None = None,
    metrics: pd.DataFrame | None = None,
) -> Watch:
    """Score the history and turn its alarms into warnings, oldest first."""
    notes: list[str] = []
    watched: list[Watched] = []
    owners: dict[str, str] = {}
    if params.volume is not None and tickets is not None:
        frames = []
        for column in params.volume.by:
            if column not in tickets.columns or tickets[column].isna().all():
                notes.append(f"the tickets have no {column!r} values: its volume is not watched")
                continue
            volume = incident_volume(
                tickets,
                column,
                frequency=params.volume.frequency,
                min_tickets=params.volume.min_tickets,
            )
            frames.append(volume.points)
            if volume.skipped:
                notes.append(
                    f"{len(volume.skipped)} values of {column!r} have fewer than "
                    f"{params.volume.min_tickets} tickets and are not watched: "
                    + ", ".join(sorted(volume.skipped)[:5])
                    + (" ..." if len(volume.skipped) > 5 else "")
                )
        points = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if not points.empty:
            watched.append(_score(points, params.volume.detector, params))
        owners = owners_from_tickets(tickets, tuple(c for c in params.volume.by if c in tickets))
    if params.metrics is not None and metrics is not None and not metrics.empty:
        watched.append(_score(metrics, params.metrics.detector, params))
    if params.volume is None and params.metrics is None:
        raise ConfigError(
            "early_warning: nothing to watch (set early_warning.volume with a tickets table, "
            "or early_warning.metrics with a metrics export)"
        )
    warnings: list[dict[str, Any]] = []
    rows = []
    for each in watched:
        events = alarm_events(each.scored, each.threshold, params.close_after)
        by_series = dict(tuple(each.scored.groupby("series", sort=False)))
        for _, event in events.iterrows():
            warnings.append(_warning(event, by_series[event.series], each, params, owners))
        counts = events.series.value_counts()
        for series, points in by_series.items():
            weeks = max(
                (points.timestamp.max() - points.timestamp.min()) / pd.Timedelta(weeks=1), 1e-9
            )
            alarms = int(counts.get(series, 0))
            rows.append(
                {
                    "series": series,
                    "detector": each.detector,
                    "points": len(points),
                    "first": points.timestamp.min().isoformat(),
                    "last": points.timestamp.max().isoformat(),
                    "alarms": alarms,
                    "alarms_per_week": round(alarms / weeks, 3),
                    "owner_group": params.owners.get(series) or owners.get(series),
                }
            )
    warnings.sort(key=lambda w: (w["opened_at"], w["series"]))
    series_table = pd.DataFrame(rows, columns=list(SERIES_COLUMNS))
    series_table = series_table.sort_values(["alarms", "series"], ascending=[False, True])
    return Watch(warnings, series_table.reset_index(drop=True), watched, notes)


def incident_fields(warning: dict[str, Any]) -> dict[str, str]:
    """The incident an early warning opens in the ITSM: what, since when, how sure, the
    evidence and the runbook; the owning group when known (its display value)."""
    evidence = warning["evidence"][-6:]
    lines = [
        f"{warning['series']}: {warning['signal']}, surprise {warning['peak']:.1f} at "
        f"{warning['peak_at']} (alarm level {warning['threshold']:g}, detector "
        f"{warning['detector']}).",
        f"Alarm open from {warning['opened_at']} to {warning['last_at']}.",
        "Latest points: " + "; ".join(f"{p['timestamp']} {p['value']:g}" for p in evidence),
    ]
    if warning["recommended_action"]:
        lines.append(f"Recommended runbook: {warning['recommended_action']}.")
    lines.append(f"Raised by itsm-ml early warning {warning['id']}.")
    fields = {
        "short_description": warning["short_description"][:160],
        "description": "\n".join(lines),
    }
    if warning["owner_group"]:
        fields["assignment_group"] = str(warning["owner_group"])
    return fields


def plot_series(
    points: pd.DataFrame,
    warnings: list[dict[str, Any]],
    threshold: float,
    labelled: Sequence[tuple[pd.Timestamp, pd.Timestamp]] = (),
) -> Any:
    """The series, its score and its alarms (shaded red from opening to the last crossing);
    `labelled` windows, when judged against them, shaded green underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 4.5), sharex=True, height_ratios=[3, 1])
    top.plot(points.timestamp, points.value, linewidth=0.7, color="#33658a")
    top.set_ylabel("value")
    top.set_title(str(points.series.iloc[0]), loc="left", fontsize=10)
    bottom.plot(points.timestamp, points.score, linewidth=0.7, color="#555555")
    bottom.axhline(threshold, color="#c0392b", linewidth=0.8, linestyle="--")
    bottom.set_ylabel("surprise")
    # An alarm of an hour on a year-long axis would be thinner than a pixel.
    visible = (points.timestamp.max() - points.timestamp.min()) / 250
    for start, end in labelled:
        for axis in (top, bottom):
            axis.axvspan(start, max(end, start + visible), color="#27ae60", alpha=0.25)
    for warning in warnings:
        start, end = pd.Timestamp(warning["opened_at"]), pd.Timestamp(warning["last_at"])
        for axis in (top, bottom):
            axis.axvspan(start, max(end, start + visible), color="#e74c3c", alpha=0.35)
    figure.tight_layout()
    return figure


def slug(series: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in series.lower()).strip("-")
    return f"{cleaned[:60]}-{hashlib.sha256(series.encode()).hexdigest()[:6]}"


def write_watch(result: Watch, folder: Path, plots: int) -> dict[str, Any]:
    """warnings.json, series.json, summary.json and a PNG per most-alarmed series."""
    io.write_json(result.warnings, folder / "warnings.json")
    io.write_json(result.series.to_dict(orient="records"), folder / "series.json")
    drawn = result.series[result.series.alarms > 0].head(plots)
    by_series: dict[str, list[dict[str, Any]]] = {}
    for warning in result.warnings:
        by_series.setdefault(warning["series"], []).append(warning)
    figures = {}
    for _, row in drawn.iterrows():
        each = next(w for w in result.watched if w.detector == row.detector)
        points = each.scored[each.scored.series == row.series]
        name = f"{slug(row.series)}.png"
        io.save_figure(
            plot_series(points, by_series.get(row.series, []), each.threshold), folder / name
        )
        figures[row.series] = name
    for stale in folder.glob("*.png"):
        if stale.name not in figures.values():
            stale.unlink()
    spans = pd.to_datetime(result.series["last"]) - pd.to_datetime(result.series["first"])
    weeks = spans.max() / pd.Timedelta(weeks=1) if len(spans) else 0.0
    summary = {
        "series": len(result.series),
        "warnings": len(result.warnings),
        "warnings_per_week": round(len(result.warnings) / weeks, 3) if weeks else None,
        "per_detector": {
            w.detector: {"threshold": w.threshold, "series": int(w.scored.series.nunique())}
            for w in result.watched
        },
        "figures": figures,
        "notes": result.notes,
        "busiest": result.series.head(5)[["series", "alarms"]].to_dict(orient="records"),
    }
    io.write_json(summary, folder / "summary.json")
    return summary
