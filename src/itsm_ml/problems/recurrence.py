"""The recurrence rule: when a group of records becomes a problem candidate.

At least `min_records` records from at least `min_callers` distinct callers within the last
`window_days`, no record linked to a problem yet, and more records than `growth` times the
group's usual number per window: the larger of the window before and its average window
since it was first seen. A cluster that is recurring and growing, not the steady stream of
an everyday request the desk already lives with (a group of password resets that ran all
year at forty a fortnight is not raised by a fortnight of fifty), nor one a problem manager
already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from itsm_ml.errors import ItsmMlError

COLUMNS = ("group", "opened_at", "caller")
CANDIDATE_COLUMNS = (
    "group",
    "records",
    "callers",
    "previous_records",
    "usual_records",
    "first_seen",
    "last_seen",
)


@dataclass(frozen=True)
class RecurrenceRule:
    min_records: int = 5
    min_callers: int = 3
    window_days: float = 14.0
    growth: float = 2.0  # records in the window must exceed this times the window before


def candidates(
    records: pd.DataFrame, rule: RecurrenceRule, now: pd.Timestamp, linked: str | None = None
) -> pd.DataFrame:
    """The groups of `records` (group, opened_at, caller, and the `linked` problem column when
    given) that the rule raises at `now`, most records first, with their evidence."""
    missing = [c for c in (*COLUMNS, *([linked] if linked else [])) if c not in records]
    if missing:
        raise ItsmMlError(f"recurrence: the records lack the column(s) {missing}")
    window = pd.Timedelta(days=rule.window_days)
    opened = records["opened_at"]
    if not pd.api.types.is_datetime64_any_dtype(opened):
        opened = pd.to_datetime(opened)
    seen = records[opened <= now].assign(opened_at=opened[opened <= now])
    recent = seen[seen["opened_at"] > now - window]
    before = seen[(seen["opened_at"] > now - 2 * window) & (seen["opened_at"] <= now - window)]
    table = recent.groupby("group").agg(
        records=("opened_at", "size"),
        callers=("caller", "nunique"),
        first_seen=("opened_at", "min"),
        last_seen=("opened_at", "max"),
    )
    table["previous_records"] = before.groupby("group").size().reindex(table.index, fill_value=0)
    start = now - window
    earlier = seen[seen["opened_at"] <= start].groupby("group")["opened_at"].agg(["size", "min"])
    earlier = earlier.reindex(table.index)
    lived = ((start - earlier["min"]) / window).clip(lower=1.0)
    average = (earlier["size"] / lived).fillna(0.0)
    table["usual_records"] = np.maximum(table["previous_records"], average).round(2)
    chosen = (
        (table["records"] >= rule.min_records)
        & (table["callers"] >= rule.min_callers)
        & (table["records"] > rule.growth * table["usual_records"])
    )
    if linked:
        held = seen[seen[linked].notna()]["group"].unique()
        chosen &= ~table.index.isin(held)
    found = (
        table[chosen]
        .reset_index()
        .sort_values(["records", "callers", "group"], ascending=[False, False, True], kind="stable")
    )
    return found[list(CANDIDATE_COLUMNS)].reset_index(drop=True)
