"""Problem candidates from a desk's history: tickets and micro-records in one stream,
grouped as they arrive, and the groups the recurrence rule raises, with their evidence.

The history is replayed as it happened: records join groups in time order, and the rule is
applied at the end of every `check_every` period with what was known then (a problem link
counts from the time its ticket closed). A group is raised once, when it first meets the
rule: that is when the write-back would have opened its problem.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.config import ProblemsParams
from itsm_ml.errors import ItsmMlError
from itsm_ml.knowledge.embedding import StaticEmbedder
from itsm_ml.knowledge.lexical import words
from itsm_ml.problems.grouping import (
    GroupingSettings,
    IncrementalGrouper,
    blended_similarity,
    carry_ids,
)
from itsm_ml.problems.recurrence import RecurrenceRule, candidates
from itsm_ml.problems.representation import RepresentationSettings, record_vectors

TICKET, MICRO = "ticket", "micro-record"
PROBLEM_LABEL = "label_problem_id"  # the canonical problem link, when no model names another
RECORD_COLUMNS = (
    "record_id",
    "source",
    "opened_at",
    "known_at",  # when a problem link on it became known (a ticket's close)
    "caller",
    "service",
    "ci",
    "category",
    "subcategory",
    "symptom",
    "channel",
    "text",
    "resolution",
    "minutes_lost",
    "problem",
)


def combine(
    tickets: pd.DataFrame, micro_records: pd.DataFrame | None, label: str = PROBLEM_LABEL
) -> pd.DataFrame:
    """One frame of records in time order, `label` (the problem a ticket is linked to) as
    `problem`; records without an open time cannot be placed and are left out (the caller
    counts them)."""
    parts = [_as_records(tickets, "ticket_id", TICKET, label)]
    if micro_records is not None and len(micro_records):
        parts.append(_as_records(micro_records, "record_id", MICRO, label))
    records = pd.concat(parts, ignore_index=True)
    duplicated = records["record_id"][records["record_id"].duplicated()]
    if len(duplicated):
        raise ItsmMlError(
            "problems: tickets and micro-records share ids (e.g."
            f" {duplicated.head(3).tolist()}); give the micro-records' export its own ids"
        )
    records = records[records["opened_at"].notna()]
    return records.sort_values(["opened_at", "source", "record_id"], kind="stable").reset_index(
        drop=True
    )


def _as_records(frame: pd.DataFrame, id_column: str, source: str, label: str) -> pd.DataFrame:
    def column(name: str) -> pd.Series:
        return frame[name] if name in frame else pd.Series(pd.NA, index=frame.index)

    closed = column("closed_at") if source == TICKET else column("opened_at")
    if source == TICKET and "resolved_at" in frame:
        closed = closed.fillna(frame["resolved_at"])
    out = pd.DataFrame(
        {
            "record_id": frame[id_column].astype("string"),
            "source": source,
            "opened_at": pd.to_datetime(column("opened_at")),
            "known_at": pd.to_datetime(closed),
            **{
                name: column(name).astype("string")
                for name in ("caller", "service", "ci", "category", "subcategory", "symptom")
            },
            "channel": column("channel").astype("string"),
            "text": column("text").astype("string"),
            "resolution": column("label_resolution_notes").astype("string"),
            "minutes_lost": pd.to_numeric(column("minutes_lost"), errors="coerce"),
            "problem": column(label).astype("string"),
        }
    )
    return out[list(RECORD_COLUMNS)]


@dataclass(frozen=True)
class Grouped:
    records: pd.DataFrame  # RECORD_COLUMNS + group
    vectors: np.ndarray
    groups: dict[str, list[str]]
    text_dimensions: int


def group_records(
    records: pd.DataFrame,
    settings: ProblemsParams,
    embedder: StaticEmbedder | None = None,
    vectors: tuple[np.ndarray, int] | None = None,
) -> Grouped:
    """`records` grouped in time order; `vectors` (and their text block's width) when the
    caller computed them already, else computed with `embedder` (`record_vectors`)."""
    found, text_dimensions = vectors or record_vectors(
        records, RepresentationSettings(fields=settings.fields), embedder=embedder
    )
    grouper = grouper_of(settings, text_dimensions)
    assigned = grouper.add(records["record_id"].tolist(), records["opened_at"], found, records)
    return Grouped(records.assign(group=assigned), found, grouper.groups, text_dimensions)


def carried(grouped: Grouped, previous: Mapping[str, Sequence[str]]) -> Grouped:
    """`grouped` with each group under the id of the earlier group it mostly is
    (`grouping.carry_ids`), so what was recorded against an id stays attached to it."""
    kept = carry_ids(previous, grouped.groups)
    return Grouped(
        grouped.records.assign(group=grouped.records["group"].map(kept)),
        grouped.vectors,
        {kept[g]: members for g, members in grouped.groups.items()},
        grouped.text_dimensions,
    )


def grouper_of(settings: ProblemsParams, text_dimensions: int) -> IncrementalGrouper:
    return IncrementalGrouper(
        GroupingSettings(
            threshold=settings.threshold,
            window_days=settings.window_days,
            fields=settings.same,
            text_dimensions=text_dimensions,
            text_weight=settings.text_weight,
        )
    )


def rule_of(settings: ProblemsParams) -> RecurrenceRule:
    rule = settings.rule
    return RecurrenceRule(rule.min_records, rule.min_callers, rule.window_days, rule.growth)


def replay(result: Grouped, settings: ProblemsParams, *, like_before: bool = True) -> pd.DataFrame:
    """Every group the rule raised over the history: when first, and its figures then.
    `like_before`: growth is also judged on the records like the group, in its window and
    before it (`_like_now_and_before`), not only on its own; off, for groupings that have no
    similarity to ask (a baseline's keys or clusters)."""
    grouped = result.records
    columns = ["group", "raised_at", "records", "callers", "similar_before"]
    if grouped.empty:
        return pd.DataFrame(columns=columns)
    rule = rule_of(settings)
    window = pd.Timedelta(days=rule.window_days)
    first, last = grouped["opened_at"].min(), grouped["opened_at"].max()
    # Growth is judged against the windows before: until two of them exist before the one
    # judged, what is usual is one noisy fortnight, and everyday requests look new.
    checks = pd.date_range(first.floor("D"), last, freq=settings.check_every).append(
        pd.DatetimeIndex([last])
    )
    checks = checks[checks >= first + 3 * window].unique()
    frame = _for_the_rule(grouped)
    opened = frame["opened_at"].to_numpy()
    raised: dict[str, dict[str, Any]] = {}
    codes, names = pd.factorize(frame["group"])
    done = np.zeros(len(names), dtype=bool)  # raised already
    norms = _block_norms(result)
    for now in checks:
        start, end = np.searchsorted(
            opened, [(now - window).to_datetime64(), now.to_datetime64()], "right"
        )
        # Only groups with a record in the window can be raised; the rule reads all of
        # their past (records sorted by time, so the past is a prefix).
        wanted = np.zeros(len(names), dtype=bool)
        wanted[codes[start:end]] = True
        wanted &= ~done
        if not wanted.any():
            continue
        seen = frame.iloc[:end][wanted[codes[:end]]]
        linked = seen["problem"].where(seen["known_at"] <= now)
        found = candidates(seen.assign(linked=linked), rule, now, linked="linked")
        for row in found.itertuples(index=False):
            if like_before:
                members = np.flatnonzero(codes[:end] == names.get_loc(row.group))
                like_now, similar = _like_now_and_before(
                    frame, result, norms, members, now, window, settings
                )
                if like_now <= rule.growth * similar:
                    continue
            else:
                similar = float(row.usual_records)
            done[names.get_loc(row.group)] = True
            raised[row.group] = {
                "group": row.group,
                "raised_at": now,
                "records": int(row.records),
                "callers": int(row.callers),
                "similar_before": round(similar, 2),
            }
    return pd.DataFrame(list(raised.values()), columns=columns)


USUAL_WINDOWS = 6  # the windows before a group's own that say what is usual for its kind


def _block_norms(result: Grouped) -> np.ndarray:
    split = result.text_dimensions
    return np.stack(
        [
            np.linalg.norm(result.vectors[:, :split], axis=1),
            np.linalg.norm(result.vectors[:, split:], axis=1),
        ],
        axis=1,
    )


def _like_now_and_before(
    frame: pd.DataFrame,
    result: Grouped,
    norms: np.ndarray,
    members: np.ndarray,
    now: pd.Timestamp,
    window: pd.Timedelta,
    settings: ProblemsParams,
) -> tuple[int, float]:
    """Records like the group of `members` (positions of its records up to `now`; its centre,
    by the grouping's similarity and `same` fields)
    in its window, and per window before it: the larger of the window before and the average
    of the USUAL_WINDOWS before that one. Both counts use one yardstick, so an everyday
    stream spread over several groups, or whose group was founded anew, is as steady by it
    as it is; a new issue has nothing like it before."""
    start = now - window
    opened = frame["opened_at"].to_numpy()  # in time order (`combine`)
    centre = result.vectors[members].sum(axis=0)
    first, last = np.searchsorted(
        opened, [(start - USUAL_WINDOWS * window).to_datetime64(), now.to_datetime64()], "right"
    )
    span = frame.iloc[first:last]
    similarity = blended_similarity(
        result.vectors[first:last],
        centre,
        result.text_dimensions,
        settings.text_weight,
        norms[first:last],
    )
    like = similarity >= settings.threshold
    for column in settings.same:
        values = frame.iloc[members][column].dropna()
        if len(values):
            own = values.mode().iloc[0]
            like &= (span[column].isna() | (span[column] == own)).fillna(True).to_numpy()
    times = opened[first:last]
    inside = like & (times > start.to_datetime64())
    before = like & (times <= start.to_datetime64())
    previous = before & (times > (start - window).to_datetime64())
    windows = min(max((start - frame["opened_at"].iloc[0]) / window, 1.0), USUAL_WINDOWS)
    return int(inside.sum()), float(max(previous.sum(), before.sum() / windows))


def top_terms(texts: pd.Series, document_frequency: Counter[str], total: int, k: int) -> list[str]:
    """Words frequent in the group and rare overall (share of its records x idf)."""
    counts: Counter[str] = Counter()
    for text in texts.fillna(""):
        counts.update(set(words(str(text))))
    scored = {
        w: c / len(texts) * math.log((total + 1) / (document_frequency[w] + 1))
        for w, c in counts.items()
        if c >= 2 or len(texts) == 1
    }
    return [w for w, _ in sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:k]]


def evidence(
    result: Grouped, raised: pd.DataFrame, settings: ProblemsParams, now: pd.Timestamp
) -> list[dict[str, Any]]:
    """Each raised group with what a problem manager needs to judge it, ranked: groups still
    meeting the rule now first, then by records and callers."""
    records = result.records
    frame = _for_the_rule(records)
    frame["linked"] = frame["problem"].where(frame["known_at"] <= now)
    still = set(candidates(frame, rule_of(settings), now, "linked")["group"])
    frequency: Counter[str] = Counter()
    for text in records["text"].fillna(""):
        frequency.update(set(words(str(text))))
    out = []
    positions = pd.Series(np.arange(len(records)), index=records.index)
    for row in raised.itertuples(index=False):
        members = records[records["group"] == row.group]
        vectors = result.vectors[positions[members.index].to_numpy()]
        centre = vectors.sum(axis=0)
        closest = np.argsort(-(vectors @ centre), kind="stable")[: settings.representatives]
        micro = members["source"] == MICRO
        out.append(
            {
                "id": row.group,
                "active": row.group in still,
                "raised_at": _iso(row.raised_at),
                "records_when_raised": row.records,
                "callers_when_raised": row.callers,
                "records": len(members),
                "tickets": int((~micro).sum()),
                "micro_records": int(micro.sum()),
                "micro_share": round(float(micro.mean()), 3),
                "callers": int(members["caller"].nunique()),
                "minutes_lost": round(float(members["minutes_lost"].sum()), 1),
                "first_seen": _iso(members["opened_at"].min()),
                "last_seen": _iso(members["opened_at"].max()),
                "services": _counts(members["service"]),
                "cis": _counts(members["ci"]),
                "categories": _counts(members["category"]),
                "top_terms": top_terms(
                    members["text"], frequency, len(records), settings.top_terms
                ),
                "representatives": [_shown(members.iloc[int(i)]) for i in closest],
                "ticket_ids": members.loc[~micro, "record_id"].tolist(),
                "micro_record_ids": members.loc[micro, "record_id"].tolist(),
                "linked_problems": sorted(members["problem"].dropna().unique().tolist()),
            }
        )
    return sorted(out, key=lambda c: (not c["active"], -c["records"], -c["callers"], c["id"]))


def _for_the_rule(records: pd.DataFrame) -> pd.DataFrame:
    """The records as the rule reads them: a record whose caller is unknown counts as a
    caller of its own (never all as one)."""
    return records.assign(caller=records["caller"].fillna(records["record_id"]))


def _counts(values: pd.Series, top: int = 5) -> dict[str, int]:
    counted = values.dropna().value_counts().head(top)
    return {str(k): int(v) for k, v in counted.items()}


def _shown(record: pd.Series) -> dict[str, Any]:
    return {
        "id": record["record_id"],
        "source": record["source"],
        "opened_at": _iso(record["opened_at"]),
        "service": None if pd.isna(record["service"]) else str(record["service"]),
        "text": None if pd.isna(record["text"]) else str(record["text"])[:500],
        "resolution": None if pd.isna(record["resolution"]) else str(record["resolution"])[:500],
    }


def _iso(moment: Any) -> str | None:
    return None if pd.isna(moment) else pd.Timestamp(moment).isoformat()
