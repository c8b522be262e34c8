"""Warnings from the history: one per alarm, with its evidence, owner and runbook, the same
id when found again, and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from itsm_ml.config import EarlyWarningParams, MetricsWatchParams
from itsm_ml.early_warning.watch import incident_fields, watch, write_watch
from itsm_ml.errors import ConfigError


def tickets(seed: int = 0, burst: bool = True) -> pd.DataFrame:
    """Five weeks of Mail and VPN tickets in working hours; Mail has a burst of 14 tickets
    on a Wednesday night."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range("2026-02-02", periods=5 * 168, freq="h")
    working = (hours.hour >= 8) & (hours.hour < 18) & (hours.dayofweek < 5)
    rows = []
    for service, group, rate in (("Mail", "Messaging", 1.5), ("VPN", "Network Ops", 0.8)):
        counts = rng.poisson(np.where(working, rate, 0.05))
        for hour, count in zip(hours, counts, strict=True):
            rows += [
                (hour + pd.Timedelta(minutes=int(m)), service, group)
                for m in rng.integers(0, 60, count)
            ]
    if burst:
        night = pd.Timestamp("2026-03-04 01:00")
        rows += [(night + pd.Timedelta(minutes=10 * i), "Mail", "Service Desk") for i in range(14)]
    return pd.DataFrame(rows, columns=["opened_at", "service", "label_assignment_group"])


def params(**overrides: object) -> EarlyWarningParams:
    return EarlyWarningParams.model_validate(
        {"volume": {"by": ["service"], "min_tickets": 20}, **overrides}
    )


def test_a_burst_becomes_one_warning_with_evidence_owner_and_runbook() -> None:
    runbooks = {"tickets in the last 3 hours": "RB-surge", "tickets in the last hour": "RB-burst"}
    settings = params(runbooks={**runbooks, "VPN": "RB-vpn"})
    result = watch(settings, tickets())
    mail = [w for w in result.warnings if w["series"] == "service=Mail"]
    burst = [w for w in mail if "2026-03-04T01" <= w["opened_at"] < "2026-03-04T06"]
    assert len(burst) == 1
    warning = burst[0]
    assert (
        warning["owner_group"] == "Messaging"
        and warning["owner_basis"] == "most tickets of this value"
    )
    assert warning["signal"].startswith("tickets in the last")
    assert warning["peak"] >= 5.0 and warning["detector"] == "volume"
    assert len(warning["evidence"]) >= settings.evidence
    assert warning["evidence"][-1]["timestamp"] >= warning["opened_at"]
    assert warning["recommended_action"] == runbooks[warning["signal"]]
    assert warning["runbook_basis"] == warning["signal"]
    assert len(result.warnings) <= 3  # five weeks of ordinary tickets raise next to nothing
    again = watch(settings, tickets())
    assert [w["id"] for w in again.warnings] == [w["id"] for w in result.warnings]
    table = result.series.set_index("series")
    assert (
        table.loc["service=Mail", "alarms"] >= 1
        and table.loc["service=Mail", "owner_group"] == "Messaging"
    )


def test_owners_and_runbooks_from_params_win_and_small_values_are_named() -> None:
    frame = tickets()
    frame = pd.concat(
        [frame, pd.DataFrame({"opened_at": [pd.Timestamp("2026-02-10 10:00")], "service": ["Fax"]})]
    )
    settings = params(owners={"Mail": "Mail Team"}, runbooks={"service=Mail": "RB-mail"})
    result = watch(settings, frame)
    burst = next(w for w in result.warnings if w["series"] == "service=Mail")
    assert (burst["owner_group"], burst["owner_basis"]) == ("Mail Team", "Mail")
    assert (burst["recommended_action"], burst["runbook_basis"]) == ("RB-mail", "service=Mail")
    assert any("'service'" in note and "Fax" in note for note in result.notes)


def test_a_metrics_export_is_watched_by_its_own_detector() -> None:
    times = pd.date_range("2026-03-01", periods=3000, freq="5min")
    values = 40 + np.random.default_rng(1).normal(0, 1, 3000)
    values[2500:2520] += 30
    metrics = pd.DataFrame({"series": "web1/cpu", "timestamp": times, "value": values})
    settings = params(
        volume=None,
        metrics=MetricsWatchParams.model_validate(
            {"source": {"kind": "metrics_csv", "path": "unused.csv"}, "detector": "surprise"}
        ),
    )
    result = watch(settings, metrics=metrics)
    assert [w["series"] for w in result.warnings][-1] == "web1/cpu"
    assert any(w["opened_at"] == times[2500].isoformat() for w in result.warnings)
    assert result.warnings[-1]["detector"] == "surprise"


def test_nothing_to_watch_is_refused() -> None:
    with pytest.raises(ConfigError, match="nothing to watch"):
        watch(params(volume=None), tickets())


def test_reports_hold_every_warning_and_a_figure_per_alarmed_series(tmp_path: Path) -> None:
    (tmp_path / "old-series.png").write_bytes(b"stale")
    result = watch(params(), tickets())
    summary = write_watch(result, tmp_path, plots=5)
    written = json.loads((tmp_path / "warnings.json").read_text())
    assert [w["id"] for w in written] == [w["id"] for w in result.warnings]
    assert summary["warnings"] == len(result.warnings) and summary["series"] == 2
    assert "service=Mail" in summary["figures"]
    assert (tmp_path / summary["figures"]["service=Mail"]).read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "old-series.png").exists()
    assert json.loads((tmp_path / "series.json").read_text())[0]["series"] in {
        "service=Mail",
        "service=VPN",
    }


def test_a_threshold_in_params_replaces_the_detectors_own() -> None:
    assert watch(params(thresholds={"volume": 40.0}), tickets()).warnings == []


def test_an_export_without_the_column_is_watched_for_what_it_has(tmp_path: Path) -> None:
    """A desk whose export has no service: nothing fails, the summary says what is missing."""
    result = watch(params(), tickets().drop(columns="service").assign(category="Email"))
    assert result.warnings == [] and result.series.empty
    assert any("no 'service' values" in note for note in result.notes)
    summary = write_watch(result, tmp_path, plots=5)
    assert (summary["series"], summary["warnings"]) == (0, 0) and summary["notes"] == result.notes
    both = watch(
        params(volume={"by": ["service", "category"], "min_tickets": 20}),
        tickets().assign(category="Email"),
    )
    assert {"service=Mail", "category=Email"} <= set(both.series.series)


def test_a_frequency_pandas_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="not a pandas frequency"):
        params(volume={"frequency": "hourly"})


def test_an_incident_says_what_since_when_how_sure_and_what_to_do() -> None:
    settings = params(runbooks={"service=Mail": "RB-mail"})
    warning = next(w for w in watch(settings, tickets()).warnings if w["series"] == "service=Mail")
    fields = incident_fields(warning)
    assert fields["short_description"] == warning["short_description"]
    assert fields["assignment_group"] == "Messaging"
    assert warning["opened_at"] in fields["description"]
    assert "Recommended runbook: RB-mail." in fields["description"]
    assert warning["id"] in fields["description"]
    assert "assignment_group" not in incident_fields({**warning, "owner_group": None})
