"""A detector is monitored for over-alerting, period by period, against its budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from itsm_ml.config import Params, load_params
from itsm_ml.monitoring.detector import periods, summary_of
from tests.unit.early_warning.test_model import (
    LABEL,
    SURGES,
    model,
    split,
    tickets_with_surges,
)

ROOT = Path(__file__).parents[3]


def with_budget(per_day: float) -> Params:
    params = load_params(ROOT / "params.yaml")
    settings = params.early_warning.model_copy(update={"false_alarms_per_day": per_day})
    return params.model_copy(update={"early_warning": settings})


def unlinked_bursts(at: list[str]) -> pd.DataFrame:
    """Bursts nobody attached to a parent: alarms on them are false alarms."""
    rows = [
        (pd.Timestamp(t) + pd.Timedelta(minutes=int(m)), "VPN", None)
        for t in at
        for m in np.linspace(0, 170, 14)
    ]
    return pd.DataFrame(rows, columns=["opened_at", "service", LABEL])


@pytest.fixture(scope="module")
def fitted_and_test() -> tuple[object, pd.DataFrame]:
    train, valid, test = split(tickets_with_surges("2025-01-06", 10, SURGES))
    noisy = pd.concat(
        [test, unlinked_bursts(["2025-03-05 14:00", "2025-03-11 10:00"])], ignore_index=True
    ).sort_values("opened_at", kind="stable")
    return model().fit(train, valid), noisy


def test_periods_over_the_false_alarm_budget_in_a_row_alert(
    fitted_and_test: tuple[object, pd.DataFrame],
) -> None:
    fitted, test = fitted_and_test
    strict = with_budget(0.05)
    reports, level = periods(fitted, strict, test)  # type: ignore[arg-type]
    assert level == pytest.approx(fitted.training_level_)  # type: ignore[attr-defined]
    # Seven days from the period's first day: each unlinked burst falls in its own period.
    assert [r["window"][:10] for r in reports] == ["2025-03-01", "2025-03-08", "2025-03-15"]
    rates = [r["performance"]["false_alarms_per_day"] for r in reports]
    assert rates[0] > 0.05 and rates[1] > 0.05
    assert [r["over_budget"] for r in reports][:2] == [True, True]
    assert [r["alert"] for r in reports][:2] == [False, True]  # drift.persistence 2
    summary = summary_of(reports, {"name": "itsm-x", "version": "2"}, "x", strict)
    assert summary["performance_drifted_windows"] >= 2
    assert summary["performance_metric"] == "false alarms per day"
    assert summary["last_estimated"] == 0.05 and summary["last_realised"] == rates[-1]
    # Within a generous budget the same alarms are no failure.
    lenient = summary_of(periods(fitted, with_budget(5.0), test)[0], {}, "x", with_budget(5.0))  # type: ignore[arg-type]
    assert lenient["performance_drifted_windows"] == 0 and not lenient["performance_alert_at_end"]


def test_a_period_whose_volume_is_far_from_training_is_data_drift(
    fitted_and_test: tuple[object, pd.DataFrame],
) -> None:
    fitted, test = fitted_and_test
    doubled = pd.concat([test, test.assign(**{LABEL: None})], ignore_index=True)
    reports, _ = periods(fitted, with_budget(100.0), doubled.sort_values("opened_at"))  # type: ignore[arg-type]
    assert all(r["drifted"] for r in reports)
    ordinary, _ = periods(fitted, with_budget(100.0), test)  # type: ignore[arg-type]
    assert not any(r["drifted"] for r in ordinary)
