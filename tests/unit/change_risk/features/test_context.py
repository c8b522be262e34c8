"""One change scored against the indexed context answers exactly what the reference path
(the change appended to the whole context) answers: features, conflicts and the model's
answer, in every case the lookups have to get right."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import numpy as np
import pandas as pd
import pytest

from itsm_ml.change_risk.features.featurizer import ChangeFeaturizer
from itsm_ml.config import BlackoutWindow, ConflictParams, GeneratorSource, HistoryParams
from itsm_ml.data.sources import load_table

CATEGORICAL = ("change_type", "ci", "service", "assignment_group")


@pytest.fixture(scope="module")
def changes() -> pd.DataFrame:
    return load_table(
        "changes",
        GeneratorSource(
            kind="generator", rows=2500, seed=11, start=date(2025, 1, 1), end=date(2025, 9, 30)
        ),
    )


def fitted(changes: pd.DataFrame, delay_days: float = 30) -> ChangeFeaturizer:
    rules = ConflictParams(
        blackout_windows=(
            BlackoutWindow(name="summer freeze", start=date(2025, 8, 1), end=date(2025, 8, 15)),
        )
    )
    return ChangeFeaturizer(
        numeric=("size",),
        categorical=CATEGORICAL,
        history=HistoryParams(delay_days=delay_days, window_days=90, volume_days=14),
        conflicts=rules,
    ).fit(changes.iloc[:2000])


@contextmanager
def reference_path(featurizer: ChangeFeaturizer) -> Iterator[None]:
    """Score through the union with the whole context, as a batch is scored."""
    featurizer._alone = lambda changes: False  # type: ignore[method-assign]
    try:
        yield
    finally:
        del featurizer._alone


def assert_same_answer(featurizer: ChangeFeaturizer, one: pd.DataFrame) -> None:
    assert featurizer._alone(one)
    features, conflicts = featurizer.transform_with_conflicts(one)
    with reference_path(featurizer):
        expected, expected_conflicts = featurizer.transform_with_conflicts(one)
    # Values bit for bit; a number sent as text is an int here and a float in the union (the
    # model reads both as the same float).
    pd.testing.assert_frame_equal(features, expected, check_exact=True, check_dtype=False)
    assert conflicts == expected_conflicts


def later_changes(changes: pd.DataFrame) -> pd.DataFrame:
    return changes.iloc[2000:].drop(columns="label_failed")


def test_later_changes_one_by_one(changes: pd.DataFrame) -> None:
    featurizer = fitted(changes)
    later = later_changes(changes)
    seen_overlap = seen_freeze = 0
    for position in range(0, len(later), 2):
        one = later.iloc[[position]]
        assert_same_answer(featurizer, one)
        report = featurizer.transform_with_conflicts(one)[1][0]
        seen_overlap += any(line.startswith("overlaps") for line in report)
        seen_freeze += any("blackout" in line for line in report)
    assert seen_overlap >= 3 and seen_freeze >= 1  # the cases that need the index occurred


@pytest.mark.parametrize(
    "edit",
    [
        {"opened_at": pd.NaT},  # no time: no track record
        {"planned_end": pd.NaT},  # no end: no overlap, but blackout and hours
        {"planned_start": pd.NaT, "planned_end": pd.NaT},  # no window at all
        {"ci": "a CI never seen", "assignment_group": "a new team"},  # new values
        {"ci": None, "service": None},  # no keys
        {"size": "12"},  # a number sent as text, as a request sends it
        {"change_id": None},
    ],
)
def test_unusual_changes(changes: pd.DataFrame, edit: dict[str, object]) -> None:
    featurizer = fitted(changes)
    one = later_changes(changes).iloc[[7]].astype(object)
    for column, value in edit.items():
        one[column] = value
    assert_same_answer(featurizer, one)


def test_a_change_without_the_window_columns(changes: pd.DataFrame) -> None:
    featurizer = fitted(changes)
    one = later_changes(changes).iloc[[3]].drop(columns=["planned_start", "planned_end"])
    assert_same_answer(featurizer, one)


def test_its_own_outcome_counts_when_outcomes_are_known_at_once(changes: pd.DataFrame) -> None:
    featurizer = fitted(changes, delay_days=0)
    one = changes.iloc[[2100]]  # with its outcome
    assert one.label_failed.notna().all()
    assert_same_answer(featurizer, one)


def test_a_change_already_in_the_context_takes_the_reference_path(changes: pd.DataFrame) -> None:
    featurizer = fitted(changes)
    again = changes.iloc[[1990]]
    assert not featurizer._alone(again)
    assert featurizer._alone(later_changes(changes).iloc[[0]])


def test_the_index_is_not_pickled(changes: pd.DataFrame) -> None:
    featurizer = fitted(changes)
    featurizer.transform(later_changes(changes).iloc[[0]])
    assert "_context_index" in featurizer.__dict__
    assert "_context_index" not in featurizer.__getstate__()
    assert np.isfinite(featurizer.transform(later_changes(changes).iloc[[1]])["size"]).all()


def test_a_change_requested_at_the_very_start_of_another_is_seen(changes: pd.DataFrame) -> None:
    """Visible means requested by the planned start, that instant included."""
    featurizer = fitted(changes)
    context = featurizer.context_
    other = context[context.planned_end.notna() & context.ci.notna()].iloc[-1]
    one = later_changes(changes).iloc[[0]].copy()
    one["ci"] = other.ci
    one["planned_start"] = other.opened_at
    one["planned_end"] = other.planned_end
    assert_same_answer(featurizer, one)
    report = featurizer.transform_with_conflicts(one)[1][0]
    assert any(str(other.change_id) in line for line in report)
