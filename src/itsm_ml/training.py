"""The `train` and `evaluate` stages of any model in the catalog.

Each catalog entry names its family (which code knows its table); this module looks the
entry up, skips it when this export has nothing to learn it from, and hands it to the
family's stage. A new model is a params.yaml entry; a new family is one line here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from itsm_ml import io
from itsm_ml.catalog import (
    CatalogEntry,
    Family,
    ModelLayout,
    Skipped,
    catalog,
    check_kind,
    labels_found,
    nothing_to_learn,
    write_skipped,
)
from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.results import StageResult


class FamilyStages(Protocol):
    def train(self, params: Params, entry: CatalogEntry, root: Path) -> StageResult: ...

    def evaluate(
        self, params: Params, entry: CatalogEntry, root: Path, model: Any
    ) -> StageResult: ...


def _family(family: Family) -> FamilyStages:
    if family == "change_risk":
        from itsm_ml.change_risk import stage as change_risk_stage

        return change_risk_stage
    if family == "knowledge":
        from itsm_ml.knowledge import stage as knowledge_stage

        return knowledge_stage
    if family == "early_warning":
        from itsm_ml.early_warning import training as early_warning_stage

        return early_warning_stage
    if family == "problems":
        from itsm_ml.problems import training as problems_stage

        return problems_stage
    from itsm_ml.triage import stage as triage_stage

    return triage_stage


def train(params: Params, name: str, root: Path) -> StageResult | Skipped:
    import joblib

    known = catalog(params)
    entry = known.get(name)
    layout = ModelLayout(root, entry.name)
    rows = io.read_table(Layout(root, entry.table).split("train"))
    reason = nothing_to_learn(entry, rows)
    if reason is None and entry.family == "early_warning":
        from itsm_ml.early_warning.training import nothing_to_judge

        reason = nothing_to_judge(params, entry, root)
    if reason is None and entry.family == "problems":
        from itsm_ml.problems.training import nothing_to_judge as no_problem_to_judge

        reason = no_problem_to_judge(entry, root)
    if reason is not None:
        undeclared = [f for f in labels_found(entry.table, rows, known) if f.model is None]
        if undeclared and entry.family not in ("early_warning", "problems"):
            lines = "; ".join(f.declaration(entry.table).strip() for f in undeclared)
            reason += f". Labels of this export without a model, to add under `models:`: {lines}"
        skipped = Skipped(entry.name, reason)
        with io.atomic_path(layout.model) as tmp:
            joblib.dump(skipped, tmp)
        summary = {"model": entry.name, "skipped": True, "reason": reason}
        io.write_json(summary, layout.train_summary)
        return skipped
    check_kind(entry, rows)
    return _family(entry.family).train(params, entry, root)


def evaluate(params: Params, name: str, root: Path) -> StageResult | Skipped:
    import joblib

    entry = catalog(params).get(name)
    layout = ModelLayout(root, entry.name)
    model = joblib.load(layout.model)
    if isinstance(model, Skipped):
        write_skipped_evaluation(layout, model)
        return model
    return _family(entry.family).evaluate(params, entry, root, model)


def write_skipped_evaluation(layout: ModelLayout, skipped: Skipped) -> None:
    """Every output of `evaluate`, saying why there is no model (DVC wants them all)."""
    io.write_text(f"# Model card: {skipped.model}\n\nNot trained: {skipped.reason}.\n", layout.card)
    io.write_text(f"Not trained: {skipped.reason}.\n", layout.evaluation / "skipped.txt")
    io.write_json({"skipped": True, "reason": skipped.reason}, layout.registered)
    write_skipped(layout, skipped.reason)
