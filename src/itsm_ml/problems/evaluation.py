"""How well a grouping and its raised candidates find problems the desk recorded: pairwise
precision and recall on the records linked to a problem, which problems a candidate raised
and how early, the review load; and the key baseline a desk would build without us.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from itsm_ml.problems.detection import Grouped
from itsm_ml.problems.grouping import GroupingSettings, IncrementalGrouper


def pairwise(truth: pd.Series, groups: pd.Series) -> tuple[float, float, float]:
    """Precision, recall and F1 of same-group pairs among the labelled records (`truth`:
    the problem of each labelled record; `groups`: the group of every record, same index)."""
    expected = _pairs(truth)
    found = _pairs(groups.loc[truth.index])
    hits = len(expected & found)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def _pairs(labels: pd.Series) -> set[tuple[object, object]]:
    out: set[tuple[object, object]] = set()
    for _, members in labels.groupby(labels):
        out.update(combinations(sorted(members.index), 2))
    return out


def raised_problems(grouped: Grouped, raised: pd.DataFrame) -> pd.DataFrame:
    """Per problem of two or more records: whether a raised group holds two of them, and how
    many days after the problem's first record (the raise, or the second record of it in
    that group, whichever is later: a group raised for something else does not find a
    problem before the problem has recurred in it)."""
    records = grouped.records
    linked = records[records["problem"].notna()]
    sizes = linked["problem"].value_counts()
    when = raised.set_index("group")["raised_at"]
    rows = []
    for problem in sizes[sizes >= 2].index:
        incidents = linked[linked["problem"] == problem]
        first = incidents["opened_at"].min()
        best = None
        for group, members in incidents.groupby("group"):
            if len(members) < 2 or group not in when.index:
                continue
            at = max(when[group], members["opened_at"].sort_values().iloc[1])
            best = at if best is None else min(best, at)
        rows.append(
            {
                "problem": problem,
                "raised": best is not None,
                "days": (best - first) / pd.Timedelta(days=1) if best is not None else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["problem", "raised", "days"])


def per_month(grouped: Grouped, raised: pd.DataFrame) -> float:
    """Candidates raised per month of history: what a problem manager reviews."""
    opened = grouped.records["opened_at"]
    months = max((opened.max() - opened.min()) / pd.Timedelta(days=30.44), 1.0)
    return float(len(raised) / months)


def keyed(records: pd.DataFrame, key: tuple[str, ...], window_days: float) -> Grouped:
    """The key baseline: a record joins the open group of its key (a missing value is a value
    of its own), a group closing after `window_days` without a record."""
    frame = records.assign(**{c: records[c].fillna("(none)") for c in key})
    grouper = IncrementalGrouper(
        GroupingSettings(threshold=0.0, window_days=window_days, fields=key)
    )
    ones = np.ones((len(frame), 1))
    assigned = grouper.add(frame["record_id"].tolist(), frame["opened_at"], ones, frame)
    return Grouped(records.assign(group=assigned), ones, grouper.groups, 1)


def period_figures(
    grouped: Grouped, raised: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp | None = None
) -> dict[str, float]:
    """A grouping of the whole history judged on the records opened in [start, end]: pairwise
    precision and recall among the period's linked records, the share of its problems (two
    or more linked records in it) a raised group found and how many days after their first
    record there, and the candidates raised in it per month."""
    records = grouped.records
    opened = records["opened_at"]
    end = opened.max() if end is None else end
    inside = records[(opened >= start) & (opened <= end)]
    labelled = inside[inside["problem"].notna()]
    precision, recall, f1 = pairwise(labelled["problem"], records["group"])
    found = raised_problems(Grouped(inside, grouped.vectors, grouped.groups, 1), raised)
    when = pd.to_datetime(raised["raised_at"]).astype("datetime64[ns]")
    in_period = int(((when >= start) & (when <= end)).sum())
    months = max((end - start) / pd.Timedelta(days=30.44), 1 / 30.44)
    problems = len(found)
    return {
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f1": f1,
        "problems": problems,
        "problems_raised": int(found["raised"].sum()),
        "problems_raised_share": float(found["raised"].mean()) if problems else float("nan"),
        "median_days_to_raise": float(found["days"].median())
        if found["raised"].any()
        else float("nan"),
        "candidates": in_period,
        "candidates_per_month": in_period / months,
        "linked_records": len(labelled),
        "records": len(inside),
    }
