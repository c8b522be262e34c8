"""The measures the benches report: pairs among linked records, problems raised and how
early, the review load, and the key baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itsm_ml.problems.detection import Grouped
from itsm_ml.problems.evaluation import (
    keyed,
    pairwise,
    per_month,
    period_figures,
    raised_problems,
)

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2025-01-01")


def test_pairwise_scores_count_pairs_among_the_linked_records_only() -> None:
    truth = pd.Series({"a": "P1", "b": "P1", "c": "P1", "d": "P2", "e": "P2"})
    # a, b together (right); c apart (two pairs missed); d, e with c (one right, two wrong);
    # an unlinked record in a group is not judged.
    groups = pd.Series({"a": "G1", "b": "G1", "c": "G2", "d": "G2", "e": "G2", "x": "G1"})
    precision, recall, f1 = pairwise(truth, groups)
    assert (precision, recall) == pytest.approx((2 / 4, 2 / 4))
    assert f1 == pytest.approx(0.5)
    assert pairwise(truth, pd.Series({k: k for k in groups.index})) == (0.0, 0.0, 0.0)


def grouped(rows: list[tuple[str, int, str | None, str]]) -> Grouped:
    records = pd.DataFrame(rows, columns=["record_id", "day", "problem", "group"])
    records["opened_at"] = START + records.pop("day") * DAY
    return Grouped(records, np.zeros((len(records), 1)), {}, 1)


def test_a_problem_is_raised_once_a_raised_group_holds_two_of_its_records() -> None:
    result = grouped(
        [
            ("i1", 0, "P1", "G1"),
            ("i2", 3, "P1", "G2"),  # apart from i1: the first pair in one group is i2, i3
            ("i3", 5, "P1", "G2"),
            ("i4", 1, "P2", "G3"),  # G3 raised before P2's second record joined it
            ("i5", 9, "P2", "G3"),
            ("i6", 2, "P3", "G4"),  # P3's group never raised
            ("i7", 4, "P3", "G4"),
            ("i8", 4, "P4", "G5"),  # a problem of one record is not judged
        ]
    )
    raised = pd.DataFrame({"group": ["G2", "G3"], "raised_at": [START + 6 * DAY, START + 2 * DAY]})
    found = raised_problems(result, raised).set_index("problem")
    assert found["raised"].to_dict() == {"P1": True, "P2": True, "P3": False}
    assert found.loc["P1", "days"] == 6.0  # raised on day 6, first record on day 0
    assert found.loc["P2", "days"] == 8.0  # its second record in G3 came on day 9
    assert np.isnan(found.loc["P3", "days"])
    assert per_month(result, raised) == 2.0  # ten days of history count as a month


def test_the_key_baseline_chains_a_key_within_its_window_and_keeps_missing_apart() -> None:
    records = pd.DataFrame(
        {
            "record_id": ["a", "b", "c", "d", "e"],
            "opened_at": START + pd.to_timedelta([0, 5, 30, 31, 32], unit="D"),
            "category": ["net", "net", "net", None, None],
        }
    )
    groups = keyed(records, ("category",), window_days=14).records["group"].tolist()
    assert groups[0] == groups[1] != groups[2]  # 25 quiet days close the first group
    assert groups[3] == groups[4] != groups[2]  # no category is a value of its own


def test_a_period_is_judged_on_its_own_records_and_the_candidates_raised_in_it() -> None:
    result = grouped(
        [
            ("i1", 0, "P1", "G1"),  # before the period: its pairs and problem are not judged
            ("i2", 2, "P1", "G1"),
            ("i3", 31, "P2", "G2"),
            ("i4", 33, "P2", "G2"),
            ("i5", 34, "P2", "G3"),  # one pair of P2's three apart from the others
            ("i6", 40, None, "G3"),
        ]
    )
    raised = pd.DataFrame(
        {
            "group": ["G1", "G2", "G3"],
            "raised_at": [START + 3 * DAY, START + 35 * DAY, START + 41 * DAY],
        }
    )
    figures = period_figures(result, raised, START + 30 * DAY, START + 45 * DAY)
    assert (figures["problems"], figures["problems_raised"]) == (1, 1)
    assert figures["median_days_to_raise"] == 4.0  # raised on day 35, P2 began on day 31
    assert figures["pairwise_precision"] == 1.0 and figures["pairwise_recall"] == pytest.approx(
        1 / 3
    )
    assert figures["linked_records"] == 3 and figures["records"] == 4
    assert figures["candidates"] == 2  # G1 was raised before the period
    assert figures["candidates_per_month"] == pytest.approx(2 / (15 / 30.44))
    # A period with no problem of two records has nothing to share out.
    empty = period_figures(result, raised, START + 38 * DAY, START + 45 * DAY)
    assert empty["problems"] == 0 and np.isnan(empty["problems_raised_share"])
