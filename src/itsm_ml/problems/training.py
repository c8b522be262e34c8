"""Wiring of a `recurrence` model's stages: fit its text weights and choose its threshold on
the training and validation history, judge it on the test period beside the key baseline,
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
from itsm_ml.problems.model import (
    INPUT_COLUMNS,
    Judged,
    RecurrenceModel,
    first_time,
    judge_key_baseline,
)
from itsm_ml.results import StageResult

KEY_BASELINE = "key"


def micro_records(root: Path, until: pd.Timestamp | None = None) -> pd.DataFrame | None:
    """The validated micro-records (opened up to `until`), or None when there are none."""
    path = Layout(root, "micro_records").validated
    if not path.exists():
        return None
    frame = io.read_table(path)
    if until is not None and "opened_at" in frame:
        frame = frame[pd.to_datetime(frame["opened_at"]) <= until]
    return frame if len(frame) else None


def build_model(params: Params, entry: CatalogEntry) -> RecurrenceModel:
    return RecurrenceModel(label=entry.label, settings=params.problems)


def nothing_to_judge(entry: CatalogEntry, root: Path) -> str | None:
    """Why the test split cannot judge the model (no problem with two linked incidents in
    it), or None."""
    test = io.read_table(Layout(root, entry.table).split("test"))
    linked = test[entry.label].dropna() if entry.label in test else pd.Series(dtype=object)
    if (linked.value_counts() >= 2).any():
        return None
    return (
        f"no problem to judge it by in the test split: no two incidents there share a"
        f" `{entry.label.removeprefix('label_')}`"
    )


def _history(parts: dict[str, pd.DataFrame], names: tuple[str, ...]) -> pd.DataFrame:
    return pd.concat([parts[n] for n in names], ignore_index=True)


def train(params: Params, entry: CatalogEntry, root: Path) -> StageResult:
    parts = Layout(root, entry.table).read_splits()
    history = _history(parts, ("train", "valid"))
    micro = micro_records(root, pd.to_datetime(history["opened_at"]).max())
    model = build_model(params, entry)
    valid_start = first_time(parts["valid"])
    seconds = fit_and_save(entry, root, model, lambda: model.fit(history, micro, valid_start))
    summary = {
        "model": entry.name,
        "label": entry.label,
        "micro_records": 0 if micro is None else len(micro),
        "open_groups": len(model.grouper_.groups) if model.grouper_ else 0,
        "last_seen": str(model.last_seen_),
        **model.get_params(),
        "tried": model.tried_,
        "validation": model.validation_,
    }
    io.write_json(summary, ModelLayout(root, entry.name).train_summary)
    found = model.validation_
    return StageResult(
        f"threshold {model.threshold:g} ({model.threshold_basis_}); validation: pairwise F1"
        f" {found['pairwise_f1']:.3f}, {found['problems_raised']} of {found['problems']} problems"
        f" raised, {found['candidates_per_month']:.1f} candidates a month; fitted in"
        f" {seconds:.0f} s",
        summary,
    )


def evaluate(
    params: Params, entry: CatalogEntry, root: Path, model: RecurrenceModel
) -> StageResult:
    from itsm_ml.model_card import render_recurrence_card
    from itsm_ml.tracking import registry

    layout = ModelLayout(root, entry.name)
    parts = Layout(root, entry.table).read_splits()
    history = _history(parts, ("train", "valid", "test"))
    micro = micro_records(root)
    test_start = first_time(parts["test"])
    judged = model.judge(history, micro, test_start)
    key, baseline = judge_key_baseline(model.settings, judged.grouped.records, test_start)
    metrics: dict[str, Any] = {**judged.figures, "threshold": model.threshold}
    baselines = {f"{KEY_BASELINE} ({' + '.join(key)})": baseline.figures}

    out = layout.evaluation
    io.write_json({**metrics, "baselines": baselines}, out / "metrics.json")
    table = _per_problem(judged, baseline, test_start)
    io.write_csv_for_humans(table, out / "per_problem.csv")
    figure = _weekly_figure(judged, baseline, test_start)
    io.save_figure(figure, out / "candidates.png")

    source = sources.describe(params.table(entry.table).source)
    card = render_recurrence_card(
        registered_model=entry.registered_model,
        label=entry.label.removeprefix("label_"),
        data={
            "source": source,
            "train_rows": len(parts["train"]),
            "valid_rows": len(parts["valid"]),
            "test_rows": len(parts["test"]),
            "micro_records": 0 if micro is None else len(micro),
        },
        model=model.get_params(),
        tried=model.tried_,
        metrics=metrics,
        baselines=baselines,
        intended_use=entry.intended_use,
        owner=entry.owner,
        limits=list(entry.limits),
    )
    io.write_text(card, layout.card)

    registry.configure(root)
    columns = [c for c in INPUT_COLUMNS if c in parts["test"]]
    example = parts["test"][columns].head(5).reset_index(drop=True)
    registered = registry.log_and_register(
        model=model.fresh(),
        model_path=layout.model,
        registered_model=entry.registered_model,
        params={"model": entry.name, **model.get_params()},
        metrics=registry.logged_figures(metrics, baselines, entry.metrics),
        tags=registry.model_tags(root, entry.name, entry.table, source),
        artifacts=[out / "candidates.png", out / "per_problem.csv", layout.card],
        inputs=registry.split_inputs(root, entry.table, parts, columns, entry.label),
        input_example=example,
        code_path=Path(__file__).parents[1],
        dataset_name=entry.table,
        description=card,
    )
    write_registered(registered, layout)
    write_headline(layout, entry, metrics, baselines)
    best = best_baseline(entry.metric, baselines)
    name = f"{registered.name} v{registered.version}"
    found = judged.figures
    return StageResult(
        f"{entry.name}: {entry.metric} {metrics[entry.metric]:.3f} against {best:.3f} for the"
        f" key baseline; {found['problems_raised']} of {found['problems']} test problems raised,"
        f" {found['candidates_per_month']:.1f} candidates a month; registered {name} as"
        " challenger",
        {**metrics, "registered": name},
    )


def _per_problem(judged: Judged, baseline: Judged, start: pd.Timestamp) -> pd.DataFrame:
    """Per problem of the test period: its incidents there, and whether (and how many days
    after its first) the model and the baseline raised it."""
    from itsm_ml.problems.detection import Grouped
    from itsm_ml.problems.evaluation import raised_problems

    def found(result: Judged) -> pd.DataFrame:
        records = result.grouped.records
        inside = records[records["opened_at"] >= start]
        grouped = Grouped(inside, result.grouped.vectors, result.grouped.groups, 1)
        return raised_problems(grouped, result.raised).set_index("problem")

    ours, theirs = found(judged), found(baseline)
    records = judged.grouped.records
    counts = records[(records["opened_at"] >= start)]["problem"].value_counts()
    return pd.DataFrame(
        {
            "problem": ours.index,
            "incidents": counts.reindex(ours.index).to_numpy(),
            "raised": ours["raised"].to_numpy(),
            "days": ours["days"].round(1).to_numpy(),
            "key baseline raised": theirs["raised"].reindex(ours.index).to_numpy(),
            "key baseline days": theirs["days"].reindex(ours.index).round(1).to_numpy(),
        }
    )


def _weekly_figure(judged: Judged, baseline: Judged, start: pd.Timestamp) -> Any:
    """Candidates raised per week in the test period, the model's and the baseline's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3))
    for result, name, colour, shift in (
        (judged, "this model", "#c0392b", -1.5),
        (baseline, "key baseline", "#999999", 1.5),
    ):
        when = pd.to_datetime(result.raised["raised_at"]).astype("datetime64[ns]")
        weekly = when[when >= start].dt.to_period("W").dt.start_time.value_counts().sort_index()
        axis.bar(
            weekly.index + pd.Timedelta(days=shift),
            weekly.to_numpy(),
            width=3,
            color=colour,
            label=name,
        )
    axis.set(ylabel="candidates raised", title="Problem candidates per week, test period")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure
