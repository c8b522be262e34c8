"""DVC stage `early-warning`: the validated tickets' volume (and a metrics export, when
params.yaml names one) scored over the whole history, its alarms written as warnings under
reports/early_warning/ (warnings.json, series.json, summary.json, a PNG per busiest series)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from itsm_ml import io
from itsm_ml.config import Params
from itsm_ml.data.sources.metrics import load_metrics
from itsm_ml.data.stage import Layout
from itsm_ml.early_warning.watch import Watch, watch, write_watch


def report_folder(root: Path) -> Path:
    return root / "reports" / "early_warning"


def watch_history(params: Params, root: Path) -> Watch:
    settings = params.early_warning
    tickets = io.read_table(Layout(root, "tickets").validated) if settings.volume else None
    metrics = None
    notes: list[str] = []
    if settings.metrics is not None:
        table = load_metrics(settings.metrics.source, root)
        metrics, notes = table.points, table.warnings
    result = watch(settings, tickets, metrics)
    return Watch(result.warnings, result.series, result.watched, [*notes, *result.notes])


def early_warning(params: Params, _: str, root: Path) -> dict[str, Any]:
    result = watch_history(params, root)
    return write_watch(result, report_folder(root), params.early_warning.plots)
