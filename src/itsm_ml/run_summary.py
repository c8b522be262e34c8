"""What a pipeline run ended with, in a few lines: per model of the catalog, its primary
metric beside its best baseline, the share auto-routed, and the gate's word; then where to
look. `make run` prints it instead of the DAG (`itsm-ml summary`).

Reads the reports the stages wrote (no registry, no model loaded): it is instant and says
the same thing on any machine that has the outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsm_ml.catalog import Catalog, CatalogEntry, ModelLayout

WHERE_TO_LOOK = (
    ("make ui", "MLflow: every run, its candidates and the registered versions"),
    ("make serve", "the scoring service with its champions (docs at /docs)"),
    ("reports/", "model cards, evaluation figures, drift pages, gate decisions"),
    ("itsm-ml watch", "the newest early warnings; reports/early_warning/ has them all"),
    ("itsm-ml problems", "problem candidates; reports/problems/candidates.html has them all"),
)


@dataclass(frozen=True)
class ModelOutcome:
    name: str
    quality: str  # "accuracy 0.691 (best baseline: keep the value set at open 0.673)"
    routed: str  # "34% auto-routed at 93.1% precision", or "" when not a routing model
    gate: str  # "champion v1", "refused: ...", "skipped: ..."
    serving: bool


def _read(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def outcome(root: Path, entry: CatalogEntry) -> ModelOutcome:
    layout = ModelLayout(root, entry.name)
    headline = _read(layout.metrics)
    if not headline:
        return ModelOutcome(entry.name, "not evaluated yet", "", "no decision yet", False)
    if headline.get("skipped"):
        return ModelOutcome(entry.name, "skipped", "", f"skipped: {headline['reason']}", False)
    evaluation = _read(layout.evaluation / "metrics.json")
    metric = entry.metric
    baselines = {
        name: found[metric]
        for name, found in (evaluation.get("baselines") or {}).items()
        if isinstance(found.get(metric), int | float) and found[metric] == found[metric]
    }
    best = max(baselines, key=lambda n: baselines[n]) if baselines else None
    quality = f"{metric} {headline[metric]:.3f}" + (
        f" (best baseline: {best} {baselines[best]:.3f})" if best else ""
    )
    routed = ""
    if "coverage" in evaluation:
        share, precision = evaluation["coverage"], evaluation.get("auto_routed_precision")
        action = evaluation.get("auto_action", "auto-routed")
        routed = (
            f"{share:.0%} {action} at {precision:.1%} precision"
            if share and precision is not None
            else f"none {action}"
        )
    gate, serving = _gate(_read(root / "reports" / "promotion" / f"{entry.name}.json"))
    return ModelOutcome(entry.name, quality, routed, gate, serving)


def _gate(decision: dict[str, Any]) -> tuple[str, bool]:
    """The gate's word and whether a champion serves after it."""
    if not decision:
        return "no decision yet", False
    if decision.get("promotion") is None and "note" in decision:
        return str(decision["note"]), "already is the champion" in str(decision["note"])
    checks = decision.get("checks") or []
    failed = [c for c in checks if not c["passed"] and c.get("blocking", True)]
    warned = [c for c in checks if not c["passed"] and not c.get("blocking", True)]
    warnings = "".join(f"; warning, not met: {c['name']} ({c['detail']})" for c in warned)
    version = decision["challenger"]
    if decision.get("passed") or decision.get("forced"):
        how = "forced to champion" if decision.get("forced") else "promoted to champion"
        return f"v{version} {how}{warnings}", True
    reasons = "; ".join(f"{c['name']}: {c['detail']}" for c in failed)
    stays = (
        f"champion stays v{decision['champion']}"
        if decision.get("champion")
        else "nothing serves it"
    )
    return f"v{version} refused ({reasons}); {stays}", bool(decision.get("champion"))


def summarise(root: Path, known: Catalog) -> list[ModelOutcome]:
    return [outcome(root, entry) for entry in known]


def early_warning_line(root: Path) -> str:
    """What the early-warning stage found, or "" when it has not run."""
    found = _read(root / "reports" / "early_warning" / "summary.json")
    if not found:
        return ""
    busiest = ", ".join(f"{row['series']} {row['alarms']}" for row in found["busiest"][:3])
    return (
        f"{found['warnings']} warnings over {found['series']} series "
        f"({found['warnings_per_week']} per week)" + (f"; most: {busiest}" if busiest else "")
    )


def problems_line(root: Path) -> str:
    """What the problems stage raised, or "" when it has not run."""
    found = _read(root / "reports" / "problems" / "candidates.json").get("summary")
    if not found:
        return ""
    return (
        f"{found['raised']} candidates raised from {found['records']:,} records"
        f" ({found['raised_per_month']} a month), {found['with_micro_records']} holding fixes"
        f" made outside the desk, {found['active']} recurring now"
    )
