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

import copy
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from itsm_ml.errors import ItsmMlError

ID_PREFIX = "RI-"  # a recurring issue


@dataclass(frozen=True)
class GroupingSettings:
    threshold: float = 0.75  # similarity of a record to a group's mean to join it
    window_days: float = 14.0  # a group not seen for longer is closed: a new record founds anew
    fields: tuple[str, ...] = ("service",)  # values a record and its group must share
    # Vectors may come in two blocks, text then field values (`representation`): the first
    # `text_dimensions` columns are compared apart from the rest, and a record's similarity is
    # `text_weight` x the text cosine + the rest x the field cosine where both sides have
    # both blocks, else the cosine of the block they share (a chat assistant's record with no
    # field value is judged on its words, not marked down for the fields it lacks).
    text_dimensions: int | None = None
    text_weight: float = 1.0


def group_id(founder: str) -> str:
    return ID_PREFIX + hashlib.sha256(founder.encode()).hexdigest()[:10]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    unit: np.ndarray = np.divide(
        vectors, norms, out=np.zeros_like(vectors, dtype=float), where=norms > 0
    )
    return unit


def blended_similarity(
    many: np.ndarray,
    one: np.ndarray,
    split: int,
    text_weight: float,
    norms: np.ndarray | None = None,
) -> np.ndarray:
    """The similarity of each row of `many` (sums of vectors: groups, or single records) to
    `one`: the text cosine (first `split` columns) and the field cosine (the rest), weighted
    where both sides have both blocks, else the block they share; 0 when they share none.
    `norms`: each row's block norms, when the caller keeps them."""
    if norms is None:
        norms = np.stack(
            [np.linalg.norm(many[:, :split], axis=1), np.linalg.norm(many[:, split:], axis=1)],
            axis=1,
        )
    own = np.array([np.linalg.norm(one[:split]), np.linalg.norm(one[split:])])
    text = (many[:, :split] @ one[:split]) / np.maximum(norms[:, 0] * own[0], 1e-12)
    fields = (many[:, split:] @ one[split:]) / np.maximum(norms[:, 1] * own[1], 1e-12)
    has_text, has_fields = (norms[:, 0] > 0) & (own[0] > 0), (norms[:, 1] > 0) & (own[1] > 0)
    both = text_weight * text + (1 - text_weight) * fields
    scores: np.ndarray = np.where(
        has_text & has_fields, both, np.where(has_text, text, np.where(has_fields, fields, 0.0))
    )
    return scores


class IncrementalGrouper:
    """Groups records in time order; `add` may be called again with later records.

    The open groups sit in the first rows of one matrix of member-vector sums, so a record is
    scored against all of them in one product; a group that closes swaps places with the last
    open one. Closed groups are never scored again, which bounds the work by the window."""

    def __init__(self, settings: GroupingSettings | None = None) -> None:
        self.settings = settings or GroupingSettings()
        self.groups: dict[str, list[str]] = {}  # group id -> member record ids, every group
        self._last_time: np.datetime64 | None = None
        self._open = 0
        self._totals = np.zeros((0, 0))
        self._norms = np.zeros((0, 2))  # of each block of the members' sum
        self._seen = np.zeros(0, dtype="datetime64[ns]")
        self._keys = np.zeros((0, len(self.settings.fields)), dtype=object)
        self._ids: list[str] = []

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
        unit = self._blocks(np.asarray(vectors, dtype=float))
        if self._totals.shape[1] != unit.shape[1]:
            if self._ids:
                raise ItsmMlError(
                    f"grouping: vectors of {unit.shape[1]} dimensions, earlier ones had"
                    f" {self._totals.shape[1]}"
                )
            self._totals = np.zeros((0, unit.shape[1]))
        # Column by column: a frame without grouping fields has rows but no tuples to iterate.
        fields = keys.reindex(columns=list(self.settings.fields)).astype(object)
        values = np.array(
            [["" if pd.isna(v) else str(v) for v in fields[c]] for c in fields.columns],
            dtype=object,
        ).T.reshape(len(keys), len(self.settings.fields))
        window = np.timedelta64(int(self.settings.window_days * 86_400), "s")
        assigned = []
        for record, moment, vector, key in zip(ids, moments, unit, values, strict=True):
            self._close(moment - window)
            row = self._best(vector, key)
            if row is None:
                row = self._found(str(record), key)
            self._totals[row] += vector
            self._norms[row] = self._block_norms(self._totals[row])
            self._seen[row] = moment
            known = self._keys[row]
            self._keys[row] = np.where(known == "", key, known)
            self.groups[self._ids[row]].append(str(record))
            assigned.append(self._ids[row])
            self._last_time = moment
        return assigned

    def compacted(self) -> IncrementalGrouper:
        """A copy holding only the open groups: all that grouping later records needs (a
        closed group is never scored again), at a size fit to ship inside a model."""
        out = copy.copy(self)
        n = self._open
        out._totals, out._norms = self._totals[:n].copy(), self._norms[:n].copy()
        out._seen, out._keys = self._seen[:n].copy(), self._keys[:n].copy()
        out._ids = self._ids[:n]
        out.groups = {gid: list(self.groups[gid]) for gid in out._ids}
        return out

    def _close(self, cutoff: np.datetime64) -> None:
        for row in np.flatnonzero(self._seen[: self._open] < cutoff)[::-1]:
            # From the last stale row down, each swaps with the last open one, which is
            # either fresh or already moved past the open block.
            self._open -= 1
            self._swap(int(row), self._open)

    def _swap(self, a: int, b: int) -> None:
        if a == b:
            return
        for array in (self._totals, self._norms, self._seen, self._keys):
            array[[a, b]] = array[[b, a]]
        self._ids[a], self._ids[b] = self._ids[b], self._ids[a]

    def _split(self, width: int | None = None) -> int:
        """Where the text block ends: `text_dimensions`, or every column (one block)."""
        if self.settings.text_dimensions is not None:
            return self.settings.text_dimensions
        return self._totals.shape[1] if width is None else width

    def _blocks(self, vectors: np.ndarray) -> np.ndarray:
        """Each block of each vector scaled to unit length (a zero block stays zero)."""
        split = self._split(vectors.shape[1])
        return np.hstack([_unit(vectors[:, :split]), _unit(vectors[:, split:])])

    def _block_norms(self, vector: np.ndarray) -> np.ndarray:
        split = self._split()
        return np.array([np.linalg.norm(vector[:split]), np.linalg.norm(vector[split:])])

    def _best(self, vector: np.ndarray, key: np.ndarray) -> int | None:
        if not self._open:
            return None
        keys = self._keys[: self._open]
        fits = ((keys == "") | (key == "") | (keys == key)).all(axis=1)
        scores = blended_similarity(
            self._totals[: self._open],
            vector,
            self._split(),
            self.settings.text_weight,
            self._norms[: self._open],
        )
        scores = np.where(fits, scores, -np.inf)
        # The first of equals: a tie goes to the group opened (or re-ordered) earliest.
        best = int(np.argmax(scores))
        return best if scores[best] >= self.settings.threshold else None

    def _found(self, founder: str, key: np.ndarray) -> int:
        if len(self._ids) == len(self._totals):
            grow = max(16, len(self._totals))
            self._totals = np.vstack([self._totals, np.zeros((grow, self._totals.shape[1]))])
            self._norms = np.vstack([self._norms, np.zeros((grow, 2))])
            self._seen = np.concatenate([self._seen, np.zeros(grow, dtype="datetime64[ns]")])
            self._keys = np.vstack(
                [self._keys, np.full((grow, self._keys.shape[1]), "", dtype=object)]
            )
        # Closed groups keep their rows after the open ones; the new group takes the first
        # closed row's place and that group moves to the end (it is never scored again).
        new = len(self._ids)
        self._ids.append(group_id(founder))
        self._totals[new] = 0.0
        self._keys[new] = key
        self._swap(self._open, new)
        self._open += 1
        self.groups[self._ids[self._open - 1]] = []
        return self._open - 1


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
