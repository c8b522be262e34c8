"""Decisions read back as labels for the rule: each setting replayed, its raised groups known
by the ids they carry, and the setting keeping most accepted net of rejected suggested."""

from __future__ import annotations

import pandas as pd

from itsm_ml.config import ProblemsParams, RecurrenceRuleParams
from itsm_ml.problems import detection, tuning
from tests.unit.problems.test_detection import START, micro_records, tickets


def history() -> pd.DataFrame:
    """The VPN issue of `test_detection` (never a ticket), and a toner request that comes
    weekly and, one week, four times more: a bump, not a problem."""
    toner = [START + pd.Timedelta(days=d, hours=5) for d in range(0, 140, 7)]
    toner += [START + pd.Timedelta(days=101 + k, hours=6) for k in range(4)]
    extra = pd.DataFrame(
        {
            "service": "Printing",
            "text": "Please send a toner cartridge for printer P-7",
            "opened_at": toner,
            "ticket_id": [f"T{i}" for i in range(len(toner))],
            "caller": [f"t{i}" for i in range(len(toner))],
        }
    )
    return detection.combine(pd.concat([tickets(), extra], ignore_index=True), micro_records())


def settings(threshold: float = 0.6) -> ProblemsParams:
    return ProblemsParams(
        threshold=threshold,
        tried=(0.6, 0.75),
        tried_growth=(3.0,),
        rule=RecurrenceRuleParams(min_records=4, min_callers=3, window_days=14, growth=1.5),
    )


def test_the_setting_that_keeps_the_accepted_and_drops_the_rejected_is_suggested() -> None:
    records = history()
    current = settings()
    # What the problems stage raised with params.yaml's setting, and what was decided.
    grouped = detection.group_records(records, current)
    raised = detection.replay(grouped, current)
    texts = {
        g: grouped.records.loc[grouped.records["group"] == g, "text"].iloc[0] for g in raised.group
    }
    [vpn] = [g for g, text in texts.items() if "809" in text]
    [toner] = [g for g, text in texts.items() if "toner" in text]
    decisions = [
        {"candidate": vpn, "decision": "accepted"},
        {"candidate": toner, "decision": "rejected"},
        {"candidate": "RI-0000000000", "decision": "pending"},  # labels nothing
    ]
    found = tuning.tune(records, current, grouped.groups, decisions)
    assert found.decided == 2 and not found.enough
    assert found.current == {"threshold": 0.6, "growth": 1.5}
    assert len(found.table) == 4  # two thresholds x two growths
    # The bump quadruples a weekly request: above 1.5x what is usual, not above 3x.
    best = found.best
    assert (best["threshold"], best["growth"]) == (0.6, 3.0)
    assert (best["accepted"], best["rejected"], best["precision"]) == (1, 0, 1.0)
    now = found.table.set_index(["threshold", "growth"]).loc[(0.6, 1.5)]
    assert (now["accepted"], now["rejected"], now["precision"]) == (1, 1, 0.5)
    # At 0.75 the VPN issue splits in two: the part holding most of it keeps the id the
    # problem manager accepted, so the decision still counts there.
    stricter = found.table[found.table["threshold"] == 0.75]
    assert (stricter["accepted"] == 1).all()


def test_pending_decisions_label_nothing() -> None:
    assert tuning.verdicts(
        [
            {"candidate": "RI-a", "decision": "accepted"},
            {"candidate": "RI-b", "decision": "pending"},
            {"candidate": "RI-c", "decision": "rejected"},
        ]
    ) == {"RI-a": "accepted", "RI-c": "rejected"}
