"""Recurring issues: records grouped as they arrive, each group keeping its id as it grows.

A record (a ticket or a fix made outside the desk) joins the most similar group still open,
one seen within the last `window_days`, that shares its grouping fields (service, CI, ...);
when no open group is similar enough (`threshold`, cosine of the text vectors against the
group's mean), it founds a group of its own. Time only moves forward and nothing is
re-clustered, so a group found yesterday is the same group today, with more members.

A group's id is a digest of the record that founded it: the same history grouped the same
way gives the same ids. Grouping it again with another threshold founds some groups on other
records (two groups merge, or one splits); `carry_ids` gives each new group the id of the
earlier group it mostly is, so candidates, decisions and links recorded against an id
survive a threshold change instead of being wiped (the complaint about BMC's correlation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from itsm_ml.errors import ItsmMlError

ID_PREFIX = "RI-"  # a recurring issue


@dataclass(frozen=True)
class GroupingSettings:
    threshold: float = 0.75  # cosine of a record's vector against a group's mean to join it
    window_days: float = 14.0  # a group not seen for longer is closed: a new record founds anew
    fields: tuple[str, ...] = ("service",)  # values a record and its group must share


@dataclass
class _Group:
    id: str
    key: tuple[str, ...]
    total: np.ndarray  # sum of the members' unit vectors; its direction is the group's mean
    last_seen: np.datetime64
    members: list[str] = field(default_factory=list)


def group_id(founder: str) -> str:
    return ID_PREFIX + hashlib.sha256(founder.encode()).hexdigest()[:10]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(
        vectors, norms, out=np.zeros_like(vectors, dtype=float), where=norms > 0
    )
    return unit


class IncrementalGrouper:
    """Groups records in time order; `add` may be called again with later records."""

    def __init__(self, settings: GroupingSettings | None = None) -> None:
        self.settings = settings or GroupingSettings()
        self._open: list[_Group] = []
        self.groups: dict[str, list[str]] = {}  # group id -> member record ids, every group
        self._last_time: np.datetime64 | None = None

    def add(
        self, ids: Sequence[str], times: pd.Series, vectors: np.ndarray, keys: pd.DataFrame
    ) -> list[str]:
        """The group of each record; `keys` holds the grouping fields (a missing value matches
        any). Records must not be earlier than those already added."""
        if not (len(ids) == len(times) == len(vectors) == len(keys)):
            raise ItsmMlError("grouping: ids, times, vectors and keys must have one row per record")
        moments = pd.to_datetime(pd.Series(times)).to_numpy("datetime64[ns]")
        if len(moments) and (np.diff(moments) < np.timedelta64(0)).any():
            raise ItsmMlError("grouping: records must come in time order (sort by time first)")
        if len(moments) and self._last_time is not None and moments[0] < self._last_time:
            raise ItsmMlError(
                f"grouping: a record at {pd.Timestamp(moments[0])} is earlier than the last one"
                f" grouped ({pd.Timestamp(self._last_time)}); groups only move forward"
            )
        unit = _unit(np.asarray(vectors, dtype=float))
        # Column by column: a frame without grouping fields has rows but no tuples to iterate.
        fields = keys.reindex(columns=list(self.settings.fields)).astype(object)
        columns = [["" if pd.isna(v) else str(v) for v in fields[c]] for c in fields.columns]
        values = [tuple(column[i] for column in columns) for i in range(len(keys))]
        window = np.timedelta64(int(self.settings.window_days * 86_400), "s")
        assigned = []
        for record, moment, vector, key in zip(ids, moments, unit, values, strict=True):
            self._open = [g for g in self._open if moment - g.last_seen <= window]
            best, best_score = None, self.settings.threshold
            for group in self._open:
                if not _compatible(group.key, key):
                    continue
                score = float(vector @ group.total) / max(float(np.linalg.norm(group.total)), 1e-12)
                if score >= best_score:
                    best, best_score = group, score
            if best is None:
                best = _Group(group_id(str(record)), key, np.zeros_like(vector), moment)
                self._open.append(best)
                self.groups[best.id] = best.members
            best.total = best.total + vector
            best.last_seen = moment
            best.key = tuple(a or b for a, b in zip(best.key, key, strict=True))
            best.members.append(str(record))
            assigned.append(best.id)
            self._last_time = moment
        return assigned


def _compatible(group: tuple[str, ...], record: tuple[str, ...]) -> bool:
    return all(not a or not b or a == b for a, b in zip(group, record, strict=True))


def carry_ids(
    previous: Mapping[str, Sequence[str]], current: Mapping[str, Sequence[str]], share: float = 0.5
) -> dict[str, str]:
    """For each current group, the id it keeps: the earlier group holding most of its members
    when that is at least `share` of them, each earlier id passed on once (to the current
    group holding most of the earlier one); otherwise its own id."""
    owner = {member: gid for gid, members in previous.items() for member in members}
    overlaps = []
    for gid, members in current.items():
        counts = pd.Series([owner[m] for m in members if m in owner], dtype=object).value_counts()
        for earlier, count in counts.items():
            if count >= share * len(members):
                overlaps.append((int(count), gid, str(earlier)))
    kept: dict[str, str] = {}
    taken: set[str] = set()
    for _, gid, earlier in sorted(overlaps, key=lambda o: (-o[0], o[1], o[2])):
        if gid not in kept and earlier not in taken:
            kept[gid] = earlier
            taken.add(earlier)
    # A group founded by the record that founded an earlier group, whose id went to the group
    # holding most of that earlier one, takes an id of its own members instead.
    return {
        gid: kept.get(gid, gid if gid not in taken else group_id("|".join(sorted(members))))
        for gid, members in current.items()
    }
