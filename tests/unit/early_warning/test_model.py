"""The catalog's detector: labelled windows from parent incidents, NAB on a period, and a
model whose threshold comes from validation and whose state moves on with each point."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from itsm_ml.early_warning.model import (
    DetectorModel,
    judge_model,
    judge_period,
    labelled_windows,
)
from itsm_ml.errors import SourceError

LABEL = "label_parent_incident"


def tickets_with_surges(
    start: str, weeks: int, surges: list[tuple[str, str]], seed: int = 0
) -> pd.DataFrame:
    """Two services with a steady background (more by day), and 12-incident surges at the
    given (service, hour) attached to one parent each."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(start, periods=weeks * 168, freq="1h")
    rows = []
    for service, rate in (("Email", 0.6), ("VPN", 0.4)):
        busy = np.where((hours.hour >= 8) & (hours.hour < 18), rate * 2, rate / 4)
        counts = rng.poisson(busy)
        for hour, count in zip(hours, counts, strict=True):
            for _ in range(count):
                rows.append((hour + pd.Timedelta(minutes=int(rng.integers(0, 60))), service, None))
    for number, (service, at) in enumerate(surges):
        for minute in np.sort(rng.integers(0, 180, 12)):
            rows.append(
                (pd.Timestamp(at) + pd.Timedelta(minutes=int(minute)), service, f"P{number}")
            )
    frame = pd.DataFrame(rows, columns=["opened_at", "service", LABEL])
    return frame.sort_values("opened_at", kind="stable").reset_index(drop=True)


def model(**overrides: object) -> DetectorModel:
    settings: dict[str, object] = {
        "label": LABEL,
        "by": ("service",),
        "frequency": "1h",
        "min_tickets": 50,
        "method": "volume",
        "outage_min_tickets": 3,
        "close_after": 3,
    }
    return DetectorModel(**{**settings, **overrides})  # type: ignore[arg-type]


def test_a_window_spans_the_incidents_of_one_parent_on_one_series() -> None:
    tickets = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(
                ["2025-01-06 09:10", "2025-01-06 10:50", "2025-01-06 11:05", "2025-01-06 12:00",
                 "2025-01-07 09:00", "2025-01-07 09:30", "2025-01-06 11:40"]
            ),
            "service": ["Email", "Email", "Email", "VPN", "VPN", "VPN", "Email"],
            LABEL: ["P1", "P1", "P1", "P1", "P2", "P2", "P3"],
        }
    )  # fmt: skip
    found = labelled_windows(tickets, LABEL, ("service",), "1h", min_tickets=2)
    # P1 on VPN has one incident and P2 two; P3's one incident on Email is not a window.
    assert found == {
        "service=Email": [(pd.Timestamp("2025-01-06 09:00"), pd.Timestamp("2025-01-06 11:00"))],
        "service=VPN": [(pd.Timestamp("2025-01-07 09:00"), pd.Timestamp("2025-01-07 09:00"))],
    }
    assert labelled_windows(tickets, LABEL, ("service",), "1h", min_tickets=4) == {}
    assert labelled_windows(tickets.drop(columns=LABEL), LABEL, ("service",), "1h", 2) == {}


def test_overlapping_outages_of_one_series_make_one_window() -> None:
    tickets = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(
                ["2025-01-06 09:00", "2025-01-06 11:00", "2025-01-06 10:00", "2025-01-06 13:00"]
            ),
            "service": ["Email"] * 4,
            LABEL: ["P1", "P1", "P2", "P2"],
        }
    )
    found = labelled_windows(tickets, LABEL, ("service",), "1h", min_tickets=2)
    assert found == {
        "service=Email": [(pd.Timestamp("2025-01-06 09:00"), pd.Timestamp("2025-01-06 13:00"))]
    }


def scored_points(series: str, hours: int, alarms_at: list[int]) -> pd.DataFrame:
    times = pd.date_range("2025-03-03", periods=hours, freq="1h")
    score = np.zeros(hours)
    score[alarms_at] = 9.0
    return pd.DataFrame(
        {"series": series, "timestamp": times, "value": 1.0, "score": score, "basis": "x"}
    )


def test_nab_on_a_period_is_100_for_the_first_point_of_every_window_and_0_for_silence() -> None:
    points = scored_points("service=Email", 200, [50])
    window = {"service=Email": [(points.timestamp[50], points.timestamp[59])]}
    perfect = judge_period(points, window, threshold=5.0, close_after=3)
    assert perfect.nab_standard == pytest.approx(100.0, abs=1.0)
    assert (perfect.detected, perfect.false_alarms, perfect.median_delay_hours) == (1, 0, 0.0)
    silent = judge_period(points.assign(score=0.0), window, threshold=5.0, close_after=3)
    assert silent.nab_standard == pytest.approx(0.0) and silent.detected == 0
    late = judge_period(scored_points("service=Email", 200, [58]), window, 5.0, 3)
    assert 0 < late.nab_standard < perfect.nab_standard and late.median_delay_hours == 8.0


def test_an_alarm_outside_every_window_is_a_false_alarm_per_day_of_the_period() -> None:
    points = scored_points("service=Email", 240, [50, 150, 151, 152])  # 10 days
    window = {"service=Email": [(points.timestamp[50], points.timestamp[55])]}
    verdict = judge_period(points, window, threshold=5.0, close_after=3)
    # 150-152 is one episode: one false alarm in 239 hours.
    assert (verdict.alarms, verdict.false_alarms) == (2, 1)
    assert verdict.false_alarms_per_day == pytest.approx(1 / (239 / 24))
    assert verdict.nab_low_fp < verdict.nab_standard  # a false positive costs twice as much


def test_a_window_on_a_series_the_detector_never_scored_is_missed() -> None:
    points = scored_points("service=Email", 200, [50])
    windows = {
        "service=Email": [(points.timestamp[50], points.timestamp[59])],
        "service=Printing": [(points.timestamp[100], points.timestamp[110])],
    }
    verdict = judge_period(points, windows, threshold=5.0, close_after=3)
    assert (verdict.windows, verdict.detected) == (2, 1)
    assert verdict.nab_standard == pytest.approx(50.0, abs=1.0)


SURGES = [("Email", f"2025-01-{d:02d} 10:00") for d in (20, 27)] + [
    ("VPN", "2025-02-12 11:00"),
    ("Email", "2025-02-18 14:00"),
    ("VPN", "2025-03-04 10:00"),
    ("Email", "2025-03-12 15:00"),
]


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    at = frame.opened_at
    return (
        frame[at < "2025-02-03"],
        frame[(at >= "2025-02-03") & (at < "2025-03-01")],
        frame[at >= "2025-03-01"],
    )


def test_the_threshold_is_chosen_on_validation_windows_and_judged_on_later_ones() -> None:
    train, valid, test = split(tickets_with_surges("2025-01-06", 10, SURGES))
    fitted = model().fit(train, valid)
    assert fitted.series_ == ["service=Email", "service=VPN"]
    assert fitted.threshold_basis_.startswith("NAB standard optimum on validation")
    assert fitted.validation_["windows"] == 2
    verdict, scored = judge_model(fitted, test)
    assert verdict.windows == 2 and verdict.detected == 2
    assert verdict.nab_standard > 50
    assert scored.timestamp.min() > fitted.last_seen_  # the model's own state is untouched
    assert fitted.threshold_ == pytest.approx(model().fit(train, valid).threshold_)


def test_without_labelled_windows_in_validation_the_detector_keeps_its_own_level() -> None:
    train, valid, _ = split(tickets_with_surges("2025-01-06", 10, SURGES[:2]))
    fitted = model().fit(train, valid)
    assert fitted.threshold_ == fitted.detector_.alarm  # type: ignore[union-attr]
    assert "no labelled window in validation" in fitted.threshold_basis_
    configured = model(configured_threshold=7.5).fit(train, valid)
    assert configured.threshold_ == 7.5


def test_the_model_scores_on_from_its_state_and_refuses_the_past() -> None:
    train, valid, test = split(tickets_with_surges("2025-01-06", 10, SURGES))
    fitted = model().fit(train, valid)
    points = fitted.volume(test, known_only=True)
    # Every watched series over the whole period, zeros included, after training's end.
    assert set(points.series) == set(fitted.series_)
    assert points.groupby("series").size().nunique() == 1
    whole = fitted.fresh().respond(points)
    copy = fitted.fresh()
    halves = pd.concat(
        [
            copy.respond(points.iloc[: len(points) // 2]),
            copy.respond(points.iloc[len(points) // 2 :]),
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(whole, halves)
    assert whole.alarm.equals(whole.score >= fitted.threshold_)
    with pytest.raises(SourceError, match="earlier than the last point"):
        copy.respond(points.head(1))


def test_no_watched_series_is_a_clear_error() -> None:
    train, valid, _ = split(tickets_with_surges("2025-01-06", 10, SURGES))
    with pytest.raises(ValueError, match=r"no value of \['service'\] has 100000 tickets"):
        model(min_tickets=100_000).fit(train, valid)
    assert math.isnan(model().threshold_)
