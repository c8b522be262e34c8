"""Which model the drift stage watches, and how it cuts the held-out period into windows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.config import parse_params
from itsm_ml.drift_stages import _windows, monitored
from itsm_ml.errors import ItsmMlError


def params(**drift: object):  # type: ignore[no-untyped-def]
    generator = {"kind": "generator"}
    return parse_params(
        {"tickets": {"source": generator}, "changes": {"source": generator}, "drift": drift}
    )


def test_each_model_is_watched_on_its_table_and_label(tmp_path: Path) -> None:
    routing = monitored(params(), "routing", tmp_path)
    assert (routing.table, routing.label, routing.metric) == (
        "tickets",
        "label_assignment_group",
        "accuracy",
    )
    risk = monitored(params(), "change-risk", tmp_path)
    assert (risk.table, risk.label, risk.metric) == ("changes", "label_failed", "ROC AUC")
    assert risk.model_path == tmp_path / "models" / "change_risk.joblib"
    with pytest.raises(ItsmMlError, match="unknown model 'sla'"):
        monitored(params(), "sla", tmp_path)


def test_windows_by_count_or_by_calendar_period() -> None:
    frame = pd.DataFrame({"opened_at": pd.date_range("2025-01-01", periods=1000, freq="h")})
    by_count = _windows(frame, params(window_rows=400))
    assert [len(w) for _, w in by_count] == [400, 400, 200]
    by_week = _windows(frame, params(window_period="7D"))
    assert sum(len(w) for _, w in by_week) == 1000 and len(by_week) == 6
    untimed = _windows(frame.assign(opened_at=pd.NaT), params(window_period="7D"))
    assert [len(w) for _, w in untimed] == [500, 500]  # no time: by count, whatever asked
