"""Scoring's fast paths answer exactly what scikit-learn's and LightGBM's own paths answer,
on real exports: same labels, same probabilities to the last bit, same auto-routing, so no
quality figure can move.

The fast paths (LinearEncoder for text models, category codes for the booster) exist only
for speed; each test scores the same held-out tickets through both and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from itsm_ml.config import parse_source
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import split_table
from itsm_ml.triage.model import OTHER, TriageModel

pytestmark = pytest.mark.real_data
MAPPINGS = Path(__file__).parents[2] / "pipelines" / "sources"
TEXT_EXPORTS = {
    "ticket-assignment": ("ticket-assignment.yaml", "ticket-assignment/input_data.csv"),
    "endava": ("endava-tickets.yaml", "endava-tickets-sample/all_tickets_first5431.csv"),
}


def tickets(datasets: Path, mapping: str, path: str) -> pd.DataFrame:
    block = yaml.safe_load((MAPPINGS / mapping).read_text())
    return load_table("tickets", parse_source("tickets", {**block, "path": str(datasets / path)}))


def reference_respond(model: TriageModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The answer with scikit-learn's own transform (the path before LinearEncoder)."""
    model.__dict__.pop("_level_cache", None)
    original = model._linear_encoder
    model._linear_encoder = lambda: None  # type: ignore[method-assign]
    try:
        return model.respond(frame)
    finally:
        model._linear_encoder = original  # type: ignore[method-assign]
        model.__dict__.pop("_level_cache", None)


def open_time_fields(frame: pd.DataFrame) -> list[str]:
    strings = [c for c in frame if frame[c].dtype == "string"]
    return [c for c in strings if c not in ("ticket_id", "text") and not c.startswith("label_")]


def held_out(frame: pd.DataFrame, label: str) -> Any:
    return split_table(
        frame, time_column="opened_at", stratify=label, valid_share=0.15, test_share=0.15, seed=0
    )


@pytest.mark.parametrize("export", sorted(TEXT_EXPORTS))
def test_text_models_answer_exactly_as_scikit_learn_s_transform(
    datasets: Path, export: str
) -> None:
    frame = tickets(datasets, *TEXT_EXPORTS[export])
    label = next(c for c in frame if c.startswith("label_"))
    fields = open_time_fields(frame)
    split = held_out(frame, label)
    model = TriageModel(categorical=fields, text_c=(1.0,), n_jobs=1).fit(
        split.train, split.train[label], split.valid, split.valid[label]
    )
    assert model.members_ == ("text",)
    # Some tickets lose their fields or text, or carry values never seen: every fallback.
    test = split.test.copy()
    test.loc[test.index[:20], "text"] = pd.NA
    for column in fields:
        test.loc[test.index[20:40], column] = pd.NA
        test.loc[test.index[40:60], column] = "never seen before"
    fast = model.respond(test)
    pd.testing.assert_frame_equal(fast, reference_respond(model, test), check_exact=True)
    assert fast.notes.str.contains("no text").sum() >= 20


def test_the_booster_s_codes_give_lightgbm_s_own_scores(datasets: Path) -> None:
    frame = tickets(
        datasets,
        "servicenow-incident-log.yaml",
        "servicenow-incident-log/incident_event_log.csv.gz",
    )
    label = "label_category"
    frame = frame[frame[label].notna()]
    fields = open_time_fields(frame)
    split = held_out(frame, label)
    model = TriageModel(categorical=fields, candidates=("booster",), n_estimators=60, n_jobs=1).fit(
        split.train, split.train[label], split.valid, split.valid[label]
    )
    test = split.test.copy()
    test.loc[test.index[:30], "ci"] = "never seen before"
    test.loc[test.index[30:60], "caller"] = pd.NA
    # LightGBM's pandas path, on categories built by pandas from the raw values.
    structured = pd.DataFrame(
        {
            c: pd.Categorical(
                test[c].astype("string").where(test[c].isin(model.levels_[c]), OTHER).fillna(OTHER),
                categories=[*model.levels_[c], OTHER],
            )
            for c in model.categorical_
        }
    )
    own = model.booster_.booster_.predict(structured, raw_score=True)
    found = model.predict_proba(test, calibrated=False)
    expected = np.exp(own - own.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.allclose(found[:, model._booster_columns], expected, rtol=0, atol=1e-12)


def test_change_risk_one_by_one_and_in_batch_answers_as_the_reference_paths(
    datasets: Path,
) -> None:
    """On a real change history (jit-changes, qt): one change at a time through the context
    index, and the model's direct encoding, against the union pass and LightGBM's pandas
    path."""
    from itsm_ml.change_risk.stage import build_scorer, split_features
    from itsm_ml.config import ChangeRiskParams
    from itsm_ml.data.split import ordered_cut

    block = yaml.safe_load((MAPPINGS / "jit-changes.yaml").read_text())
    source = parse_source(
        "changes", {**block, "path": str(datasets / "jit-changes/qt_k_feature.csv")}
    )
    frame = load_table("changes", source)
    train, test = ordered_cut(frame, "opened_at", 0.8)
    fit, valid = ordered_cut(train, "opened_at", 0.8)
    columns = [c for c in frame if c not in ("change_id", "opened_at", "label_failed")]
    scorer = build_scorer(ChangeRiskParams(), *split_features(frame, columns)).fit(fit, valid)
    model = scorer.model
    batch = test.drop(columns="label_failed")

    features = scorer.featurizer.transform(batch)
    pandas_path = model.booster_.predict(model._features(features), pred_contrib=True)
    assert np.array_equal(model._contributions(features)[1], pandas_path)

    featurizer = scorer.featurizer
    for position in range(0, len(batch), max(len(batch) // 150, 1)):
        one = batch.iloc[[position]]
        assert featurizer._alone(one)
        fast = scorer.respond(one)
        featurizer._alone = lambda changes: False  # type: ignore[method-assign]
        try:
            reference = scorer.respond(one)
        finally:
            del featurizer._alone
        pd.testing.assert_frame_equal(fast, reference, check_exact=True)
