"""A detector judged on a NAB-shaped corpus beside the published detectors, by one scorer.

Each detector is scored on the same files with the same windows; for each application
profile its threshold is the one that maximises its raw score over the corpus (NAB's rule),
and the normalised score puts that raw score between a detector that never fires (0) and a
perfect one (100). The published detectors' result files are scored again here rather than
their published totals quoted, because those cover files a subset may not have.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from itsm_ml.early_warning.detectors import StreamingDetector
from itsm_ml.early_warning.nab import (
    PROFILES,
    LabelledFile,
    Sweep,
    normalised,
    optimise_threshold,
    score_file,
    sweep,
)


def run_detector(
    make: Callable[[], StreamingDetector],
    corpus: list[LabelledFile],
    files: Iterable[LabelledFile] | None = None,
) -> list[np.ndarray]:
    """Each file scored by a fresh detector, point by point from its own past."""
    out = []
    for labelled in files if files is not None else corpus:
        points = pd.DataFrame(
            {"series": labelled.name, "timestamp": labelled.timestamps, "value": labelled.values}
        )
        out.append(make().score(points)["score"].to_numpy())
    return out


def published_scores(root: Path, detector: str, corpus: list[LabelledFile]) -> list[np.ndarray]:
    """A published detector's anomaly scores for the corpus' files, from NAB's results."""
    out = []
    for labelled in corpus:
        category, file = labelled.name.split("/")
        path = root / "results" / detector / category / f"{detector}_{file}.gz"
        with gzip.open(path, "rt") as handle:
            out.append(pd.read_csv(handle, usecols=["anomaly_score"])["anomaly_score"].to_numpy())
    return out


@dataclass(frozen=True)
class Verdict:
    detector: str
    profile: str
    threshold: float
    raw: float
    normalised: float
    windows_detected: int
    windows: int
    false_alarms: int
    false_alarms_per_day: float


def _judge_one(
    detector: str,
    scores: list[np.ndarray],
    corpus: list[LabelledFile],
    profile_name: str,
    sweeps: list[Sweep],
) -> Verdict:
    profile = PROFILES[profile_name]
    choice = optimise_threshold(scores, sweeps, profile)
    windows = sum(len(np.unique(s.windows[s.windows >= 0])) for s in sweeps)
    never = -windows * profile.fn_weight  # the null detector: it never fires
    detected = false_alarms = 0
    scored_days = 0.0
    for values, swept, labelled in zip(scores, sweeps, corpus, strict=True):
        result = score_file(values, swept, profile, choice.threshold)
        hits = (np.asarray(values) >= choice.threshold) & (swept.windows >= 0)
        detected += len(np.unique(swept.windows[hits]))
        false_alarms += result.fp
        times = labelled.timestamps[swept.windows != -2]
        scored_days += (times.max() - times.min()) / pd.Timedelta(days=1) if len(times) else 0.0
    return Verdict(
        detector=detector,
        profile=profile_name,
        threshold=choice.threshold,
        raw=choice.score,
        normalised=normalised(choice.score, never, windows, profile),
        windows_detected=detected,
        windows=windows,
        false_alarms=false_alarms,
        false_alarms_per_day=false_alarms / scored_days if scored_days else 0.0,
    )


def judge(scores: dict[str, list[np.ndarray]], corpus: list[LabelledFile]) -> pd.DataFrame:
    """One row per detector and profile: threshold, raw and normalised score, windows
    detected, false alarms (and per day of scored data)."""
    sweeps = {
        name: [sweep(f.timestamps, f.windows, profile) for f in corpus]
        for name, profile in PROFILES.items()
    }
    rows = [
        _judge_one(detector, values, corpus, profile, sweeps[profile])
        for detector, values in scores.items()
        for profile in PROFILES
    ]
    return pd.DataFrame([row.__dict__ for row in rows])
