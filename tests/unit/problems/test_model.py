"""The recurrence model of the catalog: its threshold chosen on validation's problem links,
judged on a later period, and the groups open when training stopped kept as its state."""

from __future__ import annotations

import functools

import pandas as pd
import pytest

from itsm_ml.config import ProblemsParams, RecurrenceRuleParams
from itsm_ml.errors import SourceError
from itsm_ml.problems.model import RecurrenceModel, judge_key_baseline

START = pd.Timestamp("2025-01-01 09:00")
EVERYDAY = ("Forgot my password, please reset it", "Password reset request", "Need a new password")
# One VPN fault in four wordings: alike enough at a loose threshold, apart at a strict one.
FAULT = (
    "VPN client shows error 809 since the Windows update",
    "Error 809 when connecting to VPN after patching",
    "cannot connect VPN, error 809 after update",
    "VPN drops with error 809 after the update",
)
VPN_EVERYDAY = (
    "How do I request a new hardware token",
    "Please send me a new token for remote access",
)
VALID_START = START + pd.Timedelta(days=90)
TEST_START = START + pd.Timedelta(days=130)


def history(fault_days: tuple[int, ...] = (95, 135)) -> pd.DataFrame:
    """Password resets and remote-access token requests every day for 170 days; from each of `fault_days`, the VPN fault eight
    times in eight days from eight callers, half of it linked to a problem that the desk
    recorded ten days after each ticket (so the group is raised before the link is known)."""
    rows = []
    for day in range(170):
        rows.append(("Identity", EVERYDAY[day % 3], START + pd.Timedelta(days=day, hours=2), None))
        rows.append(("VPN", VPN_EVERYDAY[day % 2], START + pd.Timedelta(days=day, hours=3), None))
    for n, first in enumerate(fault_days):
        for k in range(8):
            problem = f"PRB{n}" if k % 2 == 0 else None
            moment = START + pd.Timedelta(days=first + k, hours=4)
            rows.append(("VPN", FAULT[k % 4], moment, problem))
    frame = pd.DataFrame(rows, columns=["service", "text", "opened_at", "label_problem_id"])
    frame = frame.sort_values("opened_at", kind="stable").reset_index(drop=True)
    return frame.assign(
        ticket_id=[f"INC{i:04d}" for i in range(len(frame))],
        caller=[f"c{i}" for i in range(len(frame))],
        closed_at=frame["opened_at"] + pd.Timedelta(days=10),
    )


def settings(threshold: float, tried: tuple[float, ...]) -> ProblemsParams:
    return ProblemsParams(
        threshold=threshold,
        tried=tried,
        same=("service",),
        rule=RecurrenceRuleParams(min_records=4, min_callers=3, window_days=14),
    )


@functools.cache
def _fitted() -> RecurrenceModel:
    frame = history()
    until = frame[frame["opened_at"] < TEST_START]
    model = RecurrenceModel(label="label_problem_id", settings=settings(0.95, (0.5,)))
    return model.fit(until, None, VALID_START)


def fitted() -> RecurrenceModel:
    """The model fitted on the history before the test period, configured at 0.95 and
    trying 0.5 (a copy: one fit serves every test)."""
    return _fitted().fresh()


def test_the_threshold_that_raises_validations_problem_is_chosen_and_all_tried_are_kept() -> None:
    model = fitted()
    # At 0.95 each wording of the fault is a group of its own and none is raised; at 0.5
    # they are one group, raised while the problem was not yet linked.
    tried = {t["threshold"]: t for t in model.tried_}
    assert set(tried) == {0.5, 0.95}
    assert tried[0.95]["problems_raised"] == 0 and tried[0.5]["problems_raised"] == 1
    assert model.threshold == 0.5
    assert "most of validation's problem_id problems raised" in model.threshold_basis_
    assert model.validation_["problems"] == 1 and model.validation_["pairwise_f1"] == 1.0


def test_without_links_in_validation_the_configured_threshold_stays_saying_why() -> None:
    frame = history().assign(label_problem_id=None)
    model = RecurrenceModel(label="label_problem_id", settings=settings(0.95, (0.5,)))
    model.fit(frame[frame["opened_at"] < TEST_START], None, VALID_START)
    assert model.threshold == 0.95
    assert "validation links no two records to one problem" in model.threshold_basis_


def test_a_later_period_is_judged_on_its_own_links_beside_the_key_baseline() -> None:
    model = fitted()
    judged = model.judge(history(), None, TEST_START)
    figures = judged.figures
    # The fault comes back in test (PRB1): raised again, its four linked tickets together.
    assert (figures["problems"], figures["problems_raised"]) == (1, 1)
    assert figures["pairwise_precision"] == figures["pairwise_recall"] == 1.0
    assert figures["candidates"] >= 1 and figures["candidates_per_month"] > 0
    assert figures["linked_records"] == 4
    # Keyed by service (the export has no category): the VPN group holds every pair of the
    # fault, and the everyday token requests too, so eight more records in a fortnight never
    # double it: the key raises nothing. Same records, same rule.
    key, baseline = judge_key_baseline(model.settings, judged.grouped.records, TEST_START)
    assert key == ("service",)
    assert baseline.figures["linked_records"] == 4 and baseline.figures["pairwise_f1"] == 1.0
    assert baseline.figures["problems_raised"] == 0 and baseline.figures["candidates"] == 0


def test_the_groups_open_at_the_end_of_training_place_the_next_records() -> None:
    model = fitted()
    state = model.grouper_
    assert state is not None
    # Only open groups are kept: the first months' groups closed long before.
    assert len(state.groups) < 10
    later = pd.DataFrame(
        {
            "ticket_id": ["NEW1", "NEW2"],
            "opened_at": [TEST_START, TEST_START + pd.Timedelta(hours=1)],
            "text": ["Password reset request", "Badge reader at the north door is broken"],
            "caller": ["x1", "x2"],
            "service": ["Identity", "Facilities"],
        }
    )
    answer = model.respond(later)
    assert answer["ticket_id"].tolist() == ["NEW1", "NEW2"]
    assert answer["new_group"].tolist() == [False, True]
    assert not answer["raised"].iloc[1]
    # The model did not move: the same records are placed the same way again.
    assert model.respond(later)["group"].tolist() == answer["group"].tolist()
    assert len(state.groups) == len(model.grouper_.groups)  # type: ignore[union-attr]


def test_answers_come_in_input_order_and_an_unplaceable_record_has_no_group() -> None:
    model = fitted()
    later = pd.DataFrame(
        {
            "ticket_id": ["LATE", "EARLY", "NOTIME"],
            "opened_at": [TEST_START + pd.Timedelta(days=1), TEST_START, pd.NaT],
            "text": ["Password reset request", "Need a new password", "Password reset request"],
            "service": ["Identity", "Identity", "Identity"],
        }
    )
    answer = model.respond(later)
    assert answer["ticket_id"].tolist() == ["LATE", "EARLY", "NOTIME"]
    assert answer["group"].iloc[0] == answer["group"].iloc[1]  # both everyday resets
    assert pd.isna(answer["group"].iloc[2])
    with pytest.raises(SourceError, match="its own `ticket_id`"):
        model.respond(later.assign(ticket_id=["A", "A", "B"]))


def test_an_unfitted_model_refuses_to_respond() -> None:
    model = RecurrenceModel(label="label_problem_id", settings=settings(0.7, ()))
    with pytest.raises(SourceError, match="not fitted"):
        model.respond(pd.DataFrame({"ticket_id": ["a"], "opened_at": [START]}))
