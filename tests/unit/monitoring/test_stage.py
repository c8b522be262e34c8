"""Which model the drift stage watches, and how it cuts the held-out period into windows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.config import parse_params
from itsm_ml.errors import ItsmMlError
from itsm_ml.monitoring.stage import _labelled_in_span, _windows, latest_windows, monitored


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
    assert risk.model_path == tmp_path / "models" / "change-risk.joblib"
    assert risk.registered == tmp_path / "reports" / "models" / "change-risk" / "registered.json"
    with pytest.raises(ItsmMlError, match=r"unknown model .sla.: params.yaml `models` declares"):
        monitored(params(), "sla", tmp_path)


def test_windows_by_count_or_by_calendar_period() -> None:
    frame = pd.DataFrame({"opened_at": pd.date_range("2025-01-01", periods=1000, freq="h")})
    by_count = _windows(frame, params(window_rows=400))
    assert [len(w) for _, w in by_count] == [400, 400, 200]
    by_week = _windows(frame, params(window_period="7D"))
    assert sum(len(w) for _, w in by_week) == 1000 and len(by_week) == 6
    untimed = _windows(frame.assign(opened_at=pd.NaT), params(window_period="7D"))
    assert [len(w) for _, w in untimed] == [500, 500]  # no time: by count, whatever asked


def test_latest_windows_are_cut_back_from_the_newest_record() -> None:
    frame = pd.DataFrame({"opened_at": pd.date_range("2025-01-01", periods=1300, freq="h")}).sample(
        frac=1, random_state=0
    )  # any order in, time order out
    newest = latest_windows(frame, params(window_rows=500), 2)
    assert [len(w) for _, w in newest] == [500, 500]
    assert newest[-1][1]["opened_at"].max() == frame["opened_at"].max()
    assert newest[0][1]["opened_at"].max() < newest[1][1]["opened_at"].min()
    few = latest_windows(frame.head(700), params(window_rows=500), 2)
    assert [len(w) for _, w in few] == [200, 500]  # the short one is the older
    by_week = latest_windows(frame, params(window_period="7D"), 2)
    assert len(by_week) == 2 and by_week[-1][1]["opened_at"].max() == frame["opened_at"].max()


def test_labels_count_in_the_window_where_they_arrived() -> None:
    pool = pd.DataFrame(
        {
            "opened_at": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-08", "2025-01-09"]),
            "closed_at": pd.to_datetime(["2025-01-09", "2025-01-03", "2025-01-10", None]),
            "label": ["a", "b", "c", None],
        }
    )
    week2 = pool.iloc[2:]
    arrived, basis = _labelled_in_span(
        pool, week2, "label", pd.Timestamp("2025-01-08"), pd.Timestamp.max
    )
    # Opened in week 1, closed in week 2: it counts in week 2; the open ticket counts nowhere.
    assert sorted(arrived["label"]) == ["a", "c"] and basis == "closed in window"
    untimed = pool.drop(columns="closed_at")
    arrived, basis = _labelled_in_span(
        untimed, untimed.iloc[2:], "label", pd.Timestamp("2025-01-08"), pd.Timestamp.max
    )
    assert list(arrived["label"]) == ["c"] and basis.startswith("opened in window")
