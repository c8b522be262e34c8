"""Everything the change-risk model sees, built from canonical changes at the moment of decision.

Per change: its own attributes (size, type, CI, ...), its planned window (lead time, length,
start hour and weekday), conflicts with other planned work, and track records of its team, CI
and service from outcomes known before it (features/history.py).

History and conflicts depend on other changes. The featurizer keeps the recent changes it was
fitted on as context, so a change scored alone later still sees the track records and the
calendar it would have seen in the training table.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from itsm_ml.change_risk.features.conflicts import (
    conflict_features,
    conflict_report,
    has_planned_windows,
    visible_pairs,
)
from itsm_ml.change_risk.features.context import ContextIndex, overlapping, track_records
from itsm_ml.change_risk.features.history import outcome_history
from itsm_ml.config import ConflictParams, HistoryParams

ID, TIME, OUTCOME = "change_id", "opened_at", "label_failed"


class HistorySettings(TypedDict):
    delay_days: float
    window_days: float
    volume_days: float
    prior_weight: float


def window_features(changes: pd.DataFrame) -> pd.DataFrame:
    """Lead time from request to start, window length, and when the window starts.

    In numpy, in the columns' own time unit as pandas' .dt accessors compute them (so the
    hours agree to the last bit): each accessor cost a tenth of a millisecond per call."""
    if not has_planned_windows(changes):
        return pd.DataFrame(index=changes.index)
    start = changes["planned_start"].to_numpy()
    missing = np.full(len(changes), np.datetime64("NaT"), dtype=start.dtype)
    opened = changes[TIME].to_numpy() if TIME in changes else missing
    end = changes["planned_end"].to_numpy() if "planned_end" in changes else missing
    hour = 3600.0
    minutes = _minutes_of_day(start)
    return pd.DataFrame(
        {
            "lead_hours": _seconds(start - opened) / hour,
            "window_hours": _seconds(end - start) / hour,
            "start_hour": minutes // 60 + (minutes % 60) / 60,
            "start_weekday": _weekday(start),
        },
        index=changes.index,
    )


def _seconds(spans: np.ndarray) -> np.ndarray:
    """Timedelta.total_seconds of each span (NaN for NaT): its count over units per second."""
    unit = np.datetime_data(spans.dtype)[0]
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    return np.where(np.isnat(spans), np.nan, spans.view(np.int64) / per_second)


def _minutes_of_day(instants: np.ndarray) -> np.ndarray:
    """Whole minutes since midnight (hour * 60 + minute), NaN for NaT."""
    days = instants.astype("datetime64[D]")
    minutes = (instants - days).astype("timedelta64[m]").view(np.int64).astype(float)
    return np.where(np.isnat(instants), np.nan, minutes)


def _weekday(instants: np.ndarray) -> np.ndarray:
    days = instants.astype("datetime64[D]").view(np.int64)
    return np.where(np.isnat(instants), np.nan, ((days + 3) % 7).astype(float))  # 1970-01-01: Thu


def _coerced(changes: pd.DataFrame) -> pd.DataFrame:
    """Times as timestamps and an outcome as booleans, whatever a caller sent (strings at
    serving time); a value that does not parse becomes missing."""
    frame = changes.copy()
    for column in (TIME, "planned_start", "planned_end"):
        if column in frame and not pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = pd.to_datetime(frame[column], errors="coerce", format="mixed")
    if OUTCOME in frame:
        frame[OUTCOME] = frame[OUTCOME].astype("boolean")
    return frame


class ChangeFeaturizer(BaseEstimator):  # type: ignore[misc]
    """Canonical changes -> model features (numeric and categorical columns), with context."""

    def __init__(
        self,
        *,
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        history: HistoryParams | None = None,
        conflicts: ConflictParams | None = None,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.history = history
        self.conflicts = conflicts

    def fit(self, changes: pd.DataFrame) -> ChangeFeaturizer:
        self.fit_transform(changes)
        return self

    def fit_transform(self, changes: pd.DataFrame) -> pd.DataFrame:
        """Learn which features the table supports and keep its recent changes as context."""
        changes = _coerced(changes)
        history = self.history or HistoryParams()
        self.history_keys_ = [k for k in history.keys if k in changes and changes[k].notna().any()]
        self.uses_windows_ = has_planned_windows(changes)
        features = self._derived(changes)
        self.numeric_ = [
            c for c in features if c not in self.categorical and features[c].notna().any()
        ]
        self.categorical_ = [c for c in self.categorical if c in changes]
        wanted = (
            ID, TIME, "planned_start", "planned_end", *self.numeric, *self.categorical,
            *self.history_keys_, *self._conflict_keys(changes),
        )  # fmt: skip
        self.input_columns_ = [c for c in dict.fromkeys(wanted) if c in changes]
        self.context_ = self._context(changes, history)
        return features[[*self.numeric_, *self.categorical_]]

    def _context(self, changes: pd.DataFrame, history: HistoryParams) -> pd.DataFrame:
        """The changes a later change can still be affected by: recent outcomes and windows."""
        keep = [c for c in (ID, TIME, "planned_start", "planned_end", OUTCOME) if c in changes]
        keys = dict.fromkeys([*self.history_keys_, *self._conflict_keys(changes)])
        keep += [c for c in keys if c not in keep]
        if TIME not in changes or changes[TIME].isna().all():
            return changes[keep].iloc[0:0]
        horizon = changes[TIME].max() - pd.Timedelta(days=history.window_days + history.delay_days)
        recent = changes[TIME] >= horizon
        if "planned_end" in changes:
            recent |= changes["planned_end"] >= changes[TIME].max()
        return changes.loc[recent, keep].reset_index(drop=True)

    def _conflict_keys(self, changes: pd.DataFrame) -> list[str]:
        rules = self.conflicts or ConflictParams()
        return [k for k in rules.keys if k in changes]

    def _derived(self, changes: pd.DataFrame, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Features of every row of `changes`, using only `changes` itself."""
        parts: list[pd.DataFrame] = [
            changes[[c for c in self.numeric if c in changes]].apply(pd.to_numeric, errors="coerce")
        ]
        if has_planned_windows(changes):
            parts.append(window_features(changes))
            parts.append(conflict_features(changes, self.conflicts or ConflictParams(), pairs))
        keys = [k for k in getattr(self, "history_keys_", []) if k in changes]
        if keys and TIME in changes:
            parts.append(outcome_history(changes, keys, **self._history_settings()))
        frame = pd.concat(parts, axis=1)
        for column in self.categorical:
            if column in changes:
                frame[column] = changes[column].astype("string")
        return frame

    def _history_settings(self) -> HistorySettings:
        """What the track records read from `history`, for both ways of computing them."""
        history = self.history or HistoryParams()
        return {
            "delay_days": history.delay_days,
            "window_days": history.window_days,
            "volume_days": history.volume_days,
            "prior_weight": history.prior_weight,
        }

    def _with_context(self, changes: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """`changes` after the context changes not among them, and where `changes` sit in it."""
        if not hasattr(self, "context_"):
            raise RuntimeError("ChangeFeaturizer is not fitted yet: call fit() first")
        changes = _coerced(changes.reset_index(drop=True))
        context = self.context_
        if ID in changes and len(context):
            context = context[~context[ID].isin(changes[ID].dropna())]
        union = pd.concat([context, changes], ignore_index=True)
        return union, np.arange(len(context), len(union))

    def transform(self, changes: pd.DataFrame) -> pd.DataFrame:
        if self._alone(changes):
            return self._one(changes)[0]
        union, rows = self._with_context(changes)
        return self._features_of(union, rows, changes.index)

    def _features_of(
        self,
        union: pd.DataFrame,
        rows: np.ndarray,
        index: pd.Index,
        pairs: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        return self._selected(self._derived(union, pairs).iloc[rows].copy(), index)

    def _selected(self, features: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
        for column in self.numeric_:
            if column not in features:
                features[column] = np.nan
        for column in self.categorical_:
            if column not in features:
                features[column] = pd.Series(pd.NA, index=features.index, dtype="string")
        return features[[*self.numeric_, *self.categorical_]].set_axis(index)

    def transform_with_conflicts(
        self, changes: pd.DataFrame
    ) -> tuple[pd.DataFrame, list[list[str]]]:
        """Features and the conflict report in one pass over the context (what scoring needs)."""
        if self._alone(changes):
            return self._one(changes)
        union, rows = self._with_context(changes)
        rules = self.conflicts or ConflictParams()
        pairs = visible_pairs(union, rules) if has_planned_windows(union) else None
        report = conflict_report(union, rules, rows=rows, pairs=pairs)
        return self._features_of(union, rows, changes.index, pairs), report

    # One change alone: the answer of the service's /v1/change-risk, from the context index.

    def _alone(self, changes: pd.DataFrame) -> bool:
        """One change, not itself in the context (re-scoring a context change replaces it
        there: the reference path handles that)."""
        if len(changes) != 1 or not hasattr(self, "context_"):
            return False
        if ID not in changes or pd.isna(changes[ID].iloc[0]):
            return True
        return str(changes[ID].iloc[0]) not in self._index().ids

    def _index(self) -> ContextIndex:
        if "_context_index" not in self.__dict__:
            self._context_index = ContextIndex(
                self.context_, self.history_keys_, self._conflict_keys(self.context_)
            )
        return self._context_index

    def __getstate__(self) -> dict[str, object]:
        state = dict(super().__getstate__())
        state.pop("_context_index", None)  # rebuilt from context_ on first use
        return state

    def _one(self, changes: pd.DataFrame) -> tuple[pd.DataFrame, list[list[str]]]:
        """`transform_with_conflicts` of one change, equal to the reference path's: row-local
        features by the same functions on the change's row, laid out with the context's
        columns; track records and overlaps from the index."""
        extra = [c for c in changes if c not in self.context_]
        one = _coerced(
            changes.reset_index(drop=True).reindex(columns=[*self.context_.columns, *extra])
        )
        row = one.iloc[0]
        index = self._index()
        rules = self.conflicts or ConflictParams()
        overlaps = {key: overlapping(index, row, key) for key in rules.keys if key in one}
        parts: list[pd.DataFrame] = [
            one[[c for c in self.numeric if c in one]].apply(pd.to_numeric, errors="coerce")
        ]
        if has_planned_windows(self.context_) or has_planned_windows(one):
            parts.append(window_features(one))
            counts = {key: np.array([len(rows)]) for key, rows in overlaps.items()}
            parts.append(conflict_features(one, rules, overlaps=counts, planned_windows=True))
        keys = [k for k in self.history_keys_ if k in one]
        if keys and TIME in one:
            records = track_records(index, row, keys, **self._history_settings())
            parts.append(pd.DataFrame([records], index=one.index))
        frame = pd.concat(parts, axis=1)
        for column in self.categorical:
            if column in one:
                frame[column] = one[column].astype("string")
        return self._selected(frame, changes.index), self._one_report(one, overlaps, rules)

    def _one_report(
        self, one: pd.DataFrame, overlaps: dict[str, np.ndarray], rules: ConflictParams
    ) -> list[list[str]]:
        """conflict_report on the change and the context rows it overlaps, in context order."""
        positions = sorted({int(p) for rows in overlaps.values() for p in rows})
        table = (
            pd.concat([self.context_.iloc[positions], one], ignore_index=True) if positions else one
        )
        where = {p: i for i, p in enumerate(positions)}
        last = len(table) - 1
        pairs = pd.DataFrame(
            [(last, where[int(p)], key) for key, rows in overlaps.items() for p in rows],
            columns=["row", "other", "key"],
        )
        return conflict_report(table, rules, rows=[last], pairs=pairs)
