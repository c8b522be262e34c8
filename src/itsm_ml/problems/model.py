"""A recurrence model as the catalog trains, judges, registers and serves it (kind `recurrence`).

It is the problem-candidate detector of `problems` in params.yaml (representation, grouping
and the recurrence rule) with two things learned: the grouping threshold, the one of
`problems.tried` whose groups put validation's linked incidents (`label`, e.g. problem_id)
together best, and the text weights fitted on its training history. It is judged the way a
problem manager would judge it, on a period after its training: same-problem pairs grouped
together, the share of the period's problems a candidate raised and how early, and the
candidates per month to review. Its state, the groups open when training stopped, is part of
the model: the registered version places the next records where training left off.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.config import ProblemsParams
from itsm_ml.errors import SourceError
from itsm_ml.knowledge.embedding import StaticEmbedder
from itsm_ml.problems import detection
from itsm_ml.problems.evaluation import keyed, period_figures
from itsm_ml.problems.grouping import IncrementalGrouper
from itsm_ml.problems.representation import RepresentationSettings, record_vectors

# What the registered version takes: a ticket (or micro-record) as the ITSM has it at open.
INPUT_COLUMNS = (
    "ticket_id",
    "opened_at",
    "text",
    "caller",
    "service",
    "ci",
    "category",
    "subcategory",
    "symptom",
)


@dataclass(frozen=True)
class Judged:
    """A grouping of a history judged on one period of it."""

    figures: dict[str, float]
    grouped: detection.Grouped
    raised: pd.DataFrame


@dataclass
class RecurrenceModel:
    """The problem-candidate detector of one catalog entry, with its threshold and state."""

    label: str
    settings: ProblemsParams
    threshold_basis_: str = ""
    tried_: list[dict[str, float]] = field(default_factory=list)
    validation_: dict[str, float] = field(default_factory=dict)
    embedder_: StaticEmbedder | None = None
    grouper_: IncrementalGrouper | None = None
    raised_: list[str] = field(default_factory=list)
    last_seen_: pd.Timestamp | None = None

    @property
    def threshold(self) -> float:
        return self.settings.threshold

    def records(self, tickets: pd.DataFrame, micro_records: pd.DataFrame | None) -> pd.DataFrame:
        records = detection.combine(tickets, micro_records, self.label)
        if records.empty:
            raise SourceError("no ticket or micro-record has an open time to place it by")
        return records

    def _vectors(self, records: pd.DataFrame) -> tuple[np.ndarray, int]:
        return record_vectors(
            records, RepresentationSettings(fields=self.settings.fields), embedder=self.embedder_
        )

    def fit(
        self,
        tickets: pd.DataFrame,
        micro_records: pd.DataFrame | None,
        valid_start: pd.Timestamp,
    ) -> RecurrenceModel:
        """Fit the text weights on the history (`tickets`: train and validation, with the
        micro-records of the same span), choose the threshold on the records opened from
        `valid_start` (their problem links), and keep the groups open at the end."""
        records = self.records(tickets, micro_records)
        texts = records["text"].dropna().astype(str).tolist()
        self.embedder_ = StaticEmbedder().fit(texts) if texts else None
        vectors = self._vectors(records)
        tried = sorted({*self.settings.tried, self.settings.threshold})
        judged: dict[float, Judged] = {}
        for threshold in tried:
            settings = self.settings.model_copy(update={"threshold": threshold})
            judged[threshold] = _judge(records, settings, vectors, valid_start)
        self.tried_ = [{"threshold": t, **judged[t].figures} for t in tried]
        linked = any(j.figures["problems"] for j in judged.values())
        if linked:
            chosen = max(tried, key=lambda t: _preference(judged[t].figures, t, self.threshold))
            self.threshold_basis_ = (
                f"most of validation's {self.label.removeprefix('label_')} problems raised, then"
                f" the best pairwise F1, among {', '.join(f'{t:g}' for t in tried)}"
            )
        else:
            chosen = self.settings.threshold
            self.threshold_basis_ = (
                "problems.threshold (validation links no two records to one problem to choose by)"
            )
        self.settings = self.settings.model_copy(update={"threshold": chosen})
        self.validation_ = judged[chosen].figures
        grouper = detection.grouper_of(self.settings, vectors[1])
        grouper.add(records["record_id"].tolist(), records["opened_at"], vectors[0], records)
        self.grouper_ = grouper.compacted()
        self.raised_ = sorted(judged[chosen].raised["group"])
        self.last_seen_ = pd.Timestamp(records["opened_at"].max())
        return self

    def judge(
        self,
        tickets: pd.DataFrame,
        micro_records: pd.DataFrame | None,
        start: pd.Timestamp,
        end: pd.Timestamp | None = None,
    ) -> Judged:
        """The history (`tickets` and `micro_records`, its training span included) grouped
        and replayed with this model's settings, judged on the records opened in [start,
        end]: what its candidates would have been, with what was known then."""
        records = self.records(tickets, micro_records)
        return _judge(records, self.settings, self._vectors(records), start, end)

    def respond(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The recurring issue each record of `frame` joins, placed in time order after
        the groups open when training stopped (on a copy: the model does not move):
        `group`, whether the record founded it (`new_group`), and whether the group was
        already raised as a problem candidate. One row per record in input order; a record
        without an open time cannot be placed (no group)."""
        if self.grouper_ is None:
            raise SourceError("the recurrence model is not fitted")
        given = frame.reindex(columns=list(INPUT_COLUMNS))
        ids = given["ticket_id"].astype("string")
        if ids.isna().any() or ids.duplicated().any():
            raise SourceError("each record needs its own `ticket_id` to be answered by")
        records = detection.combine(given, None, self.label)
        grouper = copy.deepcopy(self.grouper_)
        before = set(grouper.groups)
        vectors, _ = self._vectors(records)
        if self.last_seen_ is not None and len(records):
            # A record from before the state's last one is placed as if it came just after.
            records = records.assign(opened_at=records["opened_at"].clip(lower=self.last_seen_))
        groups = grouper.add(records["record_id"].tolist(), records["opened_at"], vectors, records)
        raised = set(self.raised_)
        placed = pd.DataFrame(
            {
                "group": groups,
                "new_group": [g not in before for g in groups],
                "raised": [g in raised for g in groups],
            },
            index=pd.Index(records["record_id"].astype(str), name="ticket_id"),
        )
        return placed.reindex(ids.astype(str).to_numpy()).reset_index()

    def fresh(self) -> RecurrenceModel:
        return copy.deepcopy(self)

    def get_params(self) -> dict[str, Any]:
        rule = self.settings.rule
        return {
            "label": self.label,
            "threshold": self.threshold,
            "threshold_basis": self.threshold_basis_,
            "window_days": self.settings.window_days,
            "same": list(self.settings.same),
            "fields": list(self.settings.fields),
            "text_weight": self.settings.text_weight,
            "rule": f"{rule.min_records} records, {rule.min_callers} callers,"
            f" {rule.window_days:g} days, growth {rule.growth:g}",
            "check_every": self.settings.check_every,
        }


def _judge(
    records: pd.DataFrame,
    settings: ProblemsParams,
    vectors: tuple[np.ndarray, int],
    start: pd.Timestamp,
    end: pd.Timestamp | None = None,
) -> Judged:
    grouped = detection.group_records(records, settings, vectors=vectors)
    raised = detection.replay(grouped, settings)
    return Judged(period_figures(grouped, raised, start, end), grouped, raised)


def _preference(figures: dict[str, float], threshold: float, configured: float) -> tuple[Any, ...]:
    """More problems raised, then the best pairwise F1 of their links, fewer candidates to
    review, and the threshold nearest the configured one. Pairwise F1 alone would prefer the
    loosest threshold: only linked records are judged, so a group grown broad loses nothing."""
    share = figures["problems_raised_share"]
    return (
        share if share == share else -1.0,
        round(figures["pairwise_f1"], 6),
        -figures["candidates_per_month"],
        -abs(threshold - configured),
    )


def key_of(settings: ProblemsParams, records: pd.DataFrame) -> tuple[str, ...]:
    """The key baseline's columns this export has a value in (service when none)."""
    found = tuple(c for c in settings.baseline_key if c in records and records[c].notna().any())
    return found or ("service",)


def judge_key_baseline(
    settings: ProblemsParams,
    records: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp | None = None,
) -> tuple[tuple[str, ...], Judged]:
    """The key baseline on the same records and rule: a desk's grouping without a model."""
    key = key_of(settings, records)
    grouped = keyed(records, key, settings.window_days)
    raised = detection.replay(grouped, settings, like_before=False)
    return key, Judged(period_figures(grouped, raised, start, end), grouped, raised)


def first_time(frame: pd.DataFrame) -> pd.Timestamp:
    opened = pd.to_datetime(frame["opened_at"]).dropna()
    if opened.empty:
        raise SourceError("no record has an open time")
    return pd.Timestamp(opened.min())
