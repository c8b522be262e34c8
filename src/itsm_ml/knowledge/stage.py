"""Wiring of a `similarity` model's stages: index the split tickets, evaluate the neighbours
and the resolution they suggest on the test period, register the model with its index."""

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
from itsm_ml.config import Params
from itsm_ml.data import sources
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError
from itsm_ml.results import StageResult
from itsm_ml.schemas import TICKETS
from itsm_ml.triage import baselines

# Packages a served similarity model needs beyond the common ones (the static embeddings'
# table and tokenizer ship in the wordllama wheel).
REQUIREMENTS = ("bm25s", "wordllama", "tokenizers", "safetensors")
CURVE_DEPTH = 10  # neighbours of the precision@k curve
LEXICAL_BASELINE = "bm25"


def build_model(params: Params, entry: CatalogEntry, frame: pd.DataFrame) -> Any:
    """A SimilarityModel from the catalog entry and `knowledge:` in params.yaml; grouping
    fields that boost or filter are compared as fields too."""
    from itsm_ml.knowledge.model import SimilarityModel

    settings, triage = params.knowledge, params.triage
    fields = list(dict.fromkeys([*entry.feature_columns(frame), *settings.boost, *settings.filter]))
    return SimilarityModel(
        label=entry.label,
        id_column=TICKETS.id_column,
        text_column=triage.text_column,
        fields=[c for c in fields if c != triage.text_column and c in frame],
        boost=dict(settings.boost),
        filter=list(settings.filter),
        methods=list(settings.methods),
        returned=list(settings.returned),
        runbooks={k: dict(v) for k, v in settings.runbooks.items()},
        k=settings.k,
        max_query_terms=settings.max_query_terms,
        exact_up_to=settings.exact_up_to,
        candidates=settings.candidates,
        engine=settings.engine,
        postgres_dsn_env=settings.postgres_dsn_env,
        postgres_table=settings.postgres_table,
        target_precision=triage.target_precision,
        threshold_z=triage.threshold_z,
        min_class_support=triage.min_class_support,
        top=triage.top_k,
        seed=triage.seed,
    )


def train(params: Params, entry: CatalogEntry, root: Path) -> StageResult:
    parts = Layout(root, entry.table).read_splits()
    train_rows, valid_rows = parts["train"], parts["valid"]
    model = build_model(params, entry, train_rows)
    seconds = fit_and_save(entry, root, model, lambda: model.fit(train_rows, valid_rows))
    summary = {
        "model": entry.name,
        "label": entry.label,
        "classes": len(model.classes_),
        "indexed_tickets": len(model.records_),
        "fields": model.categorical_,
        "text": model.uses_text_,
        **selection_summary(model),
    }
    io.write_json(summary, ModelLayout(root, entry.name).train_summary)
    chosen = model.selection_[model.method_][model.relevance_metric_]
    return StageResult(
        f"indexed {len(model.records_):,} {entry.table} ({len(model.classes_)} resolutions);"
        f" chose {model.method_} (validation {model.relevance_metric_} {chosen:.3f}) of"
        f" {len(model.selection_)} methods; fitted in {seconds:.0f} s",
        summary,
    )


def selection_summary(model: Any) -> dict[str, Any]:
    """Which method and vote settings validation chose, and every method's figures."""
    return {
        "chosen": model.method_,
        "selection_metric": model.relevance_metric_,
        "candidates": {
            name: {k: round(v, 4) for k, v in found.items() if v == v}
            for name, found in model.selection_.items()
        },
        "served_by": model.engine,
        "vote_temperature": model.temperature_,
        "vote_prior_weight": model.suggester_.prior_weight,
        "vote_accuracy_on_validation": round(model.vote_accuracy_, 4),
        "calibration": model.calibrator_.method_ if model.calibrator_ else "none",
    }


def best_field_guess(
    train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, label: str, fields: list[str]
) -> tuple[str, baselines.Guess] | None:
    """The most frequent resolution per value of one field (per category, per CI ...), the
    field chosen on validation: what a desk's lookup table would say."""
    known = train[train[label].notna()]
    if known.empty or not fields:
        return None
    majority = known[label].astype(str).value_counts().index[0]

    def guess(frame: pd.DataFrame, field: str) -> pd.Series:
        table = known.groupby(known[field].astype("string"))[label].agg(
            lambda v: v.astype(str).value_counts().index[0]
        )
        return frame[field].astype("string").map(table).fillna(majority).astype(str)

    truth = valid[label].astype("string")
    labelled = truth.notna().to_numpy()
    scored = {
        f: float(np.mean(guess(valid, f).to_numpy()[labelled] == truth[labelled].to_numpy()))
        for f in fields
        if f in test
    }
    if not scored:
        return None
    field = max(scored, key=lambda f: scored[f])
    return f"most frequent per {field}", baselines.Guess(guess(test, field))


def evaluate(params: Params, entry: CatalogEntry, root: Path, model: Any) -> StageResult:
    from itsm_ml import evaluation as ev
    from itsm_ml.knowledge.evaluation import (
        label_precision_at,
        precision_at_k_figure,
        precision_curve,
    )
    from itsm_ml.model_card import render_similarity_card
    from itsm_ml.tracking import registry

    triage = params.triage
    layout = ModelLayout(root, entry.name)
    parts = Layout(root, entry.table).read_splits()
    test = parts["test"][parts["test"][entry.label].notna()].reset_index(drop=True)
    if test.empty:
        raise ItsmMlError(f"model {entry.name}: no labelled record in the test split")
    truth = test[entry.label].astype(str)
    answer = model.respond(test)
    predicted = answer["label"].astype(str)
    confidence = answer["probability"].to_numpy(dtype=float)
    correct = (predicted == truth).to_numpy()
    raw = model.predict_proba(test, calibrated=False).max(axis=1)
    coverage = ev.coverage_at_thresholds(predicted, confidence, truth, model.thresholds_)
    found = model.neighbours(test, CURVE_DEPTH)
    indexed = model.records_[entry.label].to_numpy(dtype=object, na_value=None)
    own = truth.to_numpy(dtype=object)
    relevance = model.relevance_.probabilities(found)[:, : model.k]
    shown = found.positions[:, : model.k] >= 0
    shared = (indexed[np.where(shown, found.positions[:, : model.k], 0)] == own[:, None])[shown]
    metrics = {
        **ev.classification_metrics(truth, predicted),
        "classes": len(model.classes_),
        "ece": ev.expected_calibration_error(confidence, correct),
        "ece_uncalibrated": ev.expected_calibration_error(raw, correct),
        "calibration": model.calibrator_.method_ if model.calibrator_ else "none",
        "method": model.method_,
        "coverage": coverage.coverage,
        "auto_routed_precision": coverage.precision,
        "auto_action": "auto-suggested",
        "target_precision": triage.target_precision,
        "top_k": triage.top_k,
        "top_k_accuracy": float(
            np.mean([t in row for t, row in zip(truth, answer["suggestions"], strict=True)])
        ),
        "k": model.k,
        f"precision@{model.k}": label_precision_at(found, indexed, own, model.k),
        "relevance_mean": float(relevance[shown].mean()) if shown.any() else float("nan"),
        "relevance_ece": ev.expected_calibration_error(relevance[shown], shared),
        "runbook_share": float(np.mean(answer["runbook"] != "")),
        **_duplicates(model, test, found),
    }
    guesses = {
        **baselines.cheap_guesses(parts["train"], test, entry),
        **baselines.learned_guesses(parts["train"], test, entry, text_column=triage.text_column),
    }
    by_field = best_field_guess(
        parts["train"], parts["valid"], test, entry.label, list(model.categorical_)
    )
    if by_field:
        guesses[by_field[0]] = by_field[1]
    baseline_metrics: dict[str, dict[str, Any]] = {
        name: ev.classification_metrics(truth, guess.labels.reset_index(drop=True))
        for name, guess in guesses.items()
    }
    curves = {f"{model.method_} (chosen)": precision_curve(found, indexed, own, CURVE_DEPTH)}
    if model.method_ != LEXICAL_BASELINE and model.uses_text_:
        served = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
        lexical_found = model.index_for(LEXICAL_BASELINE, served).search(test, CURVE_DEPTH)
        curves[LEXICAL_BASELINE] = precision_curve(lexical_found, indexed, own, CURVE_DEPTH)
        baseline_metrics[f"{LEXICAL_BASELINE} neighbours"] = {
            f"precision@{model.k}": label_precision_at(lexical_found, indexed, own, model.k)
        }

    out = layout.evaluation
    per_class = ev.per_class_metrics(truth, predicted)
    io.write_json(
        {**metrics, "baselines": baseline_metrics, "auto_suggest": coverage.to_dict()},
        out / "metrics.json",
    )
    io.write_csv_for_humans(per_class, out / "per_class.csv")
    io.write_csv_for_humans(coverage.per_class, out / "coverage_per_class.csv")
    curve_table = pd.DataFrame({"k": np.arange(1, CURVE_DEPTH + 1), **curves})
    io.write_csv_for_humans(curve_table, out / "precision_at_k.csv")
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
        "precision_at_k.png": precision_at_k_figure(
            curve_table, entry.label, f"{title}: neighbours sharing the resolution"
        ),
    }
    for name, figure in figures.items():
        io.save_figure(figure, out / name)

    source = sources.describe(params.table(entry.table).source)
    card = render_similarity_card(
        registered_model=entry.registered_model,
        label=entry.label,
        intended_use=entry.intended_use,
        owner=entry.owner,
        data={
            "source": source,
            "train_rows": len(parts["train"]),
            "valid_rows": len(parts["valid"]),
            "test_rows": len(test),
            "indexed": len(model.records_),
            "fields": model.categorical_,
            "text": model.uses_text_,
        },
        metrics=metrics,
        baselines=baseline_metrics,
        selection=selection_summary(model),
        curve=curve_table,
        limits=[*entry.limits, *_limits(model)],
    )
    io.write_text(card, layout.card)

    registry.configure(root)
    columns = [
        *([model.text_column] if model.uses_text_ else []),
        *model.categorical_,
        *([model.time_column] if model.time_column in test else []),
    ]
    registered = registry.log_and_register(
        model=model,
        model_path=layout.model,
        registered_model=entry.registered_model,
        params={"model": entry.name, "label": entry.label, **model.get_params()},
        metrics={
            **{k: v for k, v in metrics.items() if isinstance(v, int | float)},
            **{
                f"baseline {n} {k}": v
                for n, m in baseline_metrics.items()
                for k, v in m.items()
                if k in (entry.metric, f"precision@{model.k}")
            },
            **{
                f"candidate {n} {k}": v
                for n, found_ in model.selection_.items()
                for k, v in found_.items()
                if v == v
            },
        },
        tags=registry.model_tags(root, entry.name, entry.table, source),
        artifacts=[out / name for name in figures]
        + [out / "per_class.csv", out / "precision_at_k.csv", layout.card],
        inputs=registry.split_inputs(
            root, entry.table, {**parts, "test": test}, columns, entry.label
        ),
        input_example=test[columns].head(5),
        code_path=Path(__file__).parents[1],
        dataset_name=entry.table,
        description=card,
        requirements=REQUIREMENTS,
    )
    write_registered(registered, layout)
    write_headline(layout, entry, metrics, baseline_metrics)
    from itsm_ml.triage.stage import headline

    name = f"{registered.name} v{registered.version}"
    return StageResult(
        f"{headline(entry, metrics, baseline_metrics)}; neighbours precision@{model.k}"
        f" {metrics[f'precision@{model.k}']:.3f}; {metrics['coverage']:.0%} auto-suggested;"
        f" registered {name} as challenger",
        {**metrics, "registered": name},
    )


def _duplicates(model: Any, test: pd.DataFrame, found: Any) -> dict[str, float]:
    """Recall@k and MRR of the linked duplicates, where the export links test tickets to
    indexed ones."""
    from itsm_ml.knowledge.evaluation import ranks_of, recall_at
    from itsm_ml.knowledge.model import DUPLICATE_OF

    if DUPLICATE_OF not in test:
        return {}
    position = {v: i for i, v in enumerate(model.records_[model.id_column].astype(str))}
    partners = [position.get(str(v), -1) if pd.notna(v) else -1 for v in test[DUPLICATE_OF]]
    asked = np.flatnonzero(np.asarray(partners) >= 0)
    if not len(asked):
        return {}
    from itsm_ml.knowledge.retrieval import Neighbours

    subset = Neighbours(found.positions[asked], found.scores[asked])
    ranks = ranks_of(subset, [partners[i] for i in asked])
    return {
        "duplicate_queries": len(asked),
        **{f"duplicate {k}": v for k, v in recall_at(ranks).items()},
    }


def _limits(model: Any) -> list[str]:
    limits = []
    if not model.uses_text_:
        limits.append(
            "No ticket text in this source: tickets are compared by their fields only"
            f" ({', '.join(model.categorical_) or 'none'})."
        )
    small = len(model.classes_) - len(model.suggester_.eligible_)
    if small:
        limits.append(
            f"{small} of {len(model.classes_)} resolutions have fewer than"
            f" {model.min_class_support} indexed tickets: never auto-suggested."
        )
    return limits
