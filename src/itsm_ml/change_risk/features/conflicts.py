"""Conflicts of a planned change with other planned work, blackout windows and business hours.

Two changes conflict when their planned windows overlap on the same CI (or service). A change
sees only the changes already on the calendar when it is about to be implemented, that is those
requested before its planned start: the same rule holds in training and at scoring time, so the
model never learns from conflicts that nobody could have seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from itsm_ml.config import BlackoutWindow, BusinessHours, ConflictParams

_NS_PER_S = 1_000_000_000
_MAX_LISTED = 5


def overlapping_pairs(changes: pd.DataFrame, key: str) -> pd.DataFrame:
    """Row positions (`a`, `b`, a != b) of changes whose windows overlap on the same `key` value.

    Each unordered pair appears once. Windows are half-open [start, end): a change ending at
    22:00 does not overlap one starting at 22:00; a window without a positive length overlaps
    nothing.
    """
    empty = pd.DataFrame({"a": np.array([], dtype=np.int64), "b": np.array([], dtype=np.int64)})
    if key not in changes or not {"planned_start", "planned_end"} <= set(changes):
        return empty
    start = changes["planned_start"]
    end = changes["planned_end"]
    usable = (start.notna() & end.notna() & changes[key].notna() & (end > start)).to_numpy()
    if usable.sum() < 2:
        return empty
    positions = np.flatnonzero(usable)
    codes = pd.factorize(changes[key].to_numpy()[usable])[0].astype(np.int64)
    start_s = start.to_numpy(dtype="datetime64[ns]")[usable].astype(np.int64) // _NS_PER_S
    end_s = end.to_numpy(dtype="datetime64[ns]")[usable].astype(np.int64) // _NS_PER_S
    origin = start_s.min()
    span = int(max(end_s.max(), start_s.max()) - origin + 1)
    # One sorted axis for all groups: group code first, then the start within the group.
    start_key = codes * span + (start_s - origin)
    order = np.argsort(start_key, kind="stable")
    sorted_key = start_key[order]
    end_key = (codes * span + (end_s - origin))[order]
    # Partners of the change at sorted position p: the later-starting changes p+1 .. upto-1 of
    # the same group that start before it ends (start >= its start, so they overlap it).
    upto = np.searchsorted(sorted_key, end_key, side="left")
    counts = np.maximum(upto - np.arange(len(order)) - 1, 0)
    first = np.repeat(np.arange(len(order)), counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + step
    return pd.DataFrame({"a": positions[order[first]], "b": positions[order[second]]})


def _visible_pairs(changes: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Directed pairs (`row` sees `other`) per key: `other` was requested by `row`'s start."""
    opened = changes["opened_at"] if "opened_at" in changes else pd.Series(pd.NaT, changes.index)
    opened_ns = opened.to_numpy(dtype="datetime64[ns]")
    start_ns = changes["planned_start"].to_numpy(dtype="datetime64[ns]")
    found = []
    for key in keys:
        pairs = overlapping_pairs(changes, key)
        directed = pd.DataFrame(
            {
                "row": np.concatenate([pairs.a, pairs.b]),
                "other": np.concatenate([pairs.b, pairs.a]),
            }
        )
        requested = opened_ns[directed.other]
        # A change with no request time is taken as already on the calendar.
        seen = np.isnat(requested) | (requested <= start_ns[directed.row])
        found.append(directed[seen].assign(key=key))
    if not found:
        return pd.DataFrame({"row": [], "other": [], "key": []})
    return pd.concat(found, ignore_index=True)


def _in_blackout(changes: pd.DataFrame, windows: Sequence[BlackoutWindow]) -> pd.DataFrame:
    """One boolean column per blackout window: the planned window intersects it."""
    start = _instants(changes["planned_start"])
    end = _instants(changes["planned_end"]) if "planned_end" in changes else start
    return pd.DataFrame(_blackout_hits(start, end, windows), index=changes.index, dtype=bool)


def _blackout_hits(
    start: np.ndarray, end: np.ndarray, windows: Sequence[BlackoutWindow]
) -> dict[str, np.ndarray]:
    end = np.where(end > start, end, start)  # NaT compares False: the start instant
    hits = {}
    for window in windows:
        begins, ends = _instant(window.start), _instant(window.end)
        # Half-open windows; a change without an end is taken at its start instant; a change
        # without a start is in none (NaT compares False).
        hits[window.name] = (start < ends) & ((end > begins) | (start >= begins))
    return hits


def _outside_business_hours(start: pd.Series, hours: BusinessHours) -> pd.Series:
    return pd.Series(_off_hours(_instants(start), hours), index=start.index)


def _off_hours(instants: np.ndarray, hours: BusinessHours) -> np.ndarray:
    """1.0 outside business hours, 0.0 inside, NaN without a start. In numpy: pandas' .dt
    accessors cost a tenth of a millisecond each, most of the time of scoring one change."""
    missing = np.isnat(instants)
    days = instants.astype("datetime64[D]")
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    minute = (instants - days).astype("timedelta64[m]").astype(np.int64)
    opens = hours.start.hour * 60 + hours.start.minute
    closes = hours.end.hour * 60 + hours.end.minute
    inside = np.isin(weekday, list(hours.weekdays)) & (minute >= opens) & (minute < closes)
    return np.where(missing, np.nan, (~inside).astype(float))


def _instants(values: pd.Series) -> np.ndarray:
    return np.asarray(values.to_numpy(dtype="datetime64[ns]"))


def _instant(moment: object) -> np.datetime64:
    return np.datetime64(pd.Timestamp(moment).as_unit("ns").to_datetime64(), "ns")


def has_planned_windows(changes: pd.DataFrame) -> bool:
    return "planned_start" in changes and bool(changes["planned_start"].notna().any())


def visible_pairs(changes: pd.DataFrame, rules: ConflictParams) -> pd.DataFrame:
    """Every (row, other, key) where `row` sees `other` overlap it on `key`: computed once,
    it serves both the features and the report of a batch."""
    return _visible_pairs(changes, [key for key in rules.keys if key in changes])


def conflict_features(
    changes: pd.DataFrame,
    rules: ConflictParams,
    pairs: pd.DataFrame | None = None,
    *,
    overlaps: dict[str, np.ndarray] | None = None,
    planned_windows: bool | None = None,
) -> pd.DataFrame:
    """Per change: overlapping changes seen per key, blackout and off-hours flags (0/1).

    All missing (NaN) for a change without a planned start; an empty frame for a table
    without planned windows. `overlaps`: the counts per key, already known (one change
    scored against an indexed context); `planned_windows`: whether the table they come from
    has planned windows, when `changes` is only part of it.
    """
    if not (has_planned_windows(changes) if planned_windows is None else planned_windows):
        return pd.DataFrame(index=changes.index)
    planned = changes["planned_start"].notna()
    keys = [key for key in rules.keys if key in changes]
    if overlaps is None:
        pairs = visible_pairs(changes, rules) if pairs is None else pairs
    features = {}
    for key in keys:
        if overlaps is not None:
            counts = np.asarray(overlaps[key], dtype=float)
        else:
            assert pairs is not None
            rows = pairs.loc[pairs.key == key, "row"].to_numpy(dtype=np.int64)
            counts = np.bincount(rows, minlength=len(changes)).astype(float)
        features[f"overlapping_changes_same_{key}"] = np.where(planned, counts, np.nan)
    blackout = _in_blackout(changes, rules.blackout_windows)
    features["in_blackout_window"] = np.where(
        planned, blackout.any(axis=1).to_numpy(dtype=float), np.nan
    )
    features["outside_business_hours"] = _outside_business_hours(
        changes["planned_start"], rules.business_hours
    ).to_numpy()
    return pd.DataFrame(features, index=changes.index)


def conflict_report(
    changes: pd.DataFrame,
    rules: ConflictParams,
    rows: Sequence[int] | np.ndarray | None = None,
    pairs: pd.DataFrame | None = None,
) -> list[list[str]]:
    """Per change, the conflicts a change manager reads: what overlaps, where and when.

    `rows`: positions of the changes to report on (all by default); the others still count as
    the calendar they may conflict with.
    """
    wanted = np.arange(len(changes)) if rows is None else np.asarray(rows, dtype=np.int64)
    report: dict[int, list[str]] = {int(row): [] for row in wanted}
    if not has_planned_windows(changes):
        return [report[int(row)] for row in wanted]
    keys = [key for key in rules.keys if key in changes]
    pairs = visible_pairs(changes, rules) if pairs is None else pairs
    # In numpy, not pandas: on one change its cost per operation was most of the report's.
    row_of = pairs["row"].to_numpy(dtype=np.int64)
    kept = np.isin(row_of, wanted)
    row_of = row_of[kept]
    other_of = pairs["other"].to_numpy(dtype=np.int64)[kept]
    key_of = pairs["key"].to_numpy(dtype=object)[kept]
    order = np.lexsort((other_of, row_of))  # stable: a pair's keys stay in their order
    start = changes["planned_start"]
    end = changes.get("planned_end", start)
    by_row: dict[tuple[int, int], list[str]] = {}
    for row, other, key in zip(row_of[order], other_of[order], key_of[order], strict=True):
        by_row.setdefault((int(row), int(other)), []).append(key)
    if by_row:
        ids = (
            changes["change_id"].astype("string").fillna("?").to_numpy(dtype=object)
            if "change_id" in changes
            else np.array([f"row {i}" for i in range(len(changes))], dtype=object)
        )
        values = {key: changes[key].to_numpy(dtype=object) for key in keys}
        starts, ends = start.array, end.array
        for (row, other), shared in by_row.items():
            where = ", ".join(f"{key} {values[key][other]}" for key in shared)
            report[row].append(
                f"overlaps {ids[other]} on {where} ({_when(starts[other])} to {_when(ends[other])})"
            )
    for row, entries in report.items():
        if len(entries) > _MAX_LISTED:
            report[row] = [*entries[:_MAX_LISTED], f"and {len(entries) - _MAX_LISTED} more"]
    starts_wanted = _instants(start)[wanted]
    ends_wanted = _instants(end)[wanted]
    windows = {window.name: window for window in rules.blackout_windows}
    for name, hits in _blackout_hits(starts_wanted, ends_wanted, rules.blackout_windows).items():
        window = windows[name]
        for position in np.flatnonzero(hits):
            report[int(wanted[position])].append(
                f"inside blackout window '{name}' ({_when(pd.Timestamp(window.start))} "
                f"to {_when(pd.Timestamp(window.end))})"
            )
    outside = _off_hours(starts_wanted, rules.business_hours)
    for position in np.flatnonzero(outside == 1):
        row = int(wanted[position])
        report[row].append(f"starts outside business hours ({_when(start.iloc[row])})")
    return [report[int(row)] for row in wanted]


def _when(moment: object) -> str:
    if not isinstance(moment, pd.Timestamp) or pd.isna(moment):
        return "?"
    return f"{moment:%a %Y-%m-%d %H:%M}"
