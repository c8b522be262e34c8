"""ChangeRiskModel on generated change requests with history features."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from itsm_ml.change_risk.features.history import outcome_history
from itsm_ml.change_risk.model import ChangeRiskModel, ChangeRiskScorer, _band_thresholds
from itsm_ml.change_risk.stage import build_scorer
from itsm_ml.config import ChangeRiskParams, GeneratorSource
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import ordered_cut

CATEGORICAL = ["change_type", "assignment_group", "ci", "service"]


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    changes = load_table(
        "changes",
        GeneratorSource(
            kind="generator", rows=6000, seed=4, start=date(2025, 1, 1), end=date(2025, 12, 31)
        ),
    )
    changes = changes.join(outcome_history(changes, ["assignment_group", "ci"], delay_days=30))
    train, test = ordered_cut(changes, "opened_at", 0.8)
    fit, valid = ordered_cut(train, "opened_at", 0.8)
    return fit, valid, test


@pytest.fixture(scope="module")
def model(parts) -> ChangeRiskModel:  # type: ignore[no-untyped-def]
    fit, valid, _ = parts
    numeric = ["size", "assignment_group_failure_rate", "ci_failure_rate", "ci_recent_changes"]
    return ChangeRiskModel(numeric=numeric, categorical=CATEGORICAL, n_jobs=1).fit(
        fit, fit.label_failed, valid, valid.label_failed
    )


def test_it_ranks_failures_above_successes(model: ChangeRiskModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, test = parts
    auc = roc_auc_score(test.label_failed.astype(int), model.predict_proba(test)[:, 1])
    assert auc > 0.65


def test_calibration_keeps_the_ranking(model: ChangeRiskModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, test = parts
    calibrated = model.predict_proba(test)[:, 1]
    raw = model.predict_proba(test, calibrated=False)[:, 1]
    assert np.array_equal(np.argsort(calibrated, kind="stable"), np.argsort(raw, kind="stable"))
    assert abs(calibrated.mean() - test.label_failed.mean()) < 0.05


def test_bands_catch_their_share_of_validation_failures(model: ChangeRiskModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, valid, _ = parts
    probability = model.predict_proba(valid)[:, 1]
    failed = valid.label_failed.to_numpy(dtype=bool)
    for name, (_, share) in model.bands.items():
        caught = (probability[failed] >= model.band_thresholds_[name]).mean()
        assert caught >= share
    bands = model.band(probability)
    assert set(bands) <= {"low", "medium", "high", "very high"}
    assert probability[bands == "very high"].min() >= probability[bands == "medium"].max()


def test_each_answer_has_reasons_with_direction(model: ChangeRiskModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, test = parts
    answer = model.respond(test.head(20))
    assert answer.probability.between(0, 1).all()
    assert answer.reasons.map(len).between(1, 3).all()
    assert answer.reasons.explode().str.contains(r"=.* \((?:raises|lowers) risk\)$").all()


def test_unknown_categories_and_missing_columns_do_not_crash(model: ChangeRiskModel) -> None:
    answer = model.respond(pd.DataFrame({"ci": ["a CI never seen"], "size": [3.0]}))
    assert len(answer) == 1 and 0 <= answer.probability.iloc[0] <= 1


def test_the_final_model_is_refit_on_train_and_validation(model: ChangeRiskModel) -> None:
    # Rounds chosen on validation, then a refit on all of it with 25% more rounds.
    assert model.rounds_ >= 1
    assert model.booster_.n_estimators == max(round(model.rounds_ * 1.25), 1)


def test_band_thresholds_by_recall_and_by_precision() -> None:
    probability = np.array([0.9, 0.8, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    failed = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])
    thresholds = _band_thresholds(
        probability,
        failed,
        {
            "very high": ("precision", 0.75),  # top 4 hold 3 failures: 75%
            "high": ("recall", 0.5),  # 2 of 4 failures: reached at 0.8 (tied changes stay together)
            "medium": ("recall", 1.0),
        },
    )
    # A lower band never starts above a higher one: "high" is capped at "very high".
    assert thresholds == {"very high": 0.6, "high": 0.6, "medium": 0.3}
    unreachable = _band_thresholds(probability, failed, {"certain": ("precision", 1.01)})
    assert unreachable["certain"] == float("inf")


def test_a_band_sharing_a_threshold_with_a_lower_one_wins(model: ChangeRiskModel) -> None:
    import copy

    shared = copy.copy(model)
    shared.band_thresholds_ = {"very high": 0.3, "high": 0.3, "medium": 0.1}
    assert shared.band(np.array([0.35, 0.2, 0.05])).tolist() == ["very high", "medium", "low"]


@pytest.fixture(scope="module")
def scorer(parts) -> ChangeRiskScorer:  # type: ignore[no-untyped-def]
    fit, valid, _ = parts
    return build_scorer(ChangeRiskParams(n_jobs=1), ["size"], CATEGORICAL).fit(fit, valid)


def test_the_scorer_answers_probability_band_reasons_and_conflicts(
    scorer: ChangeRiskScorer,
    parts,  # type: ignore[no-untyped-def]
) -> None:
    _, _, test = parts
    answer = scorer.respond(test)
    assert list(answer.columns) == ["probability", "band", "reasons", "conflicts"]
    assert roc_auc_score(test.label_failed.astype(int), answer.probability) > 0.65
    with_conflicts = answer[answer.conflicts.map(len) > 0]
    assert len(with_conflicts) > 0.2 * len(test)
    assert (
        with_conflicts.conflicts.explode()
        .str.match(
            r"^(overlaps CHG\d+ on |inside blackout window|starts outside business hours|and \d+ more)"
        )
        .all()
    )
    assert {"overlapping_changes_same_ci", "ci_failure_rate", "lead_hours"} <= set(scorer.features_)
    assert "label_failed" not in scorer.input_columns_


def test_refit_scores_are_mapped_back_onto_the_calibrated_scale(model: ChangeRiskModel) -> None:
    slope, _ = model.alignment_
    # The refit ran more rounds, so its raw scores spread wider than stage 1's: slope < 1.
    assert 0 < slope < 1


def test_the_scorer_and_its_parts_are_scikit_learn_estimators(scorer: ChangeRiskScorer) -> None:
    from sklearn.base import clone

    copy = clone(scorer)
    assert copy.get_params()["model__top_reasons"] == scorer.model.top_reasons
    assert not hasattr(copy.model, "band_thresholds_")  # a clone is unfitted
    assert copy.set_params(model__top_reasons=1).model.top_reasons == 1
    assert "numeric" in scorer.settings() and "top_reasons" in scorer.settings()
