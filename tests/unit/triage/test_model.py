"""TriageModel on small generated tickets: learns, calibrates, routes, and never crashes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from itsm_ml.config import GeneratorSource
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import time_split
from itsm_ml.triage.model import NotFittedError, TriageModel

FEATURES = ["caller", "channel", "ci", "service"]


@pytest.fixture(scope="module")
def parts() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    tickets = load_table(
        "tickets",
        GeneratorSource(
            kind="generator", rows=3000, seed=5, start=date(2025, 1, 1), end=date(2025, 6, 30)
        ),
    )
    split = time_split(tickets, "opened_at", 0.2, 0.2)
    return split.train, split.valid, split.test


@pytest.fixture(scope="module")
def model(parts: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> TriageModel:
    train, valid, _ = parts
    return TriageModel(categorical=FEATURES, n_estimators=60, n_jobs=1).fit(
        train, train.label_category, valid, valid.label_category
    )


def test_it_learns_far_better_than_the_majority(model: TriageModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, test = parts
    accuracy = (model.predict(test) == test.label_category.to_numpy()).mean()
    majority = test.label_category.value_counts(normalize=True).iloc[0]
    assert accuracy > majority + 0.3


def test_probabilities_are_calibrated_distributions(model: TriageModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, test = parts
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), len(model.classes_))
    assert np.allclose(proba.sum(axis=1), 1)
    assert model.calibrator_.temperature_ > 0


def test_auto_route_follows_the_class_thresholds(model: TriageModel, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, test = parts
    answer = model.respond(test)
    limits = answer.label.map(model.thresholds_).astype(float)
    assert (answer.auto_route == (answer.probability >= limits)).all()
    assert answer.suggestions.map(len).eq(3).all()
    assert (answer.suggestions.str[0] == answer.label).all()


def test_small_classes_are_never_auto_routed(parts) -> None:  # type: ignore[no-untyped-def]
    train, valid, _ = parts
    model = TriageModel(
        categorical=FEATURES, n_estimators=30, n_jobs=1, min_class_support=10**6
    ).fit(train, train.label_category, valid, valid.label_category)
    assert set(model.thresholds_.values()) == {float("inf")}
    assert not model.respond(valid).auto_route.any()


def test_unknown_values_and_missing_columns_fall_back_and_say_so(model: TriageModel) -> None:
    odd = pd.DataFrame({"caller": ["Caller 999999", None], "text": ["", None]})
    answer = model.respond(odd)
    assert len(answer) == 2 and answer.probability.between(0, 1).all()
    assert "unseen caller (treated as rare)" in answer.notes.iloc[0]
    assert "no text" in answer.notes.iloc[0] and "no channel" in answer.notes.iloc[0]
    assert "no caller" in answer.notes.iloc[1]


def test_unfitted_model_says_so() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        TriageModel().predict_proba(pd.DataFrame({"text": ["x"]}))


def test_a_binary_label_without_text_learns_and_answers_both_classes() -> None:
    # LightGBM's multiclass objective refuses two classes; this once crashed `train`.
    rng = np.random.default_rng(3)
    n = 1200
    team = rng.choice(["a", "b", "c", "d"], size=n)
    breached = np.where(np.isin(team, ["a", "b"]), rng.random(n) < 0.85, rng.random(n) < 0.1)
    frame = pd.DataFrame({"team": team, "label_breached": np.where(breached, "yes", "no")})
    train, valid, test = frame.iloc[:800], frame.iloc[800:1000], frame.iloc[1000:]
    model = TriageModel(categorical=["team"], text_column=None, n_jobs=1).fit(
        train, train.label_breached, valid, valid.label_breached
    )
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    accuracy = float(np.mean(model.predict(test) == test.label_breached.to_numpy()))
    assert accuracy > 0.8  # the majority class alone scores about 0.53 here


def test_it_is_a_scikit_learn_estimator_clone_and_set_params_work(model: TriageModel) -> None:
    from sklearn.base import clone

    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "classes_")
    assert copy.set_params(top_k=5).top_k == 5 and model.top_k == 3
