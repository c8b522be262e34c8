"""Conflicts: overlapping windows on the same CI or service, blackouts, business hours."""

from __future__ import annotations

import itertools
from datetime import datetime, time

import numpy as np
import pandas as pd
import pytest

from itsm_ml.change_risk.features.conflicts import (
    conflict_features,
    conflict_report,
    overlapping_pairs,
)
from itsm_ml.config import BlackoutWindow, BusinessHours, ConflictParams

RULES = ConflictParams(
    keys=("ci", "service"),
    business_hours=BusinessHours(start=time(8), end=time(18)),
    blackout_windows=(
        BlackoutWindow(
            name="year-end freeze", start=datetime(2025, 12, 20), end=datetime(2026, 1, 5)
        ),
    ),
)


def calendar(*rows: tuple[str, str, str, str, str, str]) -> pd.DataFrame:
    """(change_id, opened_at, planned_start, planned_end, ci, service) per change."""
    frame = pd.DataFrame(
        rows, columns=["change_id", "opened_at", "planned_start", "planned_end", "ci", "service"]
    )
    for column in ("opened_at", "planned_start", "planned_end"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def test_pairs_match_a_brute_force_check_on_random_windows() -> None:
    rng = np.random.default_rng(3)
    n = 400
    start = pd.Timestamp("2025-03-01") + pd.to_timedelta(rng.integers(0, 30 * 96, n) * 15, "min")
    frame = pd.DataFrame(
        {
            "planned_start": start,
            "planned_end": start + pd.to_timedelta(rng.integers(0, 16, n) * 15, "min"),
            "ci": rng.choice(["a", "b", "c", None], n),
        }
    )
    found = {tuple(sorted(p)) for p in overlapping_pairs(frame, "ci").itertuples(index=False)}
    expected = {
        (i, j)
        for i, j in itertools.combinations(range(n), 2)
        if frame.ci[i] is not None
        and frame.ci[i] == frame.ci[j]
        # A window without a positive length overlaps nothing (documented).
        and frame.planned_end[i] > frame.planned_start[i]
        and frame.planned_end[j] > frame.planned_start[j]
        and frame.planned_start[i] < frame.planned_end[j]
        and frame.planned_start[j] < frame.planned_end[i]
    }
    assert found == expected and len(expected) > 50


def test_a_change_sees_only_changes_requested_before_its_start() -> None:
    changes = calendar(
        ("CHG1", "2025-03-01 09:00", "2025-03-03 22:00", "2025-03-03 23:00", "db-01", "ERP"),
        # Booked onto the same CI after CHG1 had started: CHG1 could not have known.
        ("CHG2", "2025-03-03 22:30", "2025-03-03 22:45", "2025-03-03 23:30", "db-01", "ERP"),
        # Same service, other CI, requested in time: a service conflict for CHG1.
        ("CHG3", "2025-03-02 10:00", "2025-03-03 22:30", "2025-03-04 00:00", "app-01", "ERP"),
        # Ends exactly when CHG1 starts: windows are half-open, no overlap.
        ("CHG4", "2025-03-01 10:00", "2025-03-03 21:00", "2025-03-03 22:00", "db-01", "ERP"),
    )
    features = conflict_features(changes, RULES)
    assert features.overlapping_changes_same_ci.tolist() == [0, 1, 0, 0]
    assert features.overlapping_changes_same_service.tolist() == [1, 2, 2, 0]
    report = conflict_report(changes, RULES)
    assert (
        report[0][0]
        == "overlaps CHG3 on service ERP (Mon 2025-03-03 22:30 to Tue 2025-03-04 00:00)"
    )
    assert any(line.startswith("overlaps CHG1 on ci db-01, service ERP") for line in report[1])
    assert not any("CHG4" in line for line in report[0])


def test_blackout_windows_and_business_hours_are_flagged() -> None:
    changes = calendar(
        ("CHG1", "2025-12-01 09:00", "2025-12-22 10:00", "2025-12-22 11:00", "a", "x"),
        ("CHG2", "2025-12-01 09:00", "2025-12-19 23:00", "2025-12-20 01:00", "b", "x"),
        ("CHG3", "2025-12-01 09:00", "2025-12-10 10:00", "2025-12-10 11:00", "c", "y"),
        ("CHG4", "2025-12-01 09:00", "2025-12-13 10:00", "2025-12-13 11:00", "d", "z"),
        ("CHG5", "2025-12-01 09:00", "2025-12-10 18:00", "2025-12-10 19:00", "e", "w"),
    )
    features = conflict_features(changes, RULES)
    # Monday in the freeze; a window running into the freeze; a Wednesday; a Saturday;
    # a Wednesday at closing time (18:00 is outside 08:00-18:00).
    assert features.in_blackout_window.tolist() == [1, 1, 0, 0, 0]
    assert features.outside_business_hours.tolist() == [0, 1, 0, 1, 1]
    report = conflict_report(changes, RULES)
    assert report[0] == [
        "inside blackout window 'year-end freeze' (Sat 2025-12-20 00:00 to Mon 2026-01-05 00:00)"
    ]
    assert report[3] == ["starts outside business hours (Sat 2025-12-13 10:00)"]
    assert report[2] == []


def test_changes_without_a_window_get_missing_features_and_no_report() -> None:
    changes = calendar(
        ("CHG1", "2025-03-01 09:00", "2025-03-03 22:00", "2025-03-03 23:00", "db-01", "ERP"),
        ("CHG2", "2025-03-01 09:00", None, None, "db-01", "ERP"),  # type: ignore[arg-type]
    )
    features = conflict_features(changes, RULES)
    assert features.iloc[1].isna().all() and features.iloc[0].notna().all()
    assert conflict_report(changes, RULES)[1] == []
    no_windows = changes.drop(columns=["planned_start", "planned_end"])
    assert conflict_features(no_windows, RULES).shape == (2, 0)
    assert conflict_report(no_windows, RULES) == [[], []]


@pytest.mark.parametrize("busy", [7])
def test_long_conflict_lists_are_cut_with_a_count(busy: int) -> None:
    rows = [
        (f"CHG{i}", "2025-03-01 09:00", "2025-03-03 22:00", "2025-03-03 23:00", "db-01", f"s{i}")
        for i in range(busy)
    ]
    report = conflict_report(calendar(*rows), RULES)
    assert len(report[0]) == 5 + 1 + 1  # five listed, "and 1 more", outside business hours
    assert report[0][5] == f"and {busy - 1 - 5} more"
