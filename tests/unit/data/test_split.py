from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itsm_ml.data.split import split_table
from itsm_ml.errors import ItsmMlError


def timed(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Minutes drawn with many repeats, so ties sit on the boundaries.
    opened = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    return pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(n)],
            "opened_at": opened,
            "label_assignment_group": rng.choice(list("abc"), n),
        }
    )


def test_no_training_row_is_later_than_any_test_row() -> None:
    frame = timed()
    result = split_table(
        frame, time_column="opened_at", stratify=None, valid_share=0.15, test_share=0.15, seed=0
    )
    assert result.method == "time"
    assert result.train.opened_at.max() < result.valid.opened_at.min()
    assert result.valid.opened_at.max() < result.test.opened_at.min()
    assert len(result.train) + len(result.valid) + len(result.test) == len(frame)
    assert 0.1 < len(result.test) / len(frame) < 0.2


def test_the_time_split_does_not_depend_on_row_order() -> None:
    frame = timed()
    one = split_table(
        frame, time_column="opened_at", stratify=None, valid_share=0.2, test_share=0.2, seed=0
    )
    two = split_table(
        frame.sample(frac=1, random_state=1),
        time_column="opened_at",
        stratify=None,
        valid_share=0.2,
        test_share=0.2,
        seed=0,
    )
    assert set(one.test.ticket_id) == set(two.test.ticket_id)


def test_sources_without_time_get_a_seeded_stratified_split() -> None:
    frame = timed().assign(opened_at=pd.NaT)
    frame.loc[:2, "label_assignment_group"] = "rare"  # too rare to stratify: stays in training
    args = dict(
        time_column="opened_at",
        stratify="label_assignment_group",
        valid_share=0.2,
        test_share=0.2,
        seed=7,
    )
    one, two = split_table(frame, **args), split_table(frame, **args)
    assert one.method == "stratified"
    assert one.test.ticket_id.tolist() == two.test.ticket_id.tolist()
    assert "rare" not in set(one.test.label_assignment_group)
    shares = one.test.label_assignment_group.value_counts(normalize=True)
    overall = frame.label_assignment_group[frame.label_assignment_group != "rare"].value_counts(
        normalize=True
    )
    assert (shares - overall).abs().max() < 0.03


def test_partial_timestamps_are_an_error() -> None:
    frame = timed(50)
    frame.loc[3, "opened_at"] = pd.NaT
    with pytest.raises(ItsmMlError, match="1 rows have no opened_at"):
        split_table(
            frame, time_column="opened_at", stratify=None, valid_share=0.2, test_share=0.2, seed=0
        )
