"""Wiring of the change-risk stages: train on the split changes, evaluate on test, register."""

from __future__ import annotations

from collections.abc import Sequence
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
from itsm_ml.config import ChangeRiskParams, Params
from itsm_ml.data import sources
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError
from itsm_ml.results import StageResult

LABEL = "label_failed"


def split_features(frame: pd.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns among `columns`, by their canonical dtype."""
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c].dtype)]
    return numeric, [c for c in columns if c not in numeric]


def build_scorer(
    params: ChangeRiskParams, numeric: Sequence[str], categorical: Sequence[str]
) -> Any:
    """A ChangeRiskScorer configured from params.yaml (also used by bench/change_risk.py)."""
    from itsm_ml.change_risk.features.featurizer import ChangeFeaturizer
    from itsm_ml.change_risk.model import ChangeRiskModel, ChangeRiskScorer

    bands = {name: target.as_target() for name, target in params.bands.items()}
    return ChangeRiskScorer(
        ChangeFeaturizer(
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            history=params.history,
            conflicts=params.conflicts,
        ),
        ChangeRiskModel(
            bands=bands,
            top_reasons=params.top_reasons,
            n_jobs=params.threads,
            random_state=params.seed,
            **params.model.model_dump(),
        ),
    )


def _labelled(frame: pd.DataFrame, part: str) -> pd.DataFrame:
    if LABEL not in frame:
        raise ItsmMlError(f"change risk: the {part} changes have no `{LABEL}` column")
    return frame[frame[LABEL].notna()].reset_index(drop=True)


def train(params: Params, entry: CatalogEntry, root: Path) -> StageResult:

    parts = Layout(root, "changes").read_splits()
    train_rows, valid_rows = _labelled(parts["train"], "train"), _labelled(parts["valid"], "valid")
    for name, rows in (("train", train_rows), ("validation", valid_rows)):
        if rows[LABEL].nunique() < 2:
            raise ItsmMlError(
                f"change risk: the {name} split needs failed and successful changes; it has"
                f" {len(rows):,} changes, {int(rows[LABEL].sum()):,} failed"
            )
    columns = [c for c in entry.feature_columns(train_rows) if c != LABEL]
    scorer = build_scorer(params.change_risk, *split_features(train_rows, columns))
    seconds = fit_and_save(entry, root, scorer, lambda: scorer.fit(train_rows, valid_rows))
    layout = ModelLayout(root, entry.name)
    # No durations in this file: it is tracked in git and must not change when nothing did.
    summary = {
        "train_rows": len(train_rows),
        "valid_rows": len(valid_rows),
        "train_failures": int(train_rows[LABEL].sum()),
        "features": scorer.features_,
        "boosting_rounds": scorer.model.rounds_,
        "band_thresholds": scorer.model.band_thresholds_,
    }
    io.write_json(summary, layout.train_summary)
    return StageResult(
        f"{summary['boosting_rounds']} rounds on {summary['train_rows']:,} changes"
        f" ({summary['train_failures']:,} failed), {len(summary['features'])} features;"
        f" fitted in {seconds:.0f} s",
        summary,
    )


def _period(frame: pd.DataFrame) -> str:
    times = frame["opened_at"].dropna()
    return f"{times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}" if len(times) else "no timestamps"


def baseline_guesses(
    train_rows: pd.DataFrame, test: pd.DataFrame, size_column: str
) -> dict[str, tuple[np.ndarray, bool]]:
    """What a change manager would do without the model: the change type's past failure rate
    (the CAB's rule of thumb), or the size of the change alone (`la` on software changes)."""
    found: dict[str, tuple[np.ndarray, bool]] = {}
    if "change_type" in test and test["change_type"].notna().any():
        rates = train_rows.groupby(train_rows["change_type"].astype("string"))[LABEL].mean()
        prior = float(train_rows[LABEL].mean())
        rate = test["change_type"].astype("string").map(rates).astype(float).fillna(prior)
        found["failure rate of its change type"] = (rate.to_numpy(), True)
    if size_column in test and test[size_column].notna().any():
        size = test[size_column].astype(float).fillna(0.0).to_numpy()
        found[f"{size_column} alone"] = (size, False)
    return found


def _conflict_shares(conflicts: pd.Series) -> dict[str, float]:
    """Share of changes with each kind of conflict (a night window is no overlap)."""
    kinds = {
        "overlapping_other_work": "overlaps ",
        "inside_blackout": "inside blackout window",
        "outside_business_hours": "starts outside business hours",
    }
    return {
        f"share_{name}": float(
            conflicts.map(lambda found, p=prefix: any(c.startswith(p) for c in found)).mean()
        )
        for name, prefix in kinds.items()
    }


def evaluate(params: Params, entry: CatalogEntry, root: Path, scorer: Any) -> StageResult:
    from itsm_ml.change_risk import evaluation as rev
    from itsm_ml.evaluation import expected_calibration_error, reliability_figure
    from itsm_ml.model_card import render_change_card
    from itsm_ml.tracking import registry

    settings = params.change_risk
    layout = ModelLayout(root, entry.name)
    parts = Layout(root, "changes").read_splits()
    train_rows, valid_rows = _labelled(parts["train"], "train"), _labelled(parts["valid"], "valid")
    test = _labelled(parts["test"], "test")
    if test.empty:
        raise ItsmMlError("change risk: no change with an outcome in the test split")
    failed = test[LABEL].to_numpy(dtype=bool)
    answer = scorer.respond(test)
    probability = answer["probability"].to_numpy()
    raw = scorer.predict_proba(test, calibrated=False)[:, 1]
    metrics: dict[str, Any] = {
        **rev.risk_metrics(failed, probability),
        "ece_uncalibrated": expected_calibration_error(raw, failed),
        **_conflict_shares(answer["conflicts"]),
    }
    baselines = {
        name: rev.risk_metrics(failed, guess, is_probability=is_probability)
        for name, (guess, is_probability) in baseline_guesses(
            train_rows, test, settings.size_column
        ).items()
    }
    thresholds = scorer.model.band_thresholds_
    valid = scorer.model.validation_scores_
    bands_valid = rev.band_table(
        valid.probability.to_numpy(),
        valid.failed.to_numpy(),
        scorer.model.band(valid.probability.to_numpy()),
        thresholds,
    )
    bands_test = rev.band_table(probability, failed, answer["band"].to_numpy(), thresholds)
    for row in bands_test.itertuples():
        metrics[f"band {row.band} share of changes"] = row.share_of_changes
        metrics[f"band {row.band} share of failures"] = row.share_of_failures

    out = layout.evaluation
    roc = rev.roc_table(failed, probability)
    pr = rev.precision_recall_table(failed, probability)
    calibration = rev.calibration_table(failed, probability)
    io.write_json({**metrics, "baselines": baselines}, out / "metrics.json")
    io.write_csv_for_humans(roc, out / "roc.csv")
    io.write_csv_for_humans(pr, out / "precision_recall.csv")
    io.write_csv_for_humans(calibration, out / "calibration.csv")
    io.write_csv_for_humans(bands_test, out / "bands.csv")
    io.write_csv_for_humans(
        pd.DataFrame(
            {
                "change_id": test["change_id"],
                "probability": probability.round(4),
                "band": answer["band"],
                "failed": failed,
                "reasons": answer["reasons"].map("; ".join),
                "conflicts": answer["conflicts"].map("; ".join),
            }
        ).sort_values("probability", ascending=False),
        out / "test_changes.csv",
    )
    name = entry.registered_model
    figures = {
        "curves.png": rev.risk_curves_figure(
            roc, pr, metrics["failure_rate"], f"{name} on test: AUC {metrics['auc']:.3f}"
        ),
        "reliability.png": reliability_figure(
            calibration.rename(columns={"predicted": "confidence", "observed": "accuracy"}),
            f"{name} on test: ECE {metrics['ece']:.3f}",
            xlabel="predicted probability of failure",
            ylabel="observed failure rate",
        ),
        "bands.png": rev.band_figure(bands_test, f"{name}: risk bands on test"),
    }
    for figure_name, figure in figures.items():
        io.save_figure(figure, out / figure_name)

    source = sources.describe(params.table(entry.table).source)
    card = render_change_card(
        registered_model=name,
        data={
            "source": source,
            "split_method": "time-ordered",
            "train_rows": len(train_rows),
            "valid_rows": len(valid_rows),
            "test_rows": len(test),
            "train_period": _period(train_rows),
            "valid_period": _period(valid_rows),
            "test_period": _period(test),
            "train_failure_rate": float(train_rows[LABEL].mean()),
            "valid_failure_rate": float(valid_rows[LABEL].mean()),
            "test_failure_rate": float(test[LABEL].mean()),
            "features": scorer.features_,
            "delay_days": settings.history.delay_days,
        },
        metrics=metrics,
        baselines=baselines,
        band_targets={
            band: f"{kind} {target:.0%}" for band, (kind, target) in scorer.model.bands.items()
        },
        bands_valid=bands_valid,
        bands_test=bands_test,
        intended_use=entry.intended_use,
        owner=entry.owner,
        limits=[*entry.limits, *_limits(scorer, test)],
    )
    card_path = layout.card
    io.write_text(card, card_path)

    registry.configure(root, registry.CHANGE_RISK_EXPERIMENT)
    inputs = scorer.input_columns_
    # The example shows conflicts when some exist: it doubles as documentation of the answer.
    example = test.loc[answer["conflicts"].map(len).sort_values(ascending=False).index[:5], inputs]
    registered = registry.log_and_register(
        model=scorer,
        model_path=layout.model,
        registered_model=name,
        params=scorer.settings(),
        metrics={
            **{k: v for k, v in metrics.items() if isinstance(v, int | float)},
            **{f"baseline {b} auc": m["auc"] for b, m in baselines.items()},
        },
        tags=registry.model_tags(root, entry.name, entry.table, source),
        artifacts=[out / n for n in figures] + [out / "bands.csv", card_path],
        inputs=registry.split_inputs(
            root,
            entry.table,
            {"train": train_rows, "valid": valid_rows, "test": test},
            list(inputs),
            LABEL,
        ),
        input_example=example.reset_index(drop=True),
        code_path=Path(__file__).parents[1],
        dataset_name=entry.table,
        description=card,
    )
    write_registered(registered, layout)
    write_headline(layout, entry, metrics, baselines)
    name = f"{registered.name} v{registered.version}"
    return StageResult(
        f"AUC {metrics['auc']:.3f}, PR-AUC {metrics['pr_auc']:.3f}, ECE {metrics['ece']:.3f};"
        f" registered {name} as challenger",
        {**metrics, "registered": name},
    )


def _limits(scorer: Any, test: pd.DataFrame) -> list[str]:
    limits = []
    featurizer = scorer.featurizer
    if not featurizer.uses_windows_:
        limits.append(
            "No planned windows in this source: no conflict, lead-time or business-hours features."
        )
    else:
        limits.append(
            "Conflicts count only changes requested before the change's planned start; send"
            " the other planned changes of the window in the same batch to have them checked."
        )
    if not featurizer.history_keys_:
        limits.append("No team, CI or service column: no history features.")
    else:
        limits.append(
            "Track records and the calendar are those of the training data: scoring long after"
            " training sees stale records and no recent volume; retrain regularly."
        )
    limits.append(
        "Outcomes found late (a failure traced back weeks after) are missing from the most"
        " recent changes: their observed failure rate is a lower bound."
    )
    unseen = {
        column: int((~test[column].astype("string").isin(scorer.model.levels_[column])).sum())
        for column in scorer.model.categorical_
    }
    for column, count in unseen.items():
        if count:
            limits.append(
                f"{count} test changes have a `{column}` too rare in training to have its own"
                " value (bucketed as other)."
            )
    return limits
