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
from itsm_ml.triage import baselines


def _period(frame: pd.DataFrame) -> str:
    times = (
        frame["opened_at"].dropna() if "opened_at" in frame else pd.Series(dtype="datetime64[ns]")
    )
    return f"{times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}" if len(times) else "no timestamps"


def build_model(
    triage: TriageParams,
    categorical: list[str],
    text_column: str | None,
    *,
    metric: str = "accuracy",
    at_open: str | None = None,
) -> Any:
    """A TriageModel configured from params.yaml (also used by bench/triage.py); candidates
    are chosen by ROC AUC when the model's primary metric ranks, else by accuracy."""
    from itsm_ml.triage.model import TriageModel

    return TriageModel(
        categorical=categorical,
        text_column=text_column,
        selection_metric="auc" if metric in ("auc", "pr_auc") else "accuracy",
        at_open=at_open,
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
    parts = Layout(root, entry.table).read_splits()
    train_rows, valid_rows = parts["train"], parts["valid"]
    model = build_model(
        triage,
        entry.feature_columns(train_rows),
        triage.text_column,
        metric=entry.metric,
        at_open=entry.keep_at_open(train_rows),
    )
    seconds = fit_and_save(
        entry,
        root,
        model,
        lambda: model.fit(train_rows, train_rows[entry.label], valid_rows, valid_rows[entry.label]),
    )
    layout = ModelLayout(root, entry.name)
    # No durations in this file: it is tracked in git and must not change when nothing did.
    summary = {
        "model": entry.name,
        "label": entry.label,
        "classes": len(model.classes_),
        "train_rows": int(train_rows[entry.label].notna().sum()),
        "features": [*model.categorical_, *(["text"] if model.uses_text_ else [])],
        **candidate_summary(model),
    }
    io.write_json(summary, layout.train_summary)
    selection = model.selection_[model.chosen_][model.selection_metric]
    return StageResult(
        f"{summary['classes']} classes from {summary['train_rows']:,} {entry.table}; chose"
        f" {model.chosen_} (validation {model.selection_metric} {selection:.3f}) of"
        f" {len(model.selection_)} candidates, calibration {model.calibrator_.method_};"
        f" fitted in {seconds:.0f} s",
        summary,
    )


def candidate_summary(model: Any) -> dict[str, Any]:
    """Which candidate and calibrator validation chose, and every candidate's figures."""
    return {
        "chosen": model.chosen_,
        "selection_metric": model.selection_metric,
        "candidates": {
            name: {k: round(v, 4) for k, v in found.items() if v == v}
            for name, found in model.selection_.items()
        },
        **(
            {"text_c": model.chosen_text_c_, "text_c_accuracy_on_validation": model.text_c_scores_}
            if hasattr(model, "chosen_text_c_")
            else {}
        ),
        "calibration": model.calibrator_.method_,
        # Cross-fitted: each calibrator judged on validation rows it was not fitted to (what
        # made the choice; fitted and judged on the same rows, isotonic would always score 0).
        "calibration_ece_cross_fitted": {
            k: round(v, 4) for k, v in model.calibrator_.scores_.items()
        },
        "boosting_rounds": int(
            getattr(getattr(model, "booster_", None), "best_iteration_", 0) or 0
        ),
    }


def evaluate(params: Params, entry: CatalogEntry, root: Path, model: Any) -> StageResult:
    from itsm_ml import evaluation as ev
    from itsm_ml.model_card import render_card
    from itsm_ml.tracking import registry

    triage = params.triage
    layout = ModelLayout(root, entry.name)
    parts = Layout(root, entry.table).read_splits()
    test = parts["test"][parts["test"][entry.label].notna()].reset_index(drop=True)
    if test.empty:
        raise ItsmMlError(f"model {entry.name}: no labelled record in the test split")
    truth = test[entry.label].astype(str)
    proba = model.predict_proba(test)
    # What the ITSM receives, the value kept at open included where the model defers to it.
    answer = model.respond(test)
    predicted = answer["label"].astype(str).reset_index(drop=True)
    confidence = answer["probability"].to_numpy(dtype=float)
    correct = (predicted == truth).to_numpy()
    deferred = predicted.to_numpy() != model.classes_[proba.argmax(axis=1)].astype(str)
    raw_confidence = np.where(
        deferred, confidence, model.predict_proba(test, calibrated=False).max(axis=1)
    )
    coverage = ev.coverage_at_thresholds(predicted, confidence, truth, model.thresholds_)
    binary = entry.kind == "binary" and len(model.classes_) == 2
    positive = ev.positive_class(model.classes_) if binary else None
    metrics = {
        **ev.classification_metrics(truth, predicted),
        **(ev.binary_metrics(truth, proba[:, 1], str(positive)) if binary else {}),
        "classes": len(model.classes_),
        "ece": ev.expected_calibration_error(confidence, correct),
        "ece_uncalibrated": ev.expected_calibration_error(raw_confidence, correct),
        "calibration": model.calibrator_.method_,
        "chosen": model.chosen_,
        "kept_at_open": float(np.mean(deferred)),
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
    guesses = {
        **baselines.cheap_guesses(parts["train"], test, entry, positive),
        **baselines.learned_guesses(
            parts["train"], test, entry, text_column=triage.text_column, positive=positive
        ),
    }
    baseline_metrics = {
        name: {
            **ev.classification_metrics(truth, guess.labels.reset_index(drop=True)),
            **(
                _binary_baseline(ev, truth, guess, str(positive))
                if binary and guess.score is not None
                else {}
            ),
        }
        for name, guess in guesses.items()
    }

    out = layout.evaluation
    per_class = ev.per_class_metrics(truth, predicted)
    io.write_json(
        {**metrics, "baselines": baseline_metrics, "auto_routing": coverage.to_dict()},
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
        baselines=baseline_metrics,
        candidates=candidate_summary(model),
        per_class=per_class,
        coverage_per_class=coverage.per_class,
        intended_use=entry.intended_use,
        owner=entry.owner,
        limits=[*entry.limits, *_limits(model, parts, entry.label)],
    )
    io.write_text(card, layout.card)

    registry.configure(root)
    features = [*model.categorical_, *([model.text_column] if model.uses_text_ else [])]
    if model.defers_ and model.at_open not in features:  # the signature must let it through
        features.append(model.at_open)
    registered = registry.log_and_register(
        model=model,
        model_path=layout.model,
        registered_model=entry.registered_model,
        params={"model": entry.name, "label": entry.label, **model.get_params()},
        metrics={
            **{k: v for k, v in metrics.items() if isinstance(v, int | float)},
            **{
                f"baseline {n} {entry.metric}": m[entry.metric]
                for n, m in baseline_metrics.items()
                if entry.metric in m
            },
            **{
                f"candidate {n} {k}": v
                for n, found in model.selection_.items()
                for k, v in found.items()
                if v == v
            },
            **{f"class {r['class']} f1": r["f1"] for _, r in per_class.iterrows()},
        },
        tags=registry.model_tags(root, entry.name, entry.table, source),
        artifacts=[out / name for name in figures]
        + [out / "per_class.csv", out / "coverage_per_class.csv", layout.card],
        inputs=registry.split_inputs(
            root, entry.table, {**parts, "test": test}, features, entry.label
        ),
        input_example=test[features].head(5),
        code_path=Path(__file__).parents[1],
        dataset_name=entry.table,
        description=card,
    )
    write_registered(registered, layout)
    write_headline(layout, entry, metrics, baseline_metrics)
    name = f"{registered.name} v{registered.version}"
    return StageResult(
        f"{headline(entry, metrics, baseline_metrics)}; {routed(metrics)};"
        f" registered {name} as challenger",
        {**metrics, "registered": name},
    )


def headline(
    entry: CatalogEntry, metrics: dict[str, Any], baseline_metrics: dict[str, dict[str, Any]]
) -> str:
    """The primary metric beside the best baseline's: "accuracy 0.691 (best baseline: keep
    the value set at open 0.673)"."""
    metric = entry.metric
    scored = {
        n: m[metric] for n, m in baseline_metrics.items() if metric in m and m[metric] == m[metric]
    }
    best = max(scored, key=lambda n: scored[n]) if scored else None
    against = f" (best baseline: {best} {scored[best]:.3f})" if best else ""
    return f"{metric} {metrics[metric]:.3f}{against}"


def routed(metrics: dict[str, Any]) -> str:
    if not metrics["coverage"]:
        return f"none auto-routed at the {metrics['target_precision']:.0%} precision target"
    return (
        f"{metrics['coverage']:.0%} auto-routed at {metrics['auto_routed_precision']:.1%}"
        f" precision (target {metrics['target_precision']:.0%})"
    )


def _binary_baseline(ev: Any, truth: pd.Series, guess: Any, positive: str) -> dict[str, float]:
    found = ev.binary_metrics(truth, guess.score, positive)
    return found if guess.is_probability else {**found, "brier": float("nan")}


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
