"""The problem managers' decisions as labels for the rule: `itsm-ml problems --tune`.

Each candidate written back was accepted, rejected or is pending (`--read-decisions`). Every
setting of a small grid (the thresholds of `problems.tried` and the growths of
`problems.tried_growth`) replays the history again; its groups take the ids of the last run's
groups they mostly are (`grouping.carry_ids`), so a group it raises is recognised as the
candidate a person already decided on. Per setting: the accepted candidates it still raises,
the rejected ones it still raises, its precision among them, and its review load. The best
keeps the most accepted candidates net of rejected ones, then the lightest load; the command
prints the params edit, for a person to make (a setting is a reviewed change, not a side
effect of reading an ITSM).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from itsm_ml.config import ProblemsParams
from itsm_ml.problems import detection
from itsm_ml.problems.evaluation import per_month
from itsm_ml.problems.representation import RepresentationSettings, record_vectors

MIN_DECIDED = 5  # fewer decisions than this: a suggestion says it stands on too little


@dataclass(frozen=True)
class Tuning:
    table: pd.DataFrame  # one row per setting, best first
    decided: int  # accepted and rejected candidates the labels hold
    current: dict[str, float]  # the setting params.yaml has now

    @property
    def best(self) -> dict[str, Any]:
        return dict(self.table.iloc[0])

    @property
    def enough(self) -> bool:
        return self.decided >= MIN_DECIDED


def verdicts(decisions: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Candidate id -> accepted or rejected; pending decisions label nothing."""
    return {
        str(d["candidate"]): str(d["decision"])
        for d in decisions
        if d.get("decision") in ("accepted", "rejected")
    }


def tune(
    records: pd.DataFrame,
    settings: ProblemsParams,
    previous: Mapping[str, Sequence[str]],
    decisions: Sequence[Mapping[str, Any]],
    progress: Callable[[str], None] | None = None,
) -> Tuning:
    """Every setting of the grid replayed over `records` (`detection.combine`), its raised
    groups matched to the decided candidates through the ids of `previous` (the last run's
    groups)."""
    labels = verdicts(decisions)
    vectors = record_vectors(records, RepresentationSettings(fields=settings.fields))
    rows = []
    thresholds = sorted({*settings.tried, settings.threshold})
    growths = sorted({*settings.tried_growth, settings.rule.growth})
    for threshold in thresholds:
        grouped_settings = settings.model_copy(update={"threshold": threshold})
        grouped = detection.carried(
            detection.group_records(records, grouped_settings, vectors=vectors), previous
        )
        for growth in growths:
            if progress is not None:
                progress(f"threshold {threshold:g}, growth {growth:g}")
            rule = settings.rule.model_copy(update={"growth": growth})
            setting = grouped_settings.model_copy(update={"rule": rule})
            raised = detection.replay(grouped, setting)
            found = [labels.get(g) for g in raised["group"]]
            accepted, rejected = found.count("accepted"), found.count("rejected")
            rows.append(
                {
                    "threshold": threshold,
                    "growth": growth,
                    "accepted": accepted,
                    "rejected": rejected,
                    "precision": accepted / (accepted + rejected)
                    if accepted + rejected
                    else float("nan"),
                    "raised": len(raised),
                    "per_month": round(per_month(grouped, raised), 2),
                }
            )
    table = pd.DataFrame(rows)
    table["net"] = table["accepted"] - table["rejected"]
    table = table.sort_values(
        ["net", "per_month", "threshold", "growth"],
        ascending=[False, True, True, True],
        kind="stable",
    ).reset_index(drop=True)
    return Tuning(
        table,
        decided=len(labels),
        current={"threshold": settings.threshold, "growth": settings.rule.growth},
    )
