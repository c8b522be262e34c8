"""Metrics exports onto the canonical points table (series, timestamp, value), validated.

What is refused, naming the file, column, rule and example values: a missing column, more
unparseable times or values than `max_invalid_share` allows, and repeated times when
`duplicates: error`. What is reported per series, for a person to read before trusting a
detector on it: how many points, the usual interval and how regular the sampling is, the
gaps (intervals `gap_factor` times the usual one or more) and the largest, and the repeated
times that were merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from itsm_ml.config import MetricsCsvSource
from itsm_ml.data.sources.csv_files import read_csv_as_text
from itsm_ml.data.sources.parsing import parse_numbers, parse_timestamps
from itsm_ml.errors import SourceError

POINT_COLUMNS = ("series", "timestamp", "value")
# Within this share of the usual interval, an interval counts as regular.
REGULAR_TOLERANCE = 0.01


@dataclass(frozen=True)
class MetricsTable:
    points: pd.DataFrame  # series, timestamp, value; by series then time
    sampling: pd.DataFrame  # one row per series: what validation saw
    warnings: list[str] = field(default_factory=list)


def _examples(values: pd.Series, limit: int = 3) -> str:
    return ", ".join(repr(v) for v in values.dropna().unique()[:limit])


def _series_names(rows: pd.DataFrame, source: MetricsCsvSource, path: Path) -> pd.Series:
    if not source.series:
        return pd.Series(path.stem, index=rows.index, dtype="string")
    parts = [rows[column].fillna("").str.strip() for column in source.series]
    names = parts[0]
    for part in parts[1:]:
        names = names + "/" + part
    return names.astype("string")


def load_metrics(source: MetricsCsvSource, root: Path | None = None) -> MetricsTable:
    path = source.resolved_path(root)
    columns = [source.timestamp, source.value, *source.series]
    rows = read_csv_as_text(
        path,
        encoding=source.encoding,
        delimiter=source.delimiter,
        missing_values=source.missing_values,
        columns=columns,
        required=columns,
    )
    warnings: list[str] = []
    times, bad_times = parse_timestamps(rows[source.timestamp], source.time_format)
    values, bad_values = parse_numbers(rows[source.value])
    invalid = bad_times.notna() | bad_values.notna()
    missing = (times.isna() | values.isna()) & ~invalid
    share = float(invalid.mean()) if len(rows) else 0.0
    for column, bad, rule in (
        (source.timestamp, bad_times, f"a time ({source.time_format})"),
        (source.value, bad_values, "a finite number"),
    ):
        if bad.notna().any():
            message = (
                f"{path}: column {column!r} must be {rule}; {int(bad.notna().sum())} of "
                f"{len(rows)} rows are not, e.g. {_examples(bad)}"
            )
            if share > source.max_invalid_share:
                raise SourceError(
                    f"{message} ({share:.1%} of rows; metrics_csv.max_invalid_share is "
                    f"{source.max_invalid_share:.1%})"
                )
            warnings.append(f"{message}: dropped")
    if missing.any():
        warnings.append(f"{path}: {int(missing.sum())} rows without a time or a value: dropped")
    points = pd.DataFrame(
        {
            "series": _series_names(rows, source, path),
            "timestamp": times,
            "value": values.astype(float),
        }
    )[~(invalid | missing)]
    points, merged = _merge_repeats(points, source, path, warnings)
    sampling = _sampling(points, merged, source.gap_factor)
    for _, row in sampling[sampling.gaps > 0].head(5).iterrows():
        warnings.append(
            f"{path}: series {row.series!r} has {row.gaps} gaps of {source.gap_factor:g} times "
            f"its usual interval ({row.usual_interval}) or more; the largest is "
            f"{row.largest_gap}"
        )
    return MetricsTable(points.reset_index(drop=True), sampling, warnings)


def _merge_repeats(
    points: pd.DataFrame, source: MetricsCsvSource, path: Path, warnings: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    ordered = points.sort_values(["series", "timestamp"], kind="stable")
    repeated = ordered.duplicated(["series", "timestamp"], keep=False)
    merged = ordered[repeated].groupby("series").timestamp.nunique()
    if repeated.any():
        example = ordered[repeated].iloc[0]
        message = (
            f"{path}: {int(repeated.sum())} points share their series and time with another "
            f"(rule: one point per series and time), e.g. series {example.series!r} at "
            f"{example.timestamp}"
        )
        if source.duplicates == "error":
            raise SourceError(f"{message}; metrics_csv.duplicates is 'error'")
        warnings.append(f"{message}: {'averaged' if source.duplicates == 'mean' else 'last kept'}")
        grouped = ordered.groupby(["series", "timestamp"], sort=False, as_index=False).value
        ordered = grouped.mean() if source.duplicates == "mean" else grouped.last()
    return ordered, merged


def _sampling(points: pd.DataFrame, merged: pd.Series, gap_factor: float) -> pd.DataFrame:
    rows = []
    for series, group in points.groupby("series", sort=True):
        steps = group.timestamp.diff().dropna()
        usual = steps.median() if len(steps) else pd.NaT
        if len(steps) and usual > pd.Timedelta(0):
            regular = float((abs(steps - usual) <= usual * REGULAR_TOLERANCE).mean())
            gaps = steps[steps >= usual * gap_factor]
        else:
            regular, gaps = float("nan"), steps.iloc[:0]
        rows.append(
            {
                "series": series,
                "points": len(group),
                "first": group.timestamp.min(),
                "last": group.timestamp.max(),
                "usual_interval": usual,
                "regular_share": regular,
                "gaps": len(gaps),
                "largest_gap": gaps.max() if len(gaps) else pd.NaT,
                "repeated_times": int(merged.get(series, 0)),
            }
        )
    columns = [
        "series",
        "points",
        "first",
        "last",
        "usual_interval",
        "regular_share",
        "gaps",
        "largest_gap",
        "repeated_times",
    ]
    return pd.DataFrame(rows, columns=columns)
