"""Wiring of the triage stages: train a target on the split tickets, evaluate it, register it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml import io
from itsm_ml.catalog import (
    CatalogEntry,
    ModelLayout,
    fit_and_save,
    write_headline,
    write_registered,
)
from itsm_ml.config import Params, TriageParams
from itsm_ml.data import sources
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError
from itsm_ml.results import StageResult


def _parts(root: Path, table: str) -> dict[str, pd.DataFrame]:
    layout = Layout(root, table)
    return {part: io.read_table(layout.split(part)) for part in ("train", "valid", "test")}


def _period(frame: pd.DataFrame) -> str:
    times = (
        frame["opened_at"].dropna() if "opened_at" in frame else pd.Series(dtype="datetime64[ns]")
    )
    return f"{times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}" if len(times) else "no timestamps"


def build_model(triage: TriageParams, categorical: list[str], text_column: str | None) -> Any:
    """A TriageModel configured from params.yaml (also used by bench/triage.py)."""
    from itsm_ml.triage.model import TriageModel

    return TriageModel(
        categorical=categorical,
        text_column=text_column,
        target_precision=triage.target_precision,
        threshold_z=triage.threshold_z,
        min_class_support=triage.min_class_support,
        top_k=triage.top_k,
        n_jobs=triage.threads,
        random_state=triage.seed,
        **triage.model.model_dump(),
    )


def train(params: Params, entry: CatalogEntry, root: Path) -> StageResult:

    triage = params.triage
    parts = _parts(root, entry.table)
    train_rows, valid_rows = parts["train"], parts["valid"]
    model = build_model(triage, entry.feature_columns(train_rows), triage.text_column)
    seconds = fit_and_save(
        entry,
        root,
        model,
        lambda: model.fit(train_rows, train_rows[entry.label], valid_rows, valid_rows[entry.label]),
    )
    layout = ModelLayout(root, entry.name)
    summary = {
        "model": entry.name,
        "label": entry.label,
        "fit_seconds": round(seconds, 2),
        "classes": len(model.classes_),
        "train_rows": int(train_rows[entry.label].notna().sum()),
        "features": [*model.categorical_, *(["text"] if model.uses_text_ else [])],
        "temperature": model.calibrator_.temperature_,
        "boosting_rounds": int(
            getattr(getattr(model, "booster_", None), "best_iteration_", 0) or 0
        ),
    }
    io.write_json(summary, layout.train_summary)
    return StageResult(
        f"{summary['classes']} classes from {summary['train_rows']:,} {entry.table}", summary
    )


def baseline_guesses(parts: dict[str, pd.DataFrame], entry: CatalogEntry) -> dict[str, pd.Series]:
    label = entry.label
    train_labels = parts["train"][label].dropna().astype(str)
    majority = train_labels.value_counts().index[0]
    test = parts["test"][parts["test"][label].notna()]
    found = {"majority class": pd.Series(majority, index=test.index)}
    at_open = entry.keep_at_open(test)
    if at_open:
        found["keep the value set at open"] = (
            test[at_open].astype("string").fillna(majority).astype(str)
        )
    return found


def evaluate(params: Params, entry: CatalogEntry, root: Path, model: Any) -> StageResult:
    from itsm_ml import evaluation as ev
    from itsm_ml.model_card import render_card
    from itsm_ml.tracking import registry

    triage = params.triage
    layout = ModelLayout(root, entry.name)
    parts = _parts(root, entry.table)
    test = parts["test"][parts["test"][entry.label].notna()].reset_index(drop=True)
    if test.empty:
        raise ItsmMlError(f"model {entry.name}: no labelled record in the test split")
    truth = test[entry.label].astype(str)
    proba = model.predict_proba(test)
    predicted = pd.Series(model.classes_[proba.argmax(axis=1)]).astype(str)
    confidence = proba.max(axis=1)
    correct = (predicted == truth).to_numpy()
    raw_confidence = model.predict_proba(test, calibrated=False).max(axis=1)
    coverage = ev.coverage_at_thresholds(predicted, confidence, truth, model.thresholds_)
    metrics = {
        **ev.classification_metrics(truth, predicted),
        "classes": len(model.classes_),
        "ece": ev.expected_calibration_error(confidence, correct),
        "ece_uncalibrated": ev.expected_calibration_error(raw_confidence, correct),
        "temperature": model.calibrator_.temperature_,
        "coverage": coverage.coverage,
        "auto_routed_precision": coverage.precision,
        "target_precision": triage.target_precision,
        "top_k": triage.top_k,
        "top_k_accuracy": float(
            np.mean(
                [
                    t in model.classes_[row]
                    for t, row in zip(
                        truth, np.argsort(-proba, axis=1)[:, : triage.top_k], strict=True
                    )
                ]
            )
        ),
    }
    baselines = {
        name: ev.classification_metrics(truth, guess.reset_index(drop=True))
        for name, guess in baseline_guesses(parts, entry).items()
    }

    out = layout.evaluation
    per_class = ev.per_class_metrics(truth, predicted)
    io.write_json(
        {**metrics, "baselines": baselines, "auto_routing": coverage.to_dict()},
        out / "metrics.json",
    )
    io.write_csv_for_humans(per_class, out / "per_class.csv")
    io.write_csv_for_humans(coverage.per_class, out / "coverage_per_class.csv")
    reliability = ev.reliability_table(confidence, correct)
    curve = ev.precision_coverage_curve(confidence, correct)
    io.write_csv_for_humans(reliability, out / "reliability.csv")
    io.write_csv_for_humans(curve, out / "precision_coverage.csv")
    title = f"{entry.registered_model} on test"
    figures = {
        "reliability.png": ev.reliability_figure(reliability, f"{title}: ECE {metrics['ece']:.3f}"),
        "precision_coverage.png": ev.precision_coverage_figure(
            curve, triage.target_precision, coverage, title
        ),
        "confusion.png": ev.confusion_figure(truth, predicted, f"{title}: largest classes"),
    }
    for name, figure in figures.items():
        io.save_figure(figure, out / name)

    source = sources.describe(params.table(entry.table).source)
    card = render_card(
        target=entry.name,
        registered_model=entry.registered_model,
        label=entry.label,
        data={
            "source": source,
            "split_method": "time-ordered"
            if test["opened_at"].notna().any()
            else "seeded stratified",
            "train_rows": len(parts["train"]),
            "valid_rows": len(parts["valid"]),
            "test_rows": len(test),
            "train_period": _period(parts["train"]),
            "valid_period": _period(parts["valid"]),
            "test_period": _period(test),
            "features": [*model.categorical_, *(["text"] if model.uses_text_ else [])],
        },
        metrics=metrics,
        baselines=baselines,
        per_class=per_class,
        coverage_per_class=coverage.per_class,
        limits=_limits(model, parts, entry.label),
    )
    io.write_text(card, layout.card)

    registry.configure(root)
    features = [*model.categorical_, *([model.text_column] if model.uses_text_ else [])]
    processed = f"data/processed/{entry.table}"
    registered = registry.log_and_register(
        model=model,
        model_path=layout.model,
        registered_model=entry.registered_model,
        params={"model": entry.name, "label": entry.label, **model.get_params()},
        metrics={
            **{k: v for k, v in metrics.items() if isinstance(v, int | float)},
            **{f"baseline {n} accuracy": m["accuracy"] for n, m in baselines.items()},
            **{f"class {r['class']} f1": r["f1"] for _, r in per_class.iterrows()},
        },
        tags={
            "model": entry.name,
            "source": source,
            **registry.lineage_tags(root, [processed]),
            **registry.validation_tags(root, entry.table),
        },
        artifacts=[out / name for name in figures]
        + [out / "per_class.csv", out / "coverage_per_class.csv", layout.card],
        inputs={
            context: (
                frame[[*features, entry.label]],
                str(Layout(root, entry.table).split(part)),
                entry.label,
            )
            for context, part, frame in (
                ("training", "train", parts["train"]),
                ("validation", "valid", parts["valid"]),
                ("testing", "test", test),
            )
        },
        input_example=test[features].head(5),
        code_path=Path(__file__).parents[1],
        dataset_name=entry.table,
    )
    write_registered(registered, layout)
    write_headline(layout, entry, metrics, baselines)
    name = f"{registered.name} v{registered.version}"
    return StageResult(
        f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, "
        f"{metrics['coverage']:.0%} auto-routed at {metrics['auto_routed_precision']:.1%}; "
        f"registered {name} as challenger",
        {**metrics, "registered": name},
    )


def _limits(model: Any, parts: dict[str, pd.DataFrame], label: str) -> list[str]:
    limits = []
    small = int((model.class_support_ < model.min_class_support).sum())
    if small:
        limits.append(
            f"{small} of {len(model.classes_)} classes have fewer than {model.min_class_support}"
            " training tickets: never auto-routed, only suggested."
        )
    unlabelled = int(parts["train"][label].isna().sum())
    if unlabelled:
        limits.append(f"{unlabelled} training tickets had no `{label}` and were left out.")
    if not model.uses_text_:
        limits.append("No ticket text in this source: structured fields only.")
    limits.append(
        "Classes that appear after training are unknown to the model until it is retrained."
    )
    return limits
