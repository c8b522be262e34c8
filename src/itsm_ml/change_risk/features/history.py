"""Track records without leakage: how a team's (or a CI's) past changes went.

A change's outcome is not known when the change is made: it becomes known some time later
(an incident days after, a defect found weeks after). A history feature of change i may only
use outcomes of changes j whose outcome was known by the time i is scored:
``opened_at[j] + delay <= opened_at[i]``. Volumes (how many changes a team made recently) are
known at once, since a change exists from the moment it is opened. A change without an
outcome (still open, or being scored right now) counts in volumes and never in rates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DAY = np.timedelta64(1, "D")


def outcome_history(
    changes: pd.DataFrame,
    keys: Sequence[str],
    *,
    time_column: str = "opened_at",
    outcome_column: str = "label_failed",
    delay_days: float = 30.0,
    window_days: float = 180.0,
    volume_days: float = 30.0,
    prior_weight: float = 10.0,
) -> pd.DataFrame:
    """Per key: known past failure rate (smoothed), known past count, and recent volume.

    For each key k the result has `{k}_failure_rate`, `{k}_known_changes` and
    `{k}_recent_changes`. The rate is shrunk towards the overall rate known at that moment
    with weight `prior_weight`, so a team with two known changes is not scored 0% or 100%;
    it is missing (NaN) while no outcome at all is known yet. A change without a value of
    the key (or without a time) gets missing features for it.
    """
    dated = changes[changes[time_column].notna()]
    # A change without a time cannot be placed before or after anything: missing features.
    times = dated[time_column].to_numpy(dtype="datetime64[ns]")
    outcome = (
        dated[outcome_column]
        if outcome_column in dated
        else pd.Series(pd.NA, index=dated.index, dtype="boolean")
    )
    has_outcome = outcome.notna().to_numpy(dtype=float)
    failed = outcome.fillna(False).to_numpy(dtype=float)
    delay, window = delay_days * DAY, window_days * DAY
    features: dict[str, np.ndarray] = {}
    overall_count, overall_fail = _known(times, has_outcome, failed, times, delay, window)
    # Before any outcome is known there is no prior to shrink towards: the rate is missing
    # (an average over all rows would smuggle future outcomes into the earliest changes).
    prior = np.where(overall_count > 0, overall_fail / np.maximum(overall_count, 1), np.nan)
    for key in keys:
        count = np.full(len(dated), np.nan)
        fails = np.full(len(dated), np.nan)
        recent = np.full(len(dated), np.nan)
        # A change without a team (or CI) has no track record: missing, not one shared record.
        groups = dated[key].astype("string")
        for _, index in groups.groupby(groups, sort=False, dropna=True).indices.items():
            count[index], fails[index] = _known(
                times[index], has_outcome[index], failed[index], times[index], delay, window
            )
            recent[index] = _recent(times[index], volume_days * DAY)
        features[f"{key}_failure_rate"] = (fails + prior_weight * prior) / (count + prior_weight)
        features[f"{key}_known_changes"] = count
        features[f"{key}_recent_changes"] = recent
    return pd.DataFrame(features, index=dated.index).reindex(changes.index)


def _known(
    times: np.ndarray,
    has_outcome: np.ndarray,
    failed: np.ndarray,
    at: np.ndarray,
    delay: np.timedelta64,
    window: np.timedelta64,
) -> tuple[np.ndarray, np.ndarray]:
    """Changes whose outcome was known at each moment of `at`, within `window`, and their failures.

    Change j counts for moment t when its outcome was known (times[j] + delay <= t) and it is
    recent enough (times[j] >= t - window).
    """
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    outcomes = np.concatenate([[0.0], np.cumsum(has_outcome[order])])
    failures = np.concatenate([[0.0], np.cumsum(failed[order])])
    upto = np.searchsorted(sorted_times, at - delay, side="right")
    since = np.searchsorted(sorted_times, at - window, side="left")
    since = np.minimum(since, upto)
    return outcomes[upto] - outcomes[since], failures[upto] - failures[since]


def _recent(times: np.ndarray, span: np.timedelta64) -> np.ndarray:
    """How many other changes of the same key were opened in the `span` before each one."""
    sorted_times = np.sort(times)
    before = np.searchsorted(sorted_times, times, side="left")
    start = np.searchsorted(sorted_times, times - span, side="left")
    return (before - start).astype(float)
