"""A data profile of a canonical table: counts, time range, labels, missing values, and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from itsm_ml.schemas import TableSchema, is_label, is_metadata

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TOP_CLASSES = 20


def _iso(value: Any) -> str | None:
    return None if pd.isna(value) else pd.Timestamp(value).isoformat()


def profile_table(frame: pd.DataFrame, schema: TableSchema) -> dict[str, Any]:
    """Everything a data scientist checks first, as plain JSON-ready data."""
    columns = [c for c in frame.columns if not is_metadata(c)]
    times = frame[schema.time_column].dropna() if schema.time_column in frame else pd.Series()
    labels: dict[str, Any] = {}
    for column in (c for c in columns if is_label(c)):
        counts = frame[column].astype("string").fillna("<missing>").value_counts()
        labels[column] = {
            "classes": int(frame[column].nunique(dropna=True)),
            "top": {str(k): int(v) for k, v in counts.head(TOP_CLASSES).items()},
            "other": int(counts.iloc[TOP_CLASSES:].sum()),
        }
    text_lengths: dict[str, float] = {}
    if schema.text_column and schema.text_column in frame:
        lengths = frame[schema.text_column].str.len().dropna()
        if len(lengths):
            text_lengths = {q: float(lengths.quantile(p)) for q, p in (("p50", 0.5), ("p95", 0.95))}
    content = [c for c in columns if c != schema.id_column]
    return {
        "table": schema.name,
        "rows": len(frame),
        # Same content under another id: copies that may land on both sides of a split.
        "duplicate_records": int(frame.duplicated(subset=content).sum()) if content else 0,
        "columns": len(columns),
        "time_range": {"from": _iso(times.min()), "to": _iso(times.max())} if len(times) else None,
        "rows_per_month": (
            {str(k): int(v) for k, v in times.dt.to_period("M").value_counts().sort_index().items()}
            if len(times)
            else {}
        ),
        "missing_share": {c: round(float(frame[c].isna().mean()), 4) for c in columns},
        "distinct_values": {c: int(frame[c].nunique(dropna=True)) for c in columns},
        "labels": labels,
        "text_length": text_lengths,
    }


def main_label(frame: pd.DataFrame) -> str | None:
    preferred = ("label_assignment_group", "label_failed", "label_category")
    found = [c for c in preferred if c in frame] or [c for c in frame.columns if is_label(c)]
    return found[0] if found else None


def label_shares_by_month(
    frame: pd.DataFrame, schema: TableSchema, label: str, top: int = 8
) -> pd.DataFrame:
    """Share of each of the `top` most frequent classes per month; the rest is 'other'."""
    keys = frame[label].astype("string").fillna("<missing>")
    leaders = keys.value_counts().index[:top]
    month = frame[schema.time_column].dt.to_period("M").rename("month")
    return pd.crosstab(
        month, keys.where(keys.isin(leaders), "other"), normalize="index"
    ).sort_index()


def profile_figure(frame: pd.DataFrame, schema: TableSchema) -> Figure:
    """Four panels: volume over time, main label mix over time, top classes, missing shares."""
    import matplotlib.pyplot as plt

    label = main_label(frame)
    has_time = schema.time_column in frame and frame[schema.time_column].notna().any()
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    fig.suptitle(f"{schema.name}: {len(frame):,} rows", fontsize=14)
    volume, mix, top, missing = axes.ravel()

    if has_time:
        weekly = frame.set_index(schema.time_column).resample("W").size()
        weekly.plot(ax=volume, lw=1.5)
        volume.set_title("rows opened per week")
        volume.set_xlabel("")
    else:
        volume.text(0.5, 0.5, "no timestamps in this source", ha="center", va="center")
        volume.set_axis_off()

    if has_time and label:
        shares = label_shares_by_month(frame, schema, label)
        shares.plot.area(ax=mix, stacked=True, lw=0, legend=False, colormap="tab10")
        mix.legend(fontsize=7, ncol=3, loc="upper left", bbox_to_anchor=(0, -0.12))
        mix.set_title(f"{label} share per month (top 8)")
        mix.set_ylim(0, 1)
        mix.set_xlabel("")
    else:
        mix.text(0.5, 0.5, "label mix over time needs timestamps", ha="center", va="center")
        mix.set_axis_off()

    if label:
        counts = frame[label].astype("string").fillna("<missing>").value_counts().head(15)
        counts.iloc[::-1].plot.barh(ax=top, color="#3b6ea5")
        classes = frame[label].nunique()
        shown = f"15 most frequent of {classes} classes" if classes > 15 else f"{classes} classes"
        top.set_title(f"{label}: {shown}")
    else:
        top.set_axis_off()

    columns = [c for c in frame.columns if not is_metadata(c)]
    shares_missing = frame[columns].isna().mean().sort_values()
    shares_missing.plot.barh(ax=missing, color="#c0504d")
    missing.set_xlim(0, 1)
    missing.set_title("missing share per column")
    missing.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return cast("Figure", fig)


def plot_profile(frame: pd.DataFrame, schema: TableSchema, path: Path) -> None:
    """Save `profile_figure` as a PNG, without needing a display."""
    import matplotlib.pyplot as plt

    from itsm_ml.io import atomic_path

    fig = profile_figure(frame, schema)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
