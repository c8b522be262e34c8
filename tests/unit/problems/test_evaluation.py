"""The measures the benches report: pairs among linked records, problems raised and how
early, the review load, and the key baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itsm_ml.problems.detection import Grouped
from itsm_ml.problems.evaluation import keyed, pairwise, per_month, raised_problems

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
