"""The Numenta Anomaly Benchmark's scoring, so that a detector is judged the way the field
judges it (and the published detectors' results can be scored again on the same files).

Per file: every labelled anomaly has a window; the first 15% of the rows (at most 750) are
a probation period and are not scored. A detection (anomaly score at or above the
threshold) inside a window earns a scaled sigmoid of how early it came, and only a window's
best detection counts; a window with none costs `fn_weight`. A detection outside a window
costs `fp_weight` times a sigmoid of how far it is past the last window. The application
profiles weigh those differently; the threshold is chosen to maximise the raw score over
the files, and a detector's normalised score places its raw score between the null
detector (0) and a perfect one (100).

The arithmetic follows NAB's `Sweeper`, in arrays: a test scores the published detectors'
result files and finds their per-file scores and counts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from itsm_ml.errors import SourceError

PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750  # NAB: 15% of 5,000


@dataclass(frozen=True)
class Profile:
    """An application profile: what a detection in a window, a missed window and a false
    alarm are worth."""

    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


PROFILES = {
    "standard": Profile(1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile(1.0, 0.11, 2.0),
}


@dataclass(frozen=True)
class FileScore:
    score: float
    tp: int
    tn: int
    fp: int
    fn: int


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """2 sigmoid(-5 x) - 1: about +0.99 at a window's left edge (x = -1), 0 at its right
    edge, towards -1 past it; -1 from 3 window lengths on."""
    position = np.asarray(position, dtype=float)
    bounded = np.minimum(position, 3.0)  # past 3 the value is -1 anyway; exp must not overflow
    return np.where(position >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * bounded)) - 1.0)


def probation_rows(rows: int) -> float:
    return min(math.floor(PROBATION_SHARE * rows), PROBATION_SHARE * 5000)


@dataclass(frozen=True)
class Sweep:
    """Per row of one file: the weighted score a detection there would earn, and the
    window it belongs to (-1: outside every window; -2: probation, not scored)."""

    scores: np.ndarray
    windows: np.ndarray


def sweep(
    timestamps: pd.Series,
    windows: list[tuple[str, str]] | list[tuple[pd.Timestamp, pd.Timestamp]],
    profile: Profile,
    *,
    probation: bool = True,
) -> Sweep:
    """What a detection on each row is worth under `profile` (NAB's `calcSweepScore`).
    `probation` False scores every row: a detector warmed on earlier history needs none."""
    times = pd.to_datetime(pd.Series(timestamps)).to_numpy()
    rows = len(times)
    index = np.arange(rows)
    window_of = np.full(rows, -1, dtype=np.int64)
    right = np.zeros(rows)
    width = np.ones(rows)
    previous_right = np.full(rows, np.nan)
    previous_width = np.full(rows, np.nan)
    for number, (start, end) in enumerate(windows):
        # A window starts and ends on rows of the file (NAB looks them up exactly).
        first = int(np.flatnonzero(times == np.datetime64(pd.Timestamp(start)))[0])
        last = int(np.flatnonzero(times == np.datetime64(pd.Timestamp(end)))[0])
        window_of[first : last + 1] = number
        right[first : last + 1] = last
        width[first : last + 1] = last - first + 1
        after = index > last
        previous_right[after] = last
        previous_width[after] = last - first + 1
    inside = window_of >= 0
    max_tp = float(scaled_sigmoid(np.array(-1.0)))
    in_window = scaled_sigmoid(-(right - index + 1) / width) * profile.tp_weight / max_tp
    past = np.where(
        np.isnan(previous_right),
        3.0,
        np.abs(previous_right - index) / (previous_width - 1),
    )
    outside = scaled_sigmoid(past) * profile.fp_weight
    scores = np.where(inside, in_window, outside)
    if probation:
        window_of[index < probation_rows(rows)] = -2
    return Sweep(scores, window_of)


def score_file(
    anomaly_scores: np.ndarray, swept: Sweep, profile: Profile, threshold: float
) -> FileScore:
    """The raw score and counts of one file at one threshold: every scored row at or above
    it is a detection (NAB's `scoreDataSet`)."""
    scored = swept.windows != -2
    detected = scored & (np.asarray(anomaly_scores, dtype=float) >= threshold)
    inside = swept.windows >= 0
    false_alarms = detected & ~inside
    total = float(swept.scores[false_alarms].sum())
    for window in np.unique(swept.windows[scored & inside]):
        hits = detected & (swept.windows == window)
        total += float(swept.scores[hits].max()) if hits.any() else -profile.fn_weight
    return FileScore(
        score=total,
        tp=int((detected & inside).sum()),
        tn=int((scored & ~inside & ~detected).sum()),
        fp=int(false_alarms.sum()),
        fn=int((scored & inside & ~detected).sum()),
    )


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    score: float


def optimise_threshold(
    anomaly_scores: list[np.ndarray], sweeps: list[Sweep], profile: Profile
) -> ThresholdChoice:
    """The threshold that maximises the raw score summed over the files, searched exactly
    over every distinct anomaly score (NAB's optimiser sweeps the same way).

    Lowering the threshold past a row adds that row's detection: a false alarm adds its
    (negative) weight; in a window only the best detection counts, so a row adds how much
    it raises its window's best (a first detection also lifts the window off `-fn_weight`).
    Among equal scores the highest threshold wins: the fewest alarms for the same score.
    """
    values, weights, windows = [], [], []
    offset = 0
    for scores, swept in zip(anomaly_scores, sweeps, strict=True):
        scored = swept.windows != -2
        values.append(np.asarray(scores, dtype=float)[scored])
        weights.append(swept.scores[scored])
        in_file = swept.windows[scored]
        windows.append(np.where(in_file >= 0, in_file + offset, -1))
        offset += int(swept.windows.max()) + 1 if (swept.windows >= 0).any() else 0
    value, weight, window = (np.concatenate(part) for part in (values, weights, windows))
    window_count = len(np.unique(window[window >= 0]))
    nothing = -window_count * profile.fn_weight
    if value.size == 0:
        return ThresholdChoice(math.inf, nothing)
    order = np.argsort(-value, kind="stable")
    value, weight, window = value[order], weight[order], window[order]
    gain = weight.copy()
    inside = window >= 0
    if inside.any():
        frame = pd.DataFrame({"window": window[inside], "weight": weight[inside]})
        best = frame.groupby("window").weight.cummax().to_numpy()
        before = frame.assign(best=best).groupby("window").best.shift(1).to_numpy()
        gain[inside] = best - np.where(np.isnan(before), -profile.fn_weight, before)
    total = nothing + np.cumsum(gain)
    last_of_value = np.append(value[1:] != value[:-1], True)
    candidates = np.append(nothing, total[last_of_value])
    thresholds = np.append(np.nextafter(value[0], math.inf), value[last_of_value])
    pick = int(np.argmax(candidates))
    return ThresholdChoice(float(thresholds[pick]), float(candidates[pick]))


def normalised(raw: float, null: float, windows: int, profile: Profile) -> float:
    """NAB's normalised score: 0 for the null detector, 100 for a detection at the left
    edge of every window and no false alarm."""
    perfect = windows * profile.tp_weight
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class LabelledFile:
    """One file of a NAB-shaped corpus: its rows and labelled windows."""

    name: str  # "<category>/<file>.csv", the key of the labels
    timestamps: pd.Series
    values: np.ndarray
    windows: list[tuple[str, str]]


def read_corpus(root: Path) -> list[LabelledFile]:
    """The files under `root/data` with their windows from `root/labels`; the labels of
    files that are absent are ignored (a subset of NAB keeps them)."""
    labels = root / "labels" / "combined_windows.json"
    if not labels.is_file():
        raise SourceError(
            f"{labels}: NAB's window labels are missing (labels/combined_windows.json)"
        )
    windows = json.loads(labels.read_text())
    files = []
    for path in sorted((root / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        if name not in windows:
            raise SourceError(f"{path}: no entry {name!r} in {labels}")
        frame = pd.read_csv(path)
        files.append(
            LabelledFile(
                name,
                pd.to_datetime(frame["timestamp"]),
                frame["value"].to_numpy(dtype=float),
                [(str(start), str(end)) for start, end in windows[name]],
            )
        )
    if not files:
        raise SourceError(f"{root / 'data'}: no <category>/<file>.csv under it")
    return files
