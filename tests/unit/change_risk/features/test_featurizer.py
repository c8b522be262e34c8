"""The change featurizer: what a change sees at the moment of decision, alone or in a table."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from itsm_ml.change_risk.features.featurizer import ChangeFeaturizer
from itsm_ml.config import ConflictParams, GeneratorSource, HistoryParams
from itsm_ml.data.sources import load_table

CATEGORICAL = ("change_type", "ci", "service", "assignment_group")


@pytest.fixture(scope="module")
def changes() -> pd.DataFrame:
    return load_table(
        "changes",
        GeneratorSource(
            kind="generator", rows=3000, seed=7, start=date(2025, 1, 1), end=date(2025, 9, 30)
        ),
    )


def featurizer() -> ChangeFeaturizer:
    return ChangeFeaturizer(
        numeric=("size",),
        categorical=CATEGORICAL,
        history=HistoryParams(delay_days=30),
        conflicts=ConflictParams(),
    )


def test_rewriting_every_future_outcome_leaves_past_features_unchanged(
    changes: pd.DataFrame,
) -> None:
    cut = pd.Timestamp("2025-06-01")
    future = (changes.opened_at > cut).to_numpy()
    rewritten = changes.assign(
        label_failed=np.where(future, ~changes.label_failed.astype(bool), changes.label_failed)
    )
    before = featurizer().fit_transform(changes)
    after = featurizer().fit_transform(rewritten)
    pd.testing.assert_frame_equal(before[~future], after[~future])
    assert not before[future].equals(after[future])  # the test can fail


def test_a_change_scored_alone_later_sees_what_it_saw_in_the_table(
    changes: pd.DataFrame,
) -> None:
    earlier, later = changes.iloc[:2400], changes.iloc[2400:]
    in_table = featurizer().fit_transform(changes).iloc[2400:]
    fitted = featurizer().fit(earlier)
    pd.testing.assert_frame_equal(fitted.transform(later), in_table, check_dtype=False)
    one = later.iloc[[10]]
    alone = fitted.transform(one)
    # Alone, it still has its team's track record and the conflicts with the earlier calendar.
    assert alone.assignment_group_failure_rate.iloc[0] == pytest.approx(
        in_table.assignment_group_failure_rate.iloc[10]
    )
    assert fitted.context_.opened_at.min() >= earlier.opened_at.max() - pd.Timedelta(days=210)


def test_what_an_itsm_sends_is_accepted_strings_and_missing_columns_included(
    changes: pd.DataFrame,
) -> None:
    fitted = featurizer().fit(changes)
    sent = pd.DataFrame(
        {
            "change_id": ["CHG-NEW"],
            "opened_at": ["2025-10-01 09:00:00"],
            "planned_start": ["2025-10-04 22:00:00"],  # a Saturday night
            "planned_end": ["not a date"],
            "ci": ["never seen"],
        }
    )
    row = fitted.transform(sent).iloc[0]
    assert row.lead_hours == pytest.approx(85.0)
    assert row.outside_business_hours == 1
    assert pd.isna(row["window_hours"]) and pd.isna(row["size"])
    assert row["ci_known_changes"] == 0  # a CI never seen: no outcome known ...
    assert pd.isna(row["assignment_group_failure_rate"])  # ... no group sent: no track record


def test_a_source_without_windows_or_keys_gets_only_its_own_columns() -> None:
    rng = np.random.default_rng(0)
    commits = pd.DataFrame(
        {
            "change_id": [f"c{i}" for i in range(200)],
            "opened_at": pd.date_range("2024-01-01", periods=200, freq="D"),
            "la": rng.integers(1, 500, 200).astype(float),
            "label_failed": rng.random(200) < 0.2,
        }
    )
    fitted = ChangeFeaturizer(numeric=("la",), categorical=CATEGORICAL)
    features = fitted.fit_transform(commits)
    assert list(features.columns) == ["la"]
    assert fitted.input_columns_ == ["change_id", "opened_at", "la"]
    with pytest.raises(RuntimeError, match="not fitted"):
        ChangeFeaturizer().transform(commits)
