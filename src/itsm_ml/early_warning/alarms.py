"""From scored points to alarms: one alarm per episode, not one per point.

An alarm opens at the first point of a series at or above the threshold and stays open while
the series keeps crossing it; it closes once `close_after` points in a row stay below. While
it is open, further crossings are the same alarm (its peak and end move), so a service that
is down for six hours raises one warning.
"""

from __future__ import annotations

import pandas as pd

ALARM_COLUMNS = ("series", "opened_at", "last_at", "points", "peak", "peak_at", "basis")


def alarm_events(scored: pd.DataFrame, threshold: float, close_after: int = 3) -> pd.DataFrame:
    """`scored` (series, timestamp, score, basis) as alarms, one row per episode, by time."""
    ordered = scored.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True)
    position = ordered.groupby("series", sort=False).cumcount().to_numpy()
    crossing = ordered["score"].to_numpy() >= threshold
    if not crossing.any():
        return pd.DataFrame(columns=list(ALARM_COLUMNS))
    hits = ordered[crossing].assign(position=position[crossing])
    gap = hits.groupby("series", sort=False)["position"].diff()
    episode = (gap.isna() | (gap > close_after)).cumsum().to_numpy()
    grouped = hits.assign(episode=episode).groupby("episode", sort=False)
    peak_rows = grouped["score"].idxmax().to_numpy()
    events = pd.DataFrame(
        {
            "series": grouped["series"].first(),
            "opened_at": grouped["timestamp"].first(),
            "last_at": grouped["timestamp"].last(),
            "points": grouped.size(),
            "peak": grouped["score"].max(),
            "peak_at": hits.loc[peak_rows, "timestamp"].to_numpy(),
            "basis": grouped["basis"].first(),
        }
    )
    return events.sort_values(["opened_at", "series"], kind="stable").reset_index(drop=True)[
        list(ALARM_COLUMNS)
    ]
