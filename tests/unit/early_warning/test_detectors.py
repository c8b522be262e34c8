"""Streaming detectors: scored from the past only, many series at once as one by one, a
clear outage seen once, and bad points refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from itsm_ml.early_warning.detectors import (
    DETECTORS,
    SeasonalBaseline,
    SurpriseDetector,
    SurpriseSettings,
    VolumeDetector,
    VolumeSettings,
)
from itsm_ml.errors import SourceError

SMALL = SurpriseSettings(window=200, history=300, shapes=(6, 12), memory=300, warmup=150, rest=60)


def daily_series(name: str, days: int, seed: int, step: str = "15min") -> pd.DataFrame:
    times = pd.date_range("2026-01-05", periods=days * 96, freq=step)
    rng = np.random.default_rng(seed)
    hour = times.hour.to_numpy() + times.minute.to_numpy() / 60
    values = 50 + 20 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 2, len(times))
    return pd.DataFrame({"series": name, "timestamp": times, "value": values})


def surprise(settings: SurpriseSettings = SMALL) -> SurpriseDetector:
    return SurpriseDetector(settings)


@pytest.mark.parametrize("make", [lambda: surprise(), SeasonalBaseline, VolumeDetector])
def test_a_point_is_scored_from_the_past_only(make) -> None:
    """Scores of the first 500 points do not change when later points exist, and feeding
    the stream in pieces gives the scores of feeding it at once."""
    points = daily_series("cpu", 12, seed=1)
    whole = make().score(points)
    prefix = make().score(points.iloc[:500])
    np.testing.assert_array_equal(prefix.score, whole.score.iloc[:500])
    pieces = make()
    parts = [pieces.score(points.iloc[a:b]) for a, b in ((0, 300), (300, 301), (301, len(points)))]
    np.testing.assert_array_equal(pd.concat(parts).score, whole.score)


@pytest.mark.parametrize("make", [lambda: surprise(), SeasonalBaseline, VolumeDetector])
def test_many_series_at_once_score_as_each_alone(make) -> None:
    a, b = daily_series("a", 8, seed=2), daily_series("b", 6, seed=3, step="20min")
    b.loc[400, "value"] += 90
    together = make().score(pd.concat([a, b]).sample(frac=1.0, random_state=0))
    together = together.sort_values(["series", "timestamp"])
    for alone in (a, b):
        expected = make().score(alone)
        got = together[together.series == alone.series.iloc[0]]
        np.testing.assert_allclose(got.score.to_numpy(), expected.score.to_numpy(), atol=1e-9)
    assert make().score(a).equals(make().score(a))  # nothing random


def test_an_outage_is_one_alarm_and_quiet_data_raises_none() -> None:
    points = daily_series("latency", 14, seed=4)
    quiet = surprise().score(points)
    # Once two days are known: before, a record low of plain noise is a new extreme.
    assert quiet.score.iloc[2 * 96 :].max() < SMALL.alarm
    broken = points.copy()
    broken.loc[1000:1040, "value"] += 60  # 10 hours far above anything seen
    scored = surprise().score(broken)
    alarms = 2 * 96 + np.flatnonzero(scored.score.to_numpy()[2 * 96 :] >= SMALL.alarm)
    assert alarms.size == 1 and 1000 <= alarms[0] <= 1003
    assert scored.basis.iloc[alarms[0]] == "new extreme"
    assert scored.score.iloc[2 * 96 : 1000].max() < SMALL.alarm


def test_a_changed_daily_shape_is_seen_by_the_shape_and_daily_signals() -> None:
    """A day whose values stay inside the usual range but lose the daily rhythm: no new
    extreme, yet the stretches no longer match anything earlier."""
    points = daily_series("orders", 14, seed=5)
    flat = points.copy()
    day = slice(10 * 96 + 20, 10 * 96 + 70)
    flat.loc[day, "value"] = 50 + np.random.default_rng(6).normal(0, 2, 51)
    scored = surprise().score(flat).score.to_numpy()
    assert scored[day].max() >= SMALL.alarm
    assert surprise().score(points).score.to_numpy()[day].max() < SMALL.alarm


def test_the_seasonal_baseline_judges_a_value_against_its_hour_of_the_week() -> None:
    points = daily_series("queue", 35, seed=7, step="15min")
    monday_six = (points.timestamp.dt.dayofweek == 0) & (points.timestamp.dt.hour == 6)
    later = (points.timestamp > "2026-02-01").to_numpy()
    odd = points.copy()
    at = odd.index[monday_six & later][0]
    odd.loc[at, "value"] = 35.0  # usual at night, not at the daily peak
    scored = SeasonalBaseline().score(odd)
    others = np.delete(scored.score.to_numpy(), at)[np.delete(later, at)]
    assert scored.basis[at] == "hour of week"
    assert scored.score[at] > others.max() and scored.score[at] > 10 * np.median(others)


def test_points_out_of_time_or_not_numbers_are_refused_with_the_series_named() -> None:
    detector = surprise()
    detector.score(daily_series("disk", 2, seed=8))
    with pytest.raises(SourceError, match=r"'disk' at 2026-01-05 .*earlier than"):
        detector.score(daily_series("disk", 1, seed=9))
    bad = daily_series("net", 1, seed=10).astype({"value": object})
    bad.loc[5, "value"] = "n/a"
    with pytest.raises(SourceError, match=r"finite number.*n/a"):
        surprise().score(bad)
    with pytest.raises(SourceError, match=r"\['value'\]"):
        surprise().score(bad.drop(columns="value"))


def hourly_counts(weeks: int, seed: int, scale: float = 1.0) -> pd.DataFrame:
    times = pd.date_range("2026-01-05", periods=weeks * 168, freq="h")
    working = (times.hour >= 8) & (times.hour < 18) & (times.dayofweek < 5)
    rate = np.where(working, 2.0, 0.2) * scale
    counts = np.random.default_rng(seed).poisson(rate).astype(float)
    return pd.DataFrame({"series": "service=Mail", "timestamp": times, "value": counts})


def test_a_burst_of_tickets_is_one_alarm_and_a_usual_week_none() -> None:
    points = hourly_counts(8, seed=11)
    quiet = VolumeDetector().score(points)
    assert quiet.score.max() < VolumeSettings().alarm
    burst = points.copy()
    night = burst.index[(burst.timestamp >= "2026-02-24 02:00")][:3]
    burst.loc[night, "value"] += 4  # 12 tickets in 3 night hours that usually bring none
    scored = VolumeDetector().score(burst)
    alarms = np.flatnonzero(scored.score.to_numpy() >= VolumeSettings().alarm)
    assert alarms.size == 1 and alarms[0] in night
    assert scored.basis[alarms[0]].startswith("tickets in the last")


def test_a_burst_is_judged_against_how_bursty_the_series_is() -> None:
    """The same extra tickets on a series that swings widely surprise less than on a steady
    one: over-dispersion divides the surprise."""
    steady = hourly_counts(8, seed=12)
    swinging = steady.copy()
    swinging["value"] = np.random.default_rng(13).negative_binomial(1, 1 / (1 + steady.value + 0.5))
    swinging["value"] = swinging["value"].astype(float)
    at = steady.index[steady.timestamp >= "2026-02-24 10:00"][0]
    for frame in (steady, swinging):
        frame.loc[at, "value"] += 6
    assert VolumeDetector().score(swinging).score[at] < VolumeDetector().score(steady).score[at]


def test_the_catalog_of_detectors() -> None:
    assert set(DETECTORS) == {"seasonal", "surprise", "volume"}
