"""Alarms are episodes: a series that stays above the threshold is one alarm."""

from __future__ import annotations

import pandas as pd

from itsm_ml.early_warning.alarms import ALARM_COLUMNS, alarm_events


def scored(series: str, scores: list[float]) -> pd.DataFrame:
    times = pd.date_range("2026-03-02", periods=len(scores), freq="h")
    basis = ["level" if s else "" for s in scores]
    return pd.DataFrame({"series": series, "timestamp": times, "score": scores, "basis": basis})


def test_crossings_close_together_are_one_alarm_and_a_later_one_is_another() -> None:
    a = scored("a", [0, 6, 4, 7, 0, 0, 6, 0, 0, 0, 0, 9, 0])
    b = scored("b", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    events = alarm_events(pd.concat([b, a]).sample(frac=1.0, random_state=1), threshold=5.0)
    assert list(events.columns) == list(ALARM_COLUMNS)
    assert events.series.tolist() == ["a", "a"]
    first, second = events.iloc[0], events.iloc[1]
    assert (first.points, first.peak) == (3, 7)  # 1, 3 and 6: gaps of 2 and 3 points
    assert first.opened_at == a.timestamp[1] and first.last_at == a.timestamp[6]
    assert first.peak_at == a.timestamp[3] and first.basis == "level"
    assert (second.opened_at, second.points) == (a.timestamp[11], 1)
    assert len(alarm_events(a, threshold=5.0, close_after=1)) == 4


def test_no_crossing_gives_an_empty_table_with_the_columns() -> None:
    events = alarm_events(scored("a", [0, 1, 2]), threshold=5.0)
    assert events.empty and list(events.columns) == list(ALARM_COLUMNS)
