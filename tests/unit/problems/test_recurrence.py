"""The recurrence rule: enough records from enough callers, growing, with no problem yet."""

from __future__ import annotations

import pandas as pd
import pytest

from itsm_ml.errors import ItsmMlError
from itsm_ml.problems.recurrence import RecurrenceRule, candidates

NOW = pd.Timestamp("2025-03-31")


def group(name: str, days_ago: list[int], callers: int, problem: str | None = None) -> list:
    return [
        {
            "group": name,
            "opened_at": NOW - pd.Timedelta(days=d),
            "caller": f"{name}-caller{i % callers}",
            "problem": problem,
        }
        for i, d in enumerate(days_ago)
    ]


def test_only_recurring_growing_unlinked_groups_of_enough_callers_are_raised() -> None:
    rows = [
        *group("rising", [1, 2, 3, 4, 5, 6], callers=4),
        *group("one caller", [1, 2, 3, 4, 5, 6], callers=1),
        *group("too few", [1, 2, 3], callers=3),
        *group("steady", [1, 2, 3, 4, 5, 15, 16, 17, 18, 19, 20], callers=5),
        *group("held", [1, 2, 3, 4, 5, 6], callers=4, problem="PRB0001"),
        *group("old", [40, 41, 42, 43, 44, 45], callers=4),
        *group("future", [-1, -2, -3, -4, -5], callers=4),
        # Six a fortnight for a year, then eight: more than 1.5 times the four of the window
        # before, not 1.5 times its usual fortnight.
        *group(
            "everyday",
            [1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 18]
            + [30 + 14 * w + d for w in range(25) for d in range(6)],
            callers=6,
        ),
    ]
    rule = RecurrenceRule(min_records=5, min_callers=3, window_days=14, growth=1.5)
    found = candidates(pd.DataFrame(rows), rule, NOW, linked="problem")
    assert found["group"].tolist() == ["rising"]
    raised = found.iloc[0]
    assert (raised.records, raised.callers, raised.previous_records) == (6, 4, 0)
    assert raised.usual_records == 0
    assert raised.first_seen == NOW - pd.Timedelta(days=6)
    # Without the growth requirement the steady group is raised too; unlinked, held is.
    lenient = RecurrenceRule(min_records=5, min_callers=3, window_days=14, growth=0.0)
    # Most records first: held and rising have 6 (4 callers each), steady 5 this window.
    assert candidates(pd.DataFrame(rows), lenient, NOW)["group"].tolist() == [
        "everyday",
        "held",
        "rising",
        "steady",
    ]
    everyday = candidates(pd.DataFrame(rows), lenient, NOW).iloc[0]
    assert everyday.previous_records == 4 and everyday.usual_records == pytest.approx(
        154 / 25.5, abs=0.01
    )


def test_records_without_the_columns_of_the_rule_are_refused() -> None:
    with pytest.raises(ItsmMlError, match=r"lack the column\(s\) \['caller'\]"):
        candidates(pd.DataFrame({"group": [], "opened_at": []}), RecurrenceRule(), NOW)
