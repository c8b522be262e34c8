"""A detector as the catalog trains, judges, registers and serves it (kind `detector`).

It watches the incident volume of the tickets table (`early_warning.volume`) and is judged
the way NAB judges: on labelled windows, here the incidents the desk attached to one parent
(`label`, e.g. parent_incident) on one series, at least `outage_min_tickets` of them. Its
alarm threshold is the one that maximises NAB's standard score on validation's windows, so
the test period judges a threshold it never saw. Its state (every series' recent past) is
part of the model: the registered version scores the next points where training stopped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.early_warning.alarms import alarm_events
from itsm_ml.early_warning.detectors import DETECTORS, METRIC_COLUMNS, StreamingDetector
from itsm_ml.early_warning.nab import PROFILES, normalised, optimise_threshold, score_file, sweep
from itsm_ml.early_warning.volume import incident_volume
from itsm_ml.errors import SourceError

Windows = dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]
TIME_COLUMN = "opened_at"
# The gate's figures of a detector on a period (catalog.METRICS["early_warning"] first).
STANDARD, LOW_FP = "standard", "reward_low_FP_rate"


def labelled_windows(
    tickets: pd.DataFrame, label: str, by: tuple[str, ...], frequency: str, min_tickets: int
) -> Windows:
    """Per series (`<by>=<value>`), the windows of the outages `tickets` label: from the bin
    of the first incident attached to one `label` value to the bin of the last, when at
    least `min_tickets` of them share that series. Overlapping windows are merged."""
    if label not in tickets or TIME_COLUMN not in tickets:
        return {}
    found: Windows = {}
    linked = tickets[tickets[label].notna() & tickets[TIME_COLUMN].notna()]
    for column in by:
        if column not in linked:
            continue
        known = linked[linked[column].notna()]
        spans = (
            pd.DataFrame(
                {
                    "value": known[column].astype(str),
                    "outage": known[label].astype(str),
                    "bin": pd.to_datetime(known[TIME_COLUMN]).dt.floor(frequency),
                }
            )
            .groupby(["value", "outage"])["bin"]
            .agg(["min", "max", "size"])
        )
        spans = spans[spans["size"] >= min_tickets].sort_values("min")
        for (value, _), row in spans.iterrows():
            merged = found.setdefault(f"{column}={value}", [])
            if merged and row["min"] <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], row["max"]))
            else:
                merged.append((row["min"], row["max"]))
    return found


@dataclass(frozen=True)
class PeriodVerdict:
    """A detector's figures on one period: NAB's normalised scores, the windows it found,
    and its false alarms (alarm episodes opened outside every window)."""

    nab_standard: float
    nab_low_fp: float
    false_alarms_per_day: float
    windows: int
    detected: int
    false_alarms: int
    alarms: int
    days: float
    median_delay_hours: float
    per_series: pd.DataFrame = field(repr=False)

    def metrics(self) -> dict[str, float]:
        return {
            "nab_standard": self.nab_standard,
            "nab_low_fp": self.nab_low_fp,
            "false_alarms_per_day": self.false_alarms_per_day,
            "windows": self.windows,
            "detected_windows": self.detected,
            "false_alarms": self.false_alarms,
            "alarms": self.alarms,
            "days": self.days,
            "median_delay_hours": self.median_delay_hours,
        }


def _on_rows(times: np.ndarray, windows: list[tuple[pd.Timestamp, pd.Timestamp]]) -> list[Any]:
    """The windows clipped to the rows of a series (NAB looks window edges up exactly)."""
    if not len(times):
        return []
    out = []
    for start, end in windows:
        inside = times[(times >= np.datetime64(start)) & (times <= np.datetime64(end))]
        if len(inside):
            out.append((pd.Timestamp(inside[0]), pd.Timestamp(inside[-1])))
    return out


def judge_period(
    scored: pd.DataFrame, windows: Windows, threshold: float, close_after: int
) -> PeriodVerdict:
    """`scored` (series, timestamp, score, basis) judged against `windows` at `threshold`.
    A window of a series the detector did not score is a missed one."""
    start, end = scored["timestamp"].min(), scored["timestamp"].max()
    raw = {name: 0.0 for name in PROFILES}
    rows = []
    total_windows = detected = 0
    delays: list[float] = []
    by_series = dict(tuple(scored.groupby("series", sort=False)))
    events = alarm_events(scored, threshold, close_after) if len(scored) else pd.DataFrame()
    false_alarms = 0
    for series in sorted(set(by_series) | set(windows)):
        points = by_series.get(series)
        period = [(a, b) for a, b in windows.get(series, []) if b >= start and a <= end]
        if points is None:
            total_windows += len(period)
            for name, profile in PROFILES.items():
                raw[name] -= profile.fn_weight * len(period)
            rows.append({"series": series, "windows": len(period), "detected": 0, "alarms": 0})
            continue
        points = points.sort_values("timestamp", kind="stable")
        times = points["timestamp"].to_numpy("datetime64[ns]")
        on_rows = _on_rows(times, period)
        missed_outside = len(period) - len(on_rows)
        scores = points["score"].to_numpy()
        for name, profile in PROFILES.items():
            swept = sweep(points["timestamp"], on_rows, profile, probation=False)
            raw[name] += score_file(scores, swept, profile, threshold).score
            raw[name] -= profile.fn_weight * missed_outside
        found = 0
        for first, last in on_rows:
            hit = (times >= np.datetime64(first)) & (times <= np.datetime64(last))
            hit &= scores >= threshold
            if hit.any():
                found += 1
                delays.append((times[hit][0] - np.datetime64(first)) / np.timedelta64(1, "h"))
        mine = events[events["series"] == series] if len(events) else events
        outside = 0
        for opened in mine.get("opened_at", pd.Series(dtype="datetime64[ns]")):
            if not any(a <= opened <= b for a, b in period):
                outside += 1
        false_alarms += outside
        total_windows += len(period)
        detected += found
        rows.append(
            {
                "series": series,
                "windows": len(period),
                "detected": found,
                "alarms": len(mine),
                "false_alarms": outside,
            }
        )
    days = max((end - start) / pd.Timedelta(days=1), 1 / 24) if len(scored) else math.nan
    nab = {
        name: normalised(raw[name], -total_windows * p.fn_weight, total_windows, p)
        if total_windows
        else math.nan
        for name, p in PROFILES.items()
    }
    return PeriodVerdict(
        nab_standard=nab[STANDARD],
        nab_low_fp=nab[LOW_FP],
        false_alarms_per_day=false_alarms / days if days == days else math.nan,
        windows=total_windows,
        detected=detected,
        false_alarms=false_alarms,
        alarms=len(events),
        days=float(days),
        median_delay_hours=float(np.median(delays)) if delays else math.nan,
        per_series=pd.DataFrame(rows).fillna({"false_alarms": 0}),
    )


@dataclass
class DetectorModel:
    """The incident-volume detector of one catalog entry, with its threshold and state."""

    label: str
    by: tuple[str, ...]
    frequency: str
    min_tickets: int
    method: str
    outage_min_tickets: int
    close_after: int
    configured_threshold: float | None = None
    threshold_: float = math.nan
    threshold_basis_: str = ""
    detector_: StreamingDetector | None = None
    series_: list[str] = field(default_factory=list)
    last_seen_: pd.Timestamp | None = None
    validation_: dict[str, float] = field(default_factory=dict)
    training_level_: float = math.nan  # mean count per bin and series it learned from

    def volume(self, tickets: pd.DataFrame, *, known_only: bool = False) -> pd.DataFrame:
        """Points (series, timestamp, value) of `tickets`' volume. `known_only`: the series
        this model watches, each over the whole span (zeros where a series had no ticket),
        and only points after the last it has seen."""
        frames = []
        for column in self.by:
            if column not in tickets or tickets[column].isna().all():
                continue
            found = incident_volume(
                tickets,
                column,
                frequency=self.frequency,
                min_tickets=1 if known_only else self.min_tickets,
            ).points
            frames.append(found)
        points = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=list(METRIC_COLUMNS))
        )
        if not known_only or points.empty:
            return points
        wide = points.pivot(index="timestamp", columns="series", values="value")
        wide = wide.reindex(columns=self.series_, fill_value=0.0).fillna(0.0)
        if self.last_seen_ is not None:
            # A bin the model already counted (the last of training) is not counted twice.
            wide = wide[wide.index > self.last_seen_]
        long = wide.rename_axis(columns="series").stack().rename("value").reset_index()
        long = long.sort_values(["series", "timestamp"], kind="stable").reset_index(drop=True)
        return long[list(METRIC_COLUMNS)]

    def _new_detector(self) -> StreamingDetector:
        return DETECTORS[self.method]()

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> DetectorModel:
        """Warm the detector on train's volume, score validation's, choose the threshold
        on validation's windows (NAB standard profile, exact optimum), keep the state."""
        history = pd.concat([train, valid], ignore_index=True)
        points = self.volume(history)
        if points.empty:
            raise ValueError(
                f"no series to watch: no value of {list(self.by)} has {self.min_tickets}"
                " tickets or more (early_warning.volume.min_tickets)"
            )
        self.series_ = sorted(points["series"].unique())
        self.training_level_ = float(points["value"].mean())
        cut = pd.to_datetime(valid[TIME_COLUMN]).min().floor(self.frequency)
        detector = self._new_detector()
        detector.fit(points[points["timestamp"] < cut])
        scored = detector.score(points[points["timestamp"] >= cut])
        windows = labelled_windows(
            valid, self.label, self.by, self.frequency, self.outage_min_tickets
        )
        self.threshold_, self.threshold_basis_ = self._threshold(detector, scored, windows)
        self.detector_ = detector
        self.last_seen_ = pd.Timestamp(points["timestamp"].max())
        if len(scored):
            self.validation_ = judge_period(
                scored, windows, self.threshold_, self.close_after
            ).metrics()
        return self

    def _threshold(
        self, detector: StreamingDetector, scored: pd.DataFrame, windows: Windows
    ) -> tuple[float, str]:
        if self.configured_threshold is not None:
            return self.configured_threshold, "early_warning.thresholds"
        profile = PROFILES[STANDARD]
        scores, sweeps = [], []
        for series, points in scored.groupby("series", sort=True):
            times = points["timestamp"].to_numpy("datetime64[ns]")
            on_rows = _on_rows(times, windows.get(str(series), []))
            scores.append(points["score"].to_numpy())
            sweeps.append(sweep(points["timestamp"], on_rows, profile, probation=False))
        labelled = sum(int((s.windows >= 0).any()) for s in sweeps)
        if labelled:
            choice = optimise_threshold(scores, sweeps, profile)
            if math.isfinite(choice.threshold):
                return choice.threshold, f"NAB standard optimum on validation ({labelled} series)"
        # No labelled window to choose by (or never alarming scores best): the detector's
        # own level, a one-in-100,000 event for the series.
        return detector.alarm, "the detector's default (no labelled window in validation)"

    def respond(self, points: pd.DataFrame) -> pd.DataFrame:
        """Score `points` (series, timestamp, value) from each series' past, in time order,
        and add them to the state: score, whether it is an alarm, and the signal behind it."""
        if self.detector_ is None:
            raise SourceError("the detector is not fitted")
        frame = points.copy()
        if "timestamp" in frame:
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=False)
        scored = self.detector_.score(frame)
        if len(scored):
            latest = pd.Timestamp(scored["timestamp"].max())
            self.last_seen_ = latest if self.last_seen_ is None else max(self.last_seen_, latest)
        return pd.DataFrame(
            {
                "series": scored["series"].astype(str),
                "timestamp": scored["timestamp"],
                "value": scored["value"].astype(float),
                "score": scored["score"].astype(float),
                "alarm": scored["score"].to_numpy() >= self.threshold_,
                "basis": scored["basis"].astype(str),
            }
        )

    def fresh(self) -> DetectorModel:
        """A copy to score a period with, leaving this model's state where it is."""
        return copy.deepcopy(self)

    def get_params(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "by": list(self.by),
            "frequency": self.frequency,
            "min_tickets": self.min_tickets,
            "method": self.method,
            "outage_min_tickets": self.outage_min_tickets,
            "close_after": self.close_after,
            "threshold": self.threshold_,
            "threshold_basis": self.threshold_basis_,
        }


def judge_model(model: DetectorModel, tickets: pd.DataFrame) -> tuple[PeriodVerdict, pd.DataFrame]:
    """A copy of `model` scores the volume of `tickets` (a period after its training) and is
    judged on the period's labelled windows; returns the verdict and the scored points."""
    points = model.volume(tickets, known_only=True)
    if points.empty:
        raise SourceError(
            f"no incident volume to judge by: the period has no ticket of the {len(model.series_)}"
            " series the detector watches after its last training point"
        )
    scored = model.fresh().respond(points)
    windows = labelled_windows(
        tickets, model.label, model.by, model.frequency, model.outage_min_tickets
    )
    return judge_period(scored, windows, model.threshold_, model.close_after), scored
