"""History features use only outcomes known before the moment of decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itsm_ml.change_risk.features.history import outcome_history

CUT = pd.Timestamp("2025-06-01")


@pytest.fixture
def changes() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 3000
    return pd.DataFrame(
        {
            "opened_at": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.uniform(0, 365, n), unit="D"),
            "assignment_group": rng.choice(["net", "db", "web", "sap"], n),
            "ci": rng.choice([f"ci-{i}" for i in range(40)], n),
            "label_failed": rng.uniform(0, 1, n) < 0.15,
        }
    )


def test_rewriting_every_future_outcome_leaves_past_features_unchanged(
    changes: pd.DataFrame,
) -> None:
    before = outcome_history(changes, ["assignment_group", "ci"], delay_days=30)
    future = changes.opened_at > CUT
    shuffled = changes.assign(
        label_failed=np.where(future, ~changes.label_failed, changes.label_failed)
    )
    after = outcome_history(shuffled, ["assignment_group", "ci"], delay_days=30)
    past = ~future
    pd.testing.assert_frame_equal(before[past], after[past])
    # The test can fail: features after the cut do move.
    assert not before[future].equals(after[future])


def test_outcomes_count_only_after_the_delay(changes: pd.DataFrame) -> None:
    # A failure becomes visible 30 days after its change, not before.
    frame = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(["2025-01-01", "2025-01-20", "2025-02-05"]),
            "assignment_group": ["net", "net", "net"],
            "label_failed": [True, False, False],
        }
    )
    out = outcome_history(frame, ["assignment_group"], delay_days=30, prior_weight=0)
    assert out.assignment_group_known_changes.tolist() == [0, 0, 1]
    assert out.assignment_group_failure_rate.iloc[2] == 1.0
    assert out.assignment_group_recent_changes.tolist() == [0, 1, 1]


def test_rates_are_shrunk_towards_the_known_overall_rate(changes: pd.DataFrame) -> None:
    out = outcome_history(changes, ["ci"], delay_days=30, prior_weight=10)
    late = changes.opened_at > pd.Timestamp("2025-09-01")
    assert out.ci_failure_rate[late].between(0.02, 0.4).all()
    assert (out.ci_known_changes >= 0).all()


def test_a_change_without_the_key_or_a_time_has_no_track_record() -> None:
    frame = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(["2025-01-01", "2025-03-01", None, "2025-03-02"]),
            "assignment_group": ["net", None, "net", "net"],
            "label_failed": pd.array([True, False, False, None], dtype="boolean"),
        }
    )
    out = outcome_history(frame, ["assignment_group"], delay_days=30, prior_weight=0)
    assert out.iloc[1].isna().all() and out.iloc[2].isna().all()
    # The last change's own missing outcome does not count; the first one's does.
    assert out.assignment_group_known_changes.iloc[3] == 1
    assert out.assignment_group_failure_rate.iloc[3] == 1.0
