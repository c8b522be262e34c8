"""Streaming anomaly detectors that watch many series at once.

Every point is scored only from its own series' past, then joins that past: what a detector
says at 10:05 never depends on 10:10, so a backtest is what production would have said.
State is a block of arrays with one row per series, and a call scores one point of every
series that has one in a single vectorised step, which is what lets one process watch a
large estate. Nothing is random: the same points give the same scores, on any machine.

Two detectors share the machinery:

- `SeasonalBaseline`: how far a value is from what this hour of the week usually looks like
  (median and interquartile range of the bucket's recent values): the simple baseline a
  smarter detector has to beat.
- `SurpriseDetector`: four signals (a robust z against the recent values, the same against
  the change since a day ago, and how far the last hour and the last 4 hours are from every
  earlier stretch of the same length), each turned into a surprise: how unusual its recent
  average is against its own history, in -log10 of a tail probability (5 is a
  one-in-100,000 event for this series). A value beyond the series' range so far is
  surprising by itself. After an alarm, the series stays quiet for `rest` points: an outage
  is one warning, not fifty. The shape of this is NAB's (anomaly likelihood over a raw
  score, a spatial-novelty override); its settings were chosen on the NAB subset
  (`make bench` shows the neighbouring settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import log_ndtr
from scipy.stats import poisson

from itsm_ml.errors import SourceError

METRIC_COLUMNS = ("series", "timestamp", "value")
_NS_PER_HOUR = 3_600_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR
BLOCK = 256  # series per vectorised step (measured in `make bench`, early-warning speed)


def _quantiles(window: np.ndarray, counts: np.ndarray, shares: tuple[float, ...]) -> np.ndarray:
    """(rows, len(shares)) lower order statistics of each row's first `counts` values (the
    rest of a row is unused). NaN where a row has no value."""
    width = window.shape[1]
    if counts.size and counts.min() >= width:
        fixed = [int(share * (width - 1)) for share in shares]
        partitioned: np.ndarray = np.partition(window, sorted(set(fixed)), axis=1)
        return partitioned[:, fixed]
    used = np.arange(width)[None, :] < counts[:, None]
    ordered = np.sort(np.where(used, window, np.nan), axis=1)  # NaN sorts last
    ranks = np.floor(np.outer(np.maximum(counts - 1, 0), shares)).astype(np.int64)
    found = np.take_along_axis(ordered, ranks, axis=1)
    return np.where(counts[:, None] > 0, found, np.nan)


def _robust_z(
    value: np.ndarray, window: np.ndarray, counts: np.ndarray, minimum: int
) -> np.ndarray:
    """|value - median| over the interquartile range (as a normal's sigma), floored at 1% of
    the window's range so a flat stretch does not make every wobble infinite."""
    low, q1, median, q3, high = _quantiles(window, counts, (0.0, 0.25, 0.5, 0.75, 1.0)).T
    scale = np.maximum(np.maximum((q3 - q1) / 1.349, 0.01 * (high - low)), 1e-9)
    z = np.abs(value - median) / scale
    return np.where(counts >= minimum, np.nan_to_num(z, nan=0.0), 0.0)


def _hour_of_week(times: np.ndarray) -> np.ndarray:
    """0 is Monday 00h (1970-01-01, time 0, was a Thursday)."""
    hours: np.ndarray = (times // _NS_PER_HOUR + 72) % 168
    return hours


def _last(ring: np.ndarray, counts: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `width` values written to each row of a ring (newest first), and how many
    of them exist."""
    size = ring.shape[1]
    slots = (counts[:, None] - 1 - np.arange(width)[None, :]) % size
    return np.take_along_axis(ring, slots, axis=1), np.minimum(counts, width)


class StreamingDetector:
    """Feeds points to `_step` in time order, one point per series per step.

    `fit(history)` warms the state on history; `score(points)` scores new points and adds
    them to the state. A point earlier than its series' last one is refused: it cannot be
    scored from the past only. Points with the same time are taken in the order given
    (exports repeat an hour when clocks go back; validation of a source reports them).
    """

    name: ClassVar[str]
    signals: ClassVar[tuple[str, ...]]
    settings: Any  # each detector's frozen settings, with its `alarm` level

    @property
    def alarm(self) -> float:
        """The score from which this detector's point is an alarm, unless params say else."""
        return float(self.settings.alarm)

    def __init__(self) -> None:
        self.series_rows: dict[str, int] = {}
        self.state: dict[str, np.ndarray] = {}

    def _blank(self, rows: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _step(
        self, rows: np.ndarray, values: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @staticmethod
    def _span(rows: np.ndarray) -> slice | None:
        """The rows as a slice when they are consecutive (those of a step are distinct and
        sorted), so state can be updated through views rather than copies."""
        if rows.size and rows[-1] - rows[0] == rows.size - 1:
            return slice(int(rows[0]), int(rows[-1]) + 1)
        return None

    def fit(self, history: pd.DataFrame) -> StreamingDetector:
        self.score(history)
        return self

    def _rows_of(self, series: pd.Series) -> np.ndarray:
        new = [name for name in pd.unique(series) if name not in self.series_rows]
        if new:
            start = len(self.series_rows)
            self.series_rows.update({name: start + i for i, name in enumerate(new)})
            blank = self._blank(len(new))
            self.state = (
                {key: np.concatenate([self.state[key], blank[key]]) for key in blank}
                if self.state
                else blank
            )
        rows: np.ndarray = series.map(self.series_rows).to_numpy(dtype=np.int64)
        return rows

    def score(self, points: pd.DataFrame) -> pd.DataFrame:
        """`points` (series, timestamp, value) with a `score` and the signal behind it
        (`basis`) added, in the order given."""
        missing = [column for column in METRIC_COLUMNS if column not in points.columns]
        if missing:
            raise SourceError(f"points lack the column(s) {missing}; expected {METRIC_COLUMNS}")
        series = points["series"].astype(str).reset_index(drop=True)
        times = pd.to_datetime(points["timestamp"]).to_numpy("datetime64[ns]").astype(np.int64)
        values = pd.to_numeric(points["value"], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad = points.iloc[np.flatnonzero(~np.isfinite(values))[:3]][list(METRIC_COLUMNS)]
            raise SourceError(
                f"points: value must be a finite number; e.g. {bad.to_dict('records')}"
            )
        rows = self._rows_of(series)
        # By series, then time; points with the same time keep the order given.
        order = np.lexsort((np.arange(len(rows)), times, rows))
        sorted_rows, sorted_times = rows[order], times[order]
        first = np.append(True, sorted_rows[1:] != sorted_rows[:-1])
        stale = first & (self.state["last_time"][sorted_rows] > sorted_times)
        if stale.any():
            at = order[np.flatnonzero(stale)[0]]
            raise SourceError(
                f"points: series {series[at]!r} at {pd.Timestamp(times[at])} is earlier than "
                "the last point already scored for it; a detector only moves forward in time"
            )
        starts = np.flatnonzero(first)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - np.repeat(
            starts, np.diff(np.append(starts, len(order)))
        )
        by_step = np.lexsort((rows, rank))
        bounds = np.flatnonzero(np.diff(rank[by_step])) + 1
        scores = np.zeros(len(rows))
        basis = np.zeros(len(rows), dtype=np.int64)
        for step in np.split(by_step, bounds):
            # Blocks of series small enough that a step's temporaries stay in cache.
            for chunk in np.array_split(step, max(1, -(-step.size // BLOCK))):
                if chunk.size:
                    scores[chunk], basis[chunk] = self._step(
                        rows[chunk], values[chunk], times[chunk]
                    )
                    self.state["last_time"][rows[chunk]] = times[chunk]
        names = np.array(["", *self.signals], dtype=object)
        return points.reset_index(drop=True).assign(score=scores, basis=names[basis])


@dataclass(frozen=True)
class SeasonalSettings:
    depth: int = 16  # recent values kept per hour of the week
    minimum: int = 4  # values a bucket needs before it judges
    alarm: float = 6.0  # a robust z beyond this raises an alarm


class SeasonalBaseline(StreamingDetector):
    """Robust z of a value against the recent values of its hour of the week."""

    name = "seasonal"
    signals = ("hour of week",)

    def __init__(self, settings: SeasonalSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or SeasonalSettings()

    def _blank(self, rows: int) -> dict[str, np.ndarray]:
        return {
            "last_time": np.full(rows, np.iinfo(np.int64).min),
            "buckets": np.zeros((rows, 168, self.settings.depth)),
            "filled": np.zeros((rows, 168), dtype=np.int64),
            "low": np.full(rows, np.inf),
            "high": np.full(rows, -np.inf),
        }

    def _step(
        self, rows: np.ndarray, values: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        state = self.state
        hour = _hour_of_week(times)
        ring = state["buckets"][rows, hour]
        filled = state["filled"][rows, hour]
        recent, counts = _last(ring, filled, self.settings.depth)
        q1, median, q3 = _quantiles(recent, counts, (0.25, 0.5, 0.75)).T
        span = state["high"][rows] - state["low"][rows]
        scale = np.maximum(np.maximum((q3 - q1) / 1.349, 0.01 * np.nan_to_num(span)), 1e-9)
        z = np.where(counts >= self.settings.minimum, np.abs(values - median) / scale, 0.0)
        z = np.nan_to_num(z, nan=0.0, posinf=0.0)
        state["buckets"][rows, hour, filled % self.settings.depth] = values
        state["filled"][rows, hour] = filled + 1
        state["low"][rows] = np.minimum(state["low"][rows], values)
        state["high"][rows] = np.maximum(state["high"][rows], values)
        return z, np.where(z > 0, 1, 0)


@dataclass(frozen=True)
class SurpriseSettings:
    window: int = 1000  # recent values a robust z is taken against
    history: int = 3000  # earlier stretches a recent stretch is compared with
    shapes: tuple[int, ...] = (12, 48)  # stretch lengths, in points
    smoothing: int = 30  # points a signal is averaged over before it is judged
    memory: int = 4000  # earlier averages that say what is usual for this series
    warmup: int = 150  # points before a series is judged at all
    cap: float = 30.0  # a raw signal beyond this is as bad as this
    tolerance: float = 0.05  # a new extreme must pass the range so far by this share
    novelty: float = 10.0  # the surprise of a new extreme
    ceiling: float = 20.0  # a surprise is at most this (a near-zero spread makes it endless)
    alarm: float = 5.0  # the surprise after which the series rests
    rest: int = 100  # points of quiet after an alarm
    lag_hint: int = 10  # points from which the day's lag in points is read


class SurpriseDetector(StreamingDetector):
    """The ensemble described in the module's docstring."""

    name = "surprise"
    signals = (
        "level against recent values",
        "change since a day ago",
        "shape of the last hour",
        "shape of the last 4 hours",
        "new extreme",
    )

    def __init__(self, settings: SurpriseSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or SurpriseSettings()
        longest = max(self.settings.shapes)
        self.ring_size = max(self.settings.window, self.settings.history + 2 * longest) + 1
        self.components = 2 + len(self.settings.shapes)

    def _blank(self, rows: int) -> dict[str, np.ndarray]:
        s = self.settings
        return {
            "last_time": np.full(rows, np.iinfo(np.int64).min),
            "count": np.zeros(rows, dtype=np.int64),
            "values": np.zeros((rows, self.ring_size)),
            "first_times": np.zeros((rows, s.lag_hint), dtype=np.int64),
            "lag": np.zeros(rows, dtype=np.int64),
            "diffs": np.zeros((rows, s.window)),
            "diff_count": np.zeros(rows, dtype=np.int64),
            "distances": np.zeros((rows, len(s.shapes), s.history)),
            "recent": np.zeros((rows, self.components, s.smoothing)),
            "averages": np.zeros((rows, self.components, s.memory)),
            "sums": np.zeros((rows, self.components, 2)),
            "low": np.full(rows, np.inf),
            "high": np.full(rows, -np.inf),
            "last_alarm": np.full(rows, -(10**12), dtype=np.int64),
        }

    def _history(self, rows: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(rows, ring size - 1) the values written so far, newest first (zeros where a
        series has fewer): one gather serves every window. Series that have seen as many
        points, as when each step brings a point of every series, share one index."""
        back = np.arange(1, self.ring_size)
        if count.min() == count.max():
            shared: np.ndarray = self.state["values"][
                np.ix_(rows, (count[0] - back) % self.ring_size)
            ]
            return shared
        slots = (count[:, None] - back[None, :]) % self.ring_size
        return np.take_along_axis(self.state["values"][rows], slots, axis=1)

    def _day_lag(self, rows: np.ndarray, count: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Points per day from the series' first intervals (1 if it samples daily or less
        often), kept once known."""
        hint = self.settings.lag_hint
        early = count < hint
        self.state["first_times"][rows[early], count[early]] = times[early]
        known: np.ndarray = self.state["lag"][rows]
        learn = (count == hint) & (known == 0)
        if learn.any():
            step = np.median(np.diff(self.state["first_times"][rows[learn]], axis=1), axis=1)
            lag = np.rint(_NS_PER_DAY / np.maximum(step, 1)).astype(np.int64)
            known[learn] = np.clip(lag, 1, self.ring_size - 1)
            self.state["lag"][rows[learn]] = known[learn]
        return known

    def _shape_distances(
        self, rows: np.ndarray, newest_first: np.ndarray, count: np.ndarray, values: np.ndarray
    ) -> np.ndarray:
        """(rows, shapes) distance from the stretch ending now to the nearest earlier one
        that does not overlap it, in root-mean-square units. Squared distances per lag are
        updated in place: adding the newest pair and dropping the oldest is O(history).
        `newest_first[:, j]` is the value j + 1 points back."""
        s = self.settings
        out = np.zeros((len(rows), len(s.shapes)))
        settled = bool(count.min() >= 2 * max(s.shapes) + s.history)
        for which, length in enumerate(s.shapes):
            lags = np.arange(length, length + s.history)
            past = newest_first[:, length - 1 : length - 1 + s.history]  # value `lag` back
            leaving = newest_first[:, length - 1 : length]  # the value leaving the stretch
            older = newest_first[:, 2 * length - 1 : 2 * length - 1 + s.history]
            added = (values[:, None] - past) ** 2
            dropped = (leaving - older) ** 2
            if not settled:  # before a full history some of those values do not exist yet
                then = count[:, None] - lags[None, :]
                added = np.where(then >= 0, added, 0.0)
                dropped = np.where((then - length >= 0) & (count[:, None] >= length), dropped, 0.0)
            span = self._span(rows)  # a view: updated in place, no copy of the history
            distances = self.state["distances"][span if span else rows, which]
            distances += added
            distances -= dropped
            np.maximum(distances, 0.0, out=distances)
            if not span:
                self.state["distances"][rows, which] = distances
            if settled:
                nearest = distances.min(axis=1)
            else:
                complete = (then - length + 1 >= 0) & (count[:, None] >= length - 1)
                nearest = np.where(complete, distances, np.inf).min(axis=1)
            out[:, which] = np.where(np.isfinite(nearest), np.sqrt(nearest / length), 0.0)
        return out

    def _surprise(self, rows: np.ndarray, count: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """-log10 of the chance of a recent average this high, given the series' earlier
        averages (a normal tail)."""
        s = self.settings
        recent = self.state["recent"][rows]
        slot = count % s.smoothing
        recent[np.arange(len(rows)), :, slot] = raw
        self.state["recent"][rows] = recent
        held = np.minimum(count + 1, s.smoothing)
        average = recent.sum(axis=2) / held[:, None]
        # Running sums over the ring of earlier averages: O(1) per point, refreshed exactly
        # each time the ring turns over so rounding cannot build up.
        known = np.minimum(count, s.memory)
        slot = (count % s.memory)[:, None]
        components = np.arange(self.components)[None, :]
        leaving = np.where(
            (count >= s.memory)[:, None],
            self.state["averages"][rows[:, None], components, slot],
            0.0,
        )
        total, squares = self.state["sums"][rows, :, 0], self.state["sums"][rows, :, 1]
        n = np.maximum(known, 2)[:, None]
        mean = total / n
        spread = np.sqrt(np.maximum(squares - total * mean, 0.0) / (n - 1))
        z = (average - mean) / (spread + 1e-6)
        surprise = np.minimum(-log_ndtr(-z) / math.log(10.0), s.ceiling)
        self.state["averages"][rows[:, None], components, slot] = average
        total = total + average - leaving
        squares = squares + average**2 - leaving**2
        turned = (count + 1) % s.memory == 0
        if turned.any():
            ring = self.state["averages"][rows[turned]]
            total[turned], squares[turned] = ring.sum(axis=2), (ring**2).sum(axis=2)
        self.state["sums"][rows] = np.stack([total, squares], axis=2)
        return np.where((known >= s.warmup)[:, None], surprise, 0.0)

    def _step(
        self, rows: np.ndarray, values: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        state = self.state
        count = state["count"][rows]
        newest_first = self._history(rows, count)
        lag = self._day_lag(rows, count, times)
        recent, held = newest_first[:, : s.window], np.minimum(count, s.window)
        level = _robust_z(values, recent, held, 20)
        _, low, high = _quantiles(recent, held, (0.5, 0.05, 0.95)).T
        spread = np.maximum(np.nan_to_num(high - low), 1e-9)
        has_day = (lag > 0) & (count >= lag)
        day_ago = state["values"][rows, (count - np.maximum(lag, 1)) % self.ring_size]
        change = np.where(has_day, values - day_ago, 0.0)
        diff_count = state["diff_count"][rows]
        diffs, diffs_held = _last(state["diffs"][rows], diff_count, s.window)
        daily = np.where(has_day, _robust_z(change, diffs, diffs_held, 20), 0.0)
        write = rows[has_day]
        state["diffs"][write, diff_count[has_day] % s.window] = change[has_day]
        state["diff_count"][write] = diff_count[has_day] + 1
        shapes = self._shape_distances(rows, newest_first, count, values) / spread[:, None]
        raw = np.minimum(np.column_stack([level, daily, shapes]), s.cap)
        surprise = self._surprise(rows, count, raw)
        score = surprise.max(axis=1)
        basis = surprise.argmax(axis=1) + 1
        low_so_far, high_so_far = state["low"][rows], state["high"][rows]
        span = high_so_far - low_so_far
        novel = (count >= s.warmup) & (
            (values > high_so_far + s.tolerance * span) | (values < low_so_far - s.tolerance * span)
        )
        score = np.where(novel, s.novelty, score)
        basis = np.where(novel, len(self.signals), basis)
        quiet = count - state["last_alarm"][rows] < s.rest
        score = np.where(quiet, np.minimum(score, s.alarm * 0.999), score)
        state["last_alarm"][rows] = np.where(
            ~quiet & (score >= s.alarm), count, state["last_alarm"][rows]
        )
        state["low"][rows] = np.minimum(low_so_far, values)
        state["high"][rows] = np.maximum(high_so_far, values)
        state["values"][rows, count % self.ring_size] = values
        state["count"][rows] = count + 1
        return score, np.where(score > 0, basis, 0)


@dataclass(frozen=True)
class VolumeSettings:
    depth: int = 8  # recent counts kept per hour of the week
    prior: float = 2.0  # weight, in counts of the bucket, of the series' overall rate
    spans: tuple[int, ...] = (1, 3)  # points summed: a sudden burst, a building one
    warmup: int = 672  # four weeks of hours: every hour of the week seen 4 times
    dispersion_memory: int = 500  # points the over-dispersion estimate averages over
    alarm: float = 5.0
    rest: int = 6  # points of quiet after an alarm


class VolumeDetector(StreamingDetector):
    """For counts (tickets per hour): how unlikely this many are, given what this hour of
    the week usually brings. The expected count is the hour-of-week bucket's recent mean,
    shrunk towards the series' overall rate; the surprise is -log10 of the Poisson chance of
    at least this many over the last 1 and 3 points, divided by the series' over-dispersion
    (real desks are burstier than Poisson), so a quiet series is not alarmed by a busy hour.
    Only rises count: a drop in tickets is not an outage of the service."""

    name = "volume"
    signals = ("tickets in the last hour", "tickets in the last 3 hours")

    def __init__(self, settings: VolumeSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or VolumeSettings()
        self.span = max(self.settings.spans)

    def _blank(self, rows: int) -> dict[str, np.ndarray]:
        s = self.settings
        return {
            "last_time": np.full(rows, np.iinfo(np.int64).min),
            "count": np.zeros(rows, dtype=np.int64),
            "buckets": np.zeros((rows, 168, s.depth)),
            "filled": np.zeros((rows, 168), dtype=np.int64),
            "total": np.zeros(rows),
            "recent": np.zeros((rows, self.span, 2)),  # (count, expected) of the last points
            "dispersion": np.ones(rows),
            "last_alarm": np.full(rows, -(10**12), dtype=np.int64),
        }

    def _step(
        self, rows: np.ndarray, values: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        state = self.state
        count = state["count"][rows]
        hour = _hour_of_week(times)
        filled = state["filled"][rows, hour]
        held = np.minimum(filled, s.depth)
        bucket_sum = state["buckets"][rows, hour].sum(axis=1)  # unfilled slots are 0
        overall = state["total"][rows] / np.maximum(count, 1)
        expected = np.maximum((bucket_sum + s.prior * overall) / (held + s.prior), 0.01)
        recent = state["recent"][rows]
        recent[np.arange(len(rows)), count % self.span] = np.column_stack([values, expected])
        dispersion = state["dispersion"][rows]
        surprises = []
        for span in s.spans:
            slots = (count[:, None] - np.arange(span)[None, :]) % self.span
            taken = np.take_along_axis(recent, slots[:, :, None], axis=1)
            seen = np.where(np.arange(span)[None, :] <= count[:, None], 1.0, 0.0)
            observed = (taken[:, :, 0] * seen).sum(axis=1)
            mean = (taken[:, :, 1] * seen).sum(axis=1)
            tail = poisson.logsf(np.ceil(observed) - 1, mean)
            surprises.append(np.where(observed > mean, -tail / math.log(10.0) / dispersion, 0.0))
        surprise = np.column_stack(surprises)
        score = np.where(count >= s.warmup, surprise.max(axis=1), 0.0)
        basis = surprise.argmax(axis=1) + 1
        quiet = count - state["last_alarm"][rows] < s.rest
        score = np.where(quiet, np.minimum(score, s.alarm * 0.999), score)
        state["last_alarm"][rows] = np.where(
            ~quiet & (score >= s.alarm), count, state["last_alarm"][rows]
        )
        pearson = np.minimum((values - expected) ** 2 / expected, 25.0)
        weight = 1.0 / s.dispersion_memory
        state["dispersion"][rows] = np.maximum((1 - weight) * dispersion + weight * pearson, 1.0)
        state["recent"][rows] = recent
        state["buckets"][rows, hour, filled % s.depth] = values
        state["filled"][rows, hour] = filled + 1
        state["total"][rows] += values
        state["count"][rows] = count + 1
        return score, np.where(score > 0, basis, 0)


DETECTORS: dict[str, type[StreamingDetector]] = {
    SeasonalBaseline.name: SeasonalBaseline,
    SurpriseDetector.name: SurpriseDetector,
    VolumeDetector.name: VolumeDetector,
}
