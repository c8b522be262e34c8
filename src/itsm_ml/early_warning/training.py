"""Wiring of a `detector` model's stages: warm it on the training period, choose its threshold
on validation's labelled windows, judge it on the test period beside the other detectors,
register it with its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml import io
from itsm_ml.catalog import (
    CatalogEntry,
    ModelLayout,
    best_baseline,
    fit_and_save,
    write_headline,
    write_registered,
)
from itsm_ml.config import Params
from itsm_ml.data import sources
from itsm_ml.data.stage import Layout
from itsm_ml.early_warning.detectors import DETECTORS
from itsm_ml.early_warning.model import (
    TIME_COLUMN,
    DetectorModel,
    PeriodVerdict,
    judge_model,
    labelled_windows,
)
from itsm_ml.errors import ItsmMlError
from itsm_ml.results import StageResult

PLOTTED_SERIES = 6  # series with labelled windows in test drawn in the evaluation


def build_model(params: Params, entry: CatalogEntry, method: str | None = None) -> DetectorModel:
    """The entry's detector from `early_warning` in params.yaml (`method`: another detector
    under the same settings, as a baseline)."""
    settings = params.early_warning
    volume = settings.volume
    if volume is None:
        raise ItsmMlError(
            f"model {entry.name} (models.{entry.name} in params.yaml) is a detector of incident"
            " volume, but early_warning.volume is null; set it (by, frequency, min_tickets)"
        )
    chosen = method or volume.detector
    configured = settings.thresholds.get(chosen)  # type: ignore[call-overload]
    return DetectorModel(
        label=entry.label,
        by=volume.by,
        frequency=volume.frequency,
        min_tickets=volume.min_tickets,
        method=chosen,
        outage_min_tickets=settings.outage_min_tickets,
        close_after=settings.close_after,
        configured_threshold=float(configured) if configured is not None else None,
    )


def nothing_to_judge(params: Params, entry: CatalogEntry, root: Path) -> str | None:
    """Why the test split cannot judge the detector (no labelled window), or None."""
    settings = params.early_warning
    if settings.volume is None:
        return "early_warning.volume is null in params.yaml: no incident volume to watch"
    frame = io.read_table(Layout(root, entry.table).split("test"))
    by, frequency = settings.volume.by, settings.volume.frequency
    if labelled_windows(frame, entry.label, by, frequency, settings.outage_min_tickets):
        return None
    return (
        f"no labelled window in the test split to judge it by: no"
        f" {settings.outage_min_tickets} or more incidents sharing a"
        f" `{entry.label.removeprefix('label_')}` on one value of {list(by)}"
        " (early_warning.outage_min_tickets)"
    )


def train(params: Params, entry: CatalogEntry, root: Path) -> StageResult:
    parts = Layout(root, entry.table).read_splits()
    model = build_model(params, entry)
    seconds = fit_and_save(
        entry, root, model, lambda: model.fit(_timed(parts["train"]), _timed(parts["valid"]))
    )
    summary = {
        "model": entry.name,
        "label": entry.label,
        "series": len(model.series_),
        "last_seen": str(model.last_seen_),
        **model.get_params(),
        "validation": model.validation_,
    }
    io.write_json(summary, ModelLayout(root, entry.name).train_summary)
    found = model.validation_
    windows = (
        f"{found['detected_windows']} of {found['windows']} validation windows found,"
        f" {found['false_alarms_per_day']:.2f} false alarms per day"
        if found.get("windows")
        else "no labelled window in validation"
    )
    return StageResult(
        f"watching {len(model.series_)} series with {model.method}; threshold"
        f" {model.threshold_:.3f} ({model.threshold_basis_}); {windows}; fitted in {seconds:.0f} s",
        summary,
    )


def _timed(frame: pd.DataFrame) -> pd.DataFrame:
    if TIME_COLUMN not in frame or frame[TIME_COLUMN].isna().all():
        raise ItsmMlError(
            f"the tickets have no `{TIME_COLUMN}`: incident volume needs when each ticket opened"
        )
    return frame[frame[TIME_COLUMN].notna()].sort_values(TIME_COLUMN, kind="stable")


def evaluate(params: Params, entry: CatalogEntry, root: Path, model: DetectorModel) -> StageResult:
    from itsm_ml.model_card import render_detector_card
    from itsm_ml.tracking import registry

    layout = ModelLayout(root, entry.name)
    parts = {name: _timed(frame) for name, frame in Layout(root, entry.table).read_splits().items()}
    test = parts["test"]
    verdict, scored = judge_model(model, test)
    if not verdict.windows:
        raise ItsmMlError(
            f"model {entry.name}: the test split has no labelled window (no"
            f" {model.outage_min_tickets} or more incidents sharing a `{entry.label}` on one"
            " series), so NAB cannot judge it; early_warning.outage_min_tickets sets how many"
        )
    metrics: dict[str, Any] = {
        **verdict.metrics(),
        "threshold": model.threshold_,
        "series": len(model.series_),
    }
    baseline_verdicts: dict[str, PeriodVerdict] = {}
    for method in DETECTORS:
        if method == model.method:
            continue
        other = build_model(params, entry, method).fit(parts["train"], parts["valid"])
        baseline_verdicts[method], _ = judge_model(other, test)
    baselines = {name: v.metrics() for name, v in baseline_verdicts.items()}

    out = layout.evaluation
    io.write_json({**metrics, "baselines": baselines}, out / "metrics.json")
    table = verdict.per_series.assign(
        **{
            f"{name} detected": v.per_series.set_index("series")["detected"]
            .reindex(verdict.per_series["series"])
            .to_numpy()
            for name, v in baseline_verdicts.items()
        }
    )
    io.write_csv_for_humans(table, out / "per_series.csv")
    figures = _figures(model, scored, test)
    for name, figure in figures.items():
        io.save_figure(figure, out / name)

    source = sources.describe(params.table(entry.table).source)
    card = render_detector_card(
        registered_model=entry.registered_model,
        label=entry.label.removeprefix("label_"),
        data={
            "source": source,
            "train_rows": len(parts["train"]),
            "valid_rows": len(parts["valid"]),
            "test_rows": len(test),
            "series": len(model.series_),
        },
        model=model.get_params(),
        metrics=metrics,
        baselines=baselines,
        intended_use=entry.intended_use,
        owner=entry.owner,
        limits=list(entry.limits),
    )
    io.write_text(card, layout.card)

    registry.configure(root)
    example = model.volume(test, known_only=True).head(5)
    registered = registry.log_and_register(
        model=model.fresh(),
        model_path=layout.model,
        registered_model=entry.registered_model,
        params={"model": entry.name, **model.get_params()},
        metrics=registry.logged_figures(metrics, baselines, entry.metrics),
        tags=registry.model_tags(root, entry.name, entry.table, source),
        artifacts=[out / name for name in figures] + [out / "per_series.csv", layout.card],
        inputs=registry.split_inputs(
            root,
            entry.table,
            parts,
            [c for c in (*model.by, TIME_COLUMN) if c in test],
            entry.label,
        ),
        input_example=example,
        code_path=Path(__file__).parents[1],
        dataset_name=entry.table,
        description=card,
    )
    write_registered(registered, layout)
    write_headline(layout, entry, metrics, baselines)
    best = best_baseline(entry.metric, baselines)
    name = f"{registered.name} v{registered.version}"
    return StageResult(
        f"{entry.name}: {entry.metric} {metrics[entry.metric]:.1f} against {best:.1f} for the"
        f" best other detector; {verdict.detected} of {verdict.windows} test windows found,"
        f" {verdict.false_alarms_per_day:.2f} false alarms per day; registered {name} as"
        " challenger",
        {**metrics, "registered": name},
    )


def _figures(model: DetectorModel, scored: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    """One PNG per series with labelled windows in test (up to PLOTTED_SERIES): its volume,
    the score, the windows (green) and the alarms (red)."""
    from itsm_ml.early_warning.alarms import alarm_events
    from itsm_ml.early_warning.watch import plot_series, slug

    windows = labelled_windows(
        test, model.label, model.by, model.frequency, model.outage_min_tickets
    )
    events = alarm_events(scored, model.threshold_, model.close_after)
    figures = {}
    for series in sorted(windows, key=lambda s: (-len(windows[s]), s))[:PLOTTED_SERIES]:
        points = scored[scored["series"] == series]
        if points.empty:
            continue
        mine = events[events["series"] == series]
        alarms = [
            {"opened_at": a, "last_at": b}
            for a, b in zip(mine.opened_at, mine.last_at, strict=True)
        ]
        figure = plot_series(points, alarms, model.threshold_, windows[series])
        figures[f"detections-{slug(series)}.png"] = figure
    return figures
