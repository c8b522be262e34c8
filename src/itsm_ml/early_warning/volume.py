"""Incident volume as time series: tickets opened per hour for each value of a grouping
column (service, CI, category), so a surge on one service is a point the detectors judge
like any other metric.

Hours without a ticket count 0 (they are the quiet a surge stands out from), from the first
ticket of the table to its last. Values with too few tickets to have a rhythm are left out
and counted, not silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from itsm_ml.errors import ConfigError


@dataclass(frozen=True)
class Volume:
    points: pd.DataFrame  # series, timestamp, value
    skipped: dict[str, int]  # a value with too few tickets -> its tickets


def incident_volume(
    tickets: pd.DataFrame,
    by: str,
    *,
    time_column: str = "opened_at",
    frequency: str = "1h",
    min_tickets: int = 50,
) -> Volume:
    """Tickets per `frequency` per value of `by`, as metric points named `<by>=<value>`."""
    for column in (by, time_column):
        if column not in tickets.columns:
            raise ConfigError(
                f"incident volume: the tickets have no column {column!r} "
                f"(columns: {sorted(tickets.columns)[:12]}...)"
            )
    opened = pd.to_datetime(tickets[time_column])
    keep = opened.notna() & tickets[by].notna()
    frame = pd.DataFrame({"group": tickets.loc[keep, by].astype(str), "at": opened[keep]})
    sizes = frame.group.value_counts()
    small = sizes[sizes < min_tickets]
    frame = frame[~frame.group.isin(small.index)]
    if frame.empty:
        return Volume(pd.DataFrame(columns=["series", "timestamp", "value"]), small.to_dict())
    bins = frame["at"].dt.floor(frequency)
    hours = pd.date_range(bins.min(), bins.max(), freq=frequency)
    counts = (
        frame.assign(bin=bins)
        .groupby(["group", "bin"])
        .size()
        .unstack("group", fill_value=0)
        .reindex(hours, fill_value=0)
    )
    points = (
        counts.rename_axis(index="timestamp", columns="group").stack().rename("value").reset_index()
    )
    points.insert(0, "series", f"{by}=" + points.pop("group"))
    points["value"] = points["value"].astype(np.float64)
    points = points.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True)
    return Volume(
        points[["series", "timestamp", "value"]], {str(k): int(v) for k, v in small.items()}
    )
