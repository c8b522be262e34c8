"""Metrics exports: mapped onto points, refused with the file, column, rule and examples
named, and their sampling (regularity, gaps, repeated times) reported per series."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.config import MetricsCsvSource
from itsm_ml.data.sources.metrics import load_metrics
from itsm_ml.errors import SourceError


def export(tmp_path: Path, rows: list[str], header: str = "time,host,metric,reading") -> Path:
    path = tmp_path / "cpu.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def source(path: Path, **overrides: object) -> MetricsCsvSource:
    mapping = {
        "kind": "metrics_csv",
        "path": str(path),
        "timestamp": "time",
        "value": "reading",
        "series": ("host", "metric"),
        **overrides,
    }
    return MetricsCsvSource.model_validate(mapping)


def minutes(host: str, start: int, count: int, value: float = 1.0) -> list[str]:
    base = pd.Timestamp("2026-03-02 10:00")
    return [
        f"{base + pd.Timedelta(minutes=start + i):%Y-%m-%d %H:%M:%S},{host},cpu,{value + i}"
        for i in range(count)
    ]


def test_points_are_named_by_their_series_columns_and_sampling_is_reported(
    tmp_path: Path,
) -> None:
    rows = minutes("web1", 0, 10) + minutes("web1", 30, 5) + minutes("db1", 0, 6)
    table = load_metrics(source(export(tmp_path, rows)))
    assert list(table.points.columns) == ["series", "timestamp", "value"]
    assert set(table.points.series) == {"web1/cpu", "db1/cpu"}
    web = table.sampling.set_index("series").loc["web1/cpu"]
    assert (web.points, web.gaps, web.largest_gap) == (15, 1, pd.Timedelta(minutes=21))
    assert web.usual_interval == pd.Timedelta(minutes=1) and web.regular_share == 13 / 14
    assert any("'web1/cpu' has 1 gaps" in w and "0 days 00:21:00" in w for w in table.warnings)
    db = table.sampling.set_index("series").loc["db1/cpu"]
    assert (db.gaps, db.regular_share, db.repeated_times) == (0, 1.0, 0)


def test_without_series_columns_the_file_is_one_series(tmp_path: Path) -> None:
    path = export(tmp_path, ["2026-03-02T10:00:00,4.5", "2026-03-02T10:05:00,5"], "time,reading")
    table = load_metrics(source(path, series=()))
    assert table.points.series.unique().tolist() == ["cpu"]
    assert table.points.value.tolist() == [4.5, 5.0]


def test_repeated_times_are_averaged_kept_last_or_refused(tmp_path: Path) -> None:
    rows = [*minutes("web1", 0, 3), "2026-03-02 10:01:00,web1,cpu,9"]
    path = export(tmp_path, rows)
    averaged = load_metrics(source(path))
    assert averaged.points.value.tolist() == [1.0, 5.5, 3.0]
    assert averaged.sampling.repeated_times.tolist() == [1]
    assert any("share their series and time" in w and "averaged" in w for w in averaged.warnings)
    assert load_metrics(source(path, duplicates="last")).points.value.tolist() == [1.0, 9.0, 3.0]
    with pytest.raises(SourceError, match=r"cpu\.csv.*'web1/cpu' at 2026-03-02 10:01:00"):
        load_metrics(source(path, duplicates="error"))


def test_values_that_are_not_numbers_are_refused_or_dropped_within_the_allowed_share(
    tmp_path: Path,
) -> None:
    rows = [*minutes("web1", 0, 9), "2026-03-02 10:09:00,web1,cpu,n/a"]
    path = export(tmp_path, rows)
    with pytest.raises(
        SourceError, match=r"cpu\.csv: column 'reading' must be a finite number.*'n/a'.*10\.0%"
    ):
        load_metrics(source(path))
    table = load_metrics(source(path, max_invalid_share=0.2))
    assert len(table.points) == 9 and any("dropped" in w for w in table.warnings)


def test_times_that_do_not_parse_and_missing_columns_are_named(tmp_path: Path) -> None:
    path = export(tmp_path, [*minutes("web1", 0, 3), "yesterday,web1,cpu,4"])
    with pytest.raises(SourceError, match=r"column 'time' must be a time.*'yesterday'"):
        load_metrics(source(path))
    with pytest.raises(SourceError, match="reading"):
        load_metrics(source(export(tmp_path, ["2026-03-02 10:00:00,web1,cpu"], "time,host,metric")))


@pytest.mark.real_data
def test_a_nab_file_read_as_a_metrics_export_shows_its_repeated_hour(datasets: Path) -> None:
    """NAB's ec2_request_latency_system_failure.csv repeats 03:00 when the clocks change."""
    path = datasets / "nab/data/realKnownCause/ec2_request_latency_system_failure.csv"
    table = load_metrics(MetricsCsvSource(kind="metrics_csv", path=str(path), duplicates="last"))
    row = table.sampling.iloc[0]
    assert row.series == "ec2_request_latency_system_failure"
    assert row.repeated_times >= 1 and row.usual_interval == pd.Timedelta(minutes=5)
    assert table.points.timestamp.is_monotonic_increasing
