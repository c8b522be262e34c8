"""Incident volume: tickets per hour per value, quiet hours as zeros, small values named."""

from __future__ import annotations

import pandas as pd
import pytest

from itsm_ml.early_warning.volume import incident_volume
from itsm_ml.errors import ConfigError


def tickets() -> pd.DataFrame:
    opened = ["2026-03-02 09:10", "2026-03-02 09:50", "2026-03-02 12:05", "2026-03-02 10:30"]
    return pd.DataFrame(
        {
            "opened_at": pd.to_datetime([*opened, "2026-03-02 11:00", None]),
            "service": ["Mail", "Mail", "Mail", "VPN", None, "Mail"],
        }
    )


def test_counts_per_hour_with_quiet_hours_as_zero() -> None:
    volume = incident_volume(tickets(), "service", min_tickets=1)
    mail = volume.points[volume.points.series == "service=Mail"]
    assert mail.timestamp.dt.hour.tolist() == [9, 10, 11, 12]
    assert mail.value.tolist() == [2.0, 0.0, 0.0, 1.0]
    vpn = volume.points[volume.points.series == "service=VPN"]
    assert vpn.value.tolist() == [0.0, 1.0, 0.0, 0.0]  # the same hours for every series
    assert volume.skipped == {}


def test_values_with_too_few_tickets_are_left_out_and_named() -> None:
    volume = incident_volume(tickets(), "service", min_tickets=2)
    assert set(volume.points.series) == {"service=Mail"} and volume.skipped == {"VPN": 1}
    nothing = incident_volume(tickets(), "service", min_tickets=10)
    assert nothing.points.empty and nothing.skipped == {"Mail": 3, "VPN": 1}


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ConfigError, match="no column 'ci'"):
        incident_volume(tickets(), "ci")
