"""The benches' time-ordered split, one definition for every bench that needs it."""

from __future__ import annotations

import pandas as pd

TEST_SHARE = 0.2
VALID_SHARE = 0.15  # of the rows before test


def time_ordered(tickets: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, valid, test by opening time: test the last 20%, valid the 15% before it."""
    ordered = tickets.sort_values("opened_at", kind="stable").reset_index(drop=True)
    test_start = int(len(ordered) * (1 - TEST_SHARE))
    valid_start = int(test_start * (1 - VALID_SHARE))
    return (
        ordered.iloc[:valid_start],
        ordered.iloc[valid_start:test_start],
        ordered.iloc[test_start:],
    )
