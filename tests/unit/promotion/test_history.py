"""The ledger read back: a passed decision is "promoted" only when its alias move followed."""

from __future__ import annotations

from typing import Any

from itsm_ml.promotion.gate import Check, Decision
from itsm_ml.promotion.history import (
    NOT_APPLIED,
    NOT_LEDGERED,
    ROLLBACK_NOT_APPLIED,
    applied,
    pending,
    rows,
)

MODEL = "itsm-routing"
PASS = Check("beats champion v1 on the latest labelled window", True, "accuracy 0.9 > 0.8")
FAIL = Check("beats champion v1 on the latest labelled window", False, "accuracy 0.7 < 0.8")
WARN = Check("current data resembles its training data", False, "drifted", blocking=False)


def decision(
    challenger: str,
    champion: str | None = "1",
    *,
    passed: bool = True,
    reason: str | None = None,
    model: str = MODEL,
) -> dict[str, Any]:
    made = Decision(model, challenger, champion, (PASS if passed else FAIL, WARN), (), reason)
    return {"at": "2026-05-01T10:00:00+00:00", "event": "decision", "actor": "ops@desk",
            **made.to_dict()}  # fmt: skip


def moved(version: str, previous: str | None = "1", model: str = MODEL) -> dict[str, Any]:
    return {"at": "2026-05-01T10:00:01+00:00", "event": "alias moved", "actor": "ops@desk",
            "model": model, "alias": "champion", "version": version, "previous": previous}  # fmt: skip


def rollback(to: str, from_: str) -> dict[str, Any]:
    return {"at": "2026-05-02T09:00:00+00:00", "event": "rollback", "actor": "ops@desk",
            "model": MODEL, "from": from_, "to": to}  # fmt: skip


def outcomes(entries: list[dict[str, Any]], champion: str | None = None) -> list[str]:
    return [row.outcome for row in rows(entries, champion)]


def test_a_passed_decision_followed_by_its_move_reads_passed() -> None:
    entries = [decision("2"), moved("2")]
    assert outcomes(entries) == ["passed", "champion moved"]
    assert [(r.event, r.version, r.actor) for r in rows(entries)] == [
        ("decision", "v2 (champion v1)", "ops@desk"),
        ("alias moved", "v2", "ops@desk"),
    ]
    assert applied(entries) == [True, None] and pending(entries) is None


def test_a_passed_decision_with_no_move_before_the_next_decision_reads_not_applied() -> None:
    # Killed after the decision, before the move; the next run passed and moved.
    entries = [decision("2"), decision("2"), moved("2")]
    assert outcomes(entries) == [f"passed, {NOT_APPLIED}", "passed", "champion moved"]
    assert "run `itsm-ml promote` again" in NOT_APPLIED


def test_a_move_of_another_version_or_model_does_not_apply_a_decision() -> None:
    entries = [decision("3"), moved("2"), decision("5", model="itsm-category"),
               moved("5", model="itsm-category")]  # fmt: skip
    assert applied(entries) == [False, None, True, None]


def test_interleaved_models_are_matched_each_to_its_own_move() -> None:
    entries = [decision("2"), decision("5", model="itsm-category"),
               moved("2"), moved("5", model="itsm-category")]  # fmt: skip
    assert applied(entries) == [True, True, None, None]


def test_forced_and_refused_decisions_and_rollbacks() -> None:
    forced = decision("3", "2", passed=False, reason="CAB-42 approved")
    refused = decision("4", "3", passed=False)
    entries = [forced, refused, rollback("1", "2")]
    shown = outcomes(entries)
    assert shown[0] == (
        "FORCED past: beats champion v1 on the latest labelled window; reason: CAB-42 approved, "
        + NOT_APPLIED
    )
    # A refusal asks no move: nothing to apply, no suffix.
    assert shown[1] == "refused: beats champion v1 on the latest labelled window"
    assert shown[2] == f"from v2, {ROLLBACK_NOT_APPLIED}"
    assert outcomes([*entries, moved("1", "2")])[2] == "from v2"


def test_the_last_unrecorded_move_reads_applied_when_the_alias_points_at_it() -> None:
    """Killed between moving the alias and ledgering it: the registry says it moved."""
    entries = [decision("2"), moved("2"), decision("3", "2")]
    assert pending(entries) is entries[-1]
    assert outcomes(entries, champion="3")[-1] == f"passed, {NOT_LEDGERED}"
    assert outcomes(entries, champion="2")[-1] == f"passed, {NOT_APPLIED}"
    assert outcomes(entries, champion=None)[-1] == f"passed, {NOT_APPLIED}"
    # Only the last intent can be half done: an earlier one is not applied, whatever the alias.
    earlier = [decision("3", "2"), decision("4", "2"), moved("4", "2")]
    assert outcomes(earlier, champion="3")[0] == f"passed, {NOT_APPLIED}"


def test_a_reconciled_move_says_it_was_recorded_late() -> None:
    entries = [decision("2"), {**moved("2"), "reconciled": "the move ... was applied"}]
    assert outcomes(entries) == ["passed", "champion moved (recorded after an interrupted run)"]
