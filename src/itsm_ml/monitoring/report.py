"""How a drift run is shown: a static HTML page (inline CSS, the timeline plot inline as a data
URI: one file that renders with no network) and the timeline plot."""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from itsm_ml import io

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}.bad{color:#b00020;font-weight:600}
.ok{color:#1b5e20}.muted{color:#777}.verdict{padding:.6rem 1rem;margin:1rem 0;border-radius:4px}
.verdict.alert{background:#fdecea}.verdict.quiet{background:#e8f5e9}
img{max-width:100%;height:auto}
"""


def timeline_table(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (window, feature): the deciding statistic over its threshold (1 = at it)."""
    rows = []
    for position, report in enumerate(reports):
        for feature in report["features"]:
            value, threshold = feature["value"], feature["threshold"]
            ratio = value / threshold if threshold and np.isfinite(value) else np.nan
            rows.append(
                {
                    "window": position,
                    "label": report["window"],
                    "feature": feature["feature"],
                    "ratio": ratio,
                    "drifted": feature["drifted"] and report["has_verdict"],
                }
            )
    return pd.DataFrame(rows)


def timeline_figure(
    reports: list[dict[str, Any]], performance: pd.DataFrame, title: str, top: int = 8
) -> Figure:
    """Top: each feature's statistic against its threshold per window (the most drifted
    features). Bottom: estimated and realised performance per window, alerts shaded."""
    import matplotlib.pyplot as plt

    table = timeline_table(reports)
    fig, (upper, lower) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    if not table.empty:
        worst = table.groupby("feature")["ratio"].max().sort_values(ascending=False).index[:top]
        for feature in worst:
            part = table[table.feature == feature]
            upper.plot(part.window, part.ratio, marker="o", ms=3, label=feature)
        upper.axhline(1.0, ls="--", color="grey", lw=1, label="threshold")
        upper.set_yscale("symlog", linthresh=1)
    upper.set(ylabel="statistic / its threshold", title=title)
    upper.legend(fontsize=7, ncol=2, loc="upper left")
    positions = np.arange(len(reports))
    if not performance.empty:
        lower.plot(positions, performance.estimated, marker="o", label="estimated (at once)")
        lower.plot(positions, performance.realised, marker="s", label="realised (after close)")
    for position, report in enumerate(reports):
        if report.get("alert"):
            lower.axvspan(position - 0.5, position + 0.5, color="#fdecea")
            upper.axvspan(position - 0.5, position + 0.5, color="#fdecea")
    lower.set(xlabel="window", ylabel=str(performance.attrs.get("metric", "performance")))
    lower.set_xticks(positions, [r["window"] for r in reports], rotation=45, ha="right", fontsize=7)
    lower.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return cast("Figure", fig)


def _check_html(check: dict[str, Any] | None) -> str:
    """The performance check of a window: labels that arrived in it against their promise."""
    if not check:
        return ""
    if not check["has_verdict"]:
        return (
            f'<br><span class="muted">{check["rows"]} records {html.escape(check["basis"])}:'
            " too few to judge performance</span>"
        )
    css = "bad" if check["drifted"] else "ok"
    return (
        f'<br><span class="{css}">{html.escape(check["metric"])} of {check["rows"]} records'
        f" {html.escape(check['basis'])}: {check['realised']:.3f} against"
        f" {check['estimated']:.3f} promised (z {check['z']:.1f})</span>"
    )


def _timeline_html(timeline: Figure | None) -> str:
    """The timeline figure as an inline PNG: the page needs neither the PNG beside it nor a
    network (it travels alone, as an MLflow artifact or by mail)."""
    if timeline is None:
        return ""
    data = base64.b64encode(io.figure_png(timeline)).decode("ascii")
    alt = (
        "Per window: each feature's statistic against its threshold (top); estimated and"
        " realised performance, alerts shaded (bottom)"
    )
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def render_html(
    model: str,
    version: str,
    summary: dict[str, Any],
    reports: list[dict[str, Any]],
    *,
    timeline: Figure | None = None,
) -> str:
    """The drift page; with `timeline` (the figure of `timeline_figure`), the figure inline
    under the verdict. The figure stays open: the caller saves or closes it."""
    esc = html.escape
    alerts = summary["alert_windows"]
    verdict = "alert" if alerts else "quiet"
    headline = (
        f"ALERT: persistent drift in {alerts} of {summary['windows']} windows"
        if alerts
        else f"No persistent drift over {summary['windows']} windows"
    )
    rows = []
    for report in reports:
        drifted = [f for f in report["features"] if f["drifted"]]
        status = (
            '<span class="muted">too few rows</span>'
            if not report["has_verdict"]
            else '<span class="bad">ALERT</span>'
            if report.get("alert")
            else '<span class="bad">drifted</span>'
            if report.get("flagged", report["drifted"])
            else '<span class="ok">quiet</span>'
        )
        detail = "".join(
            f"<li><b>{esc(f['feature'])}</b>: {esc(f['statistic'])} {f['value']:.3g}"
            f" (threshold {f['threshold']:.3g})</li>"
            for f in drifted
        )
        performance = report.get("performance", {})
        figures = " &middot; ".join(
            f"{esc(k)} {v:.3f}" for k, v in performance.items() if isinstance(v, float)
        ) + _check_html(report.get("performance_check"))
        rows.append(
            f"<tr><td>{esc(report['window'])}</td><td>{report['rows']}</td><td>{status}</td>"
            f"<td><ul>{detail}</ul></td><td>{figures}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Drift of {esc(model)} v{esc(version)}</title><style>{_CSS}</style></head>
<body><h1>Drift of <code>{esc(model)}</code> version {esc(version)}</h1>
<p>Reference: the training data of this version &middot; {summary["windows"]} windows of
{esc(str(summary["window"]))} &middot; persistence {summary["persistence"]} &middot;
no verdict below {summary["min_window"]} rows</p>
<div class="verdict {verdict}">{esc(headline)}</div>
{_timeline_html(timeline)}
<table><thead><tr><th>window</th><th>rows</th><th>verdict</th><th>drifted features</th>
<th>performance</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
</body></html>
"""


def budget_figure(
    reports: list[dict[str, Any]],
    summary: dict[str, Any],
    *,
    metric: str,
    budget: float,
    budget_label: str,
    title: str,
    judged: tuple[str, str, str, str, str],
) -> Figure:
    """Per period: a model's load (`performance[metric]`) against its budget, over-budget
    periods in red; below, what it was there to find (`judged`: the count's key, the found
    key, their legends, the axis label), alert periods shaded in both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    total_key, found_key, total_label, found_label, axis_label = judged
    figure, (upper, lower) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    positions = np.arange(len(reports))
    rates = [r["performance"][metric] for r in reports]
    colours = ["#c0392b" if r["over_budget"] else "#33658a" for r in reports]
    upper.bar(positions, rates, color=colours)
    upper.axhline(budget, ls="--", color="grey", lw=1, label=budget_label)
    upper.set(
        ylabel=metric.replace("_", " "), title=f"{summary['model']} v{summary['version']}: {title}"
    )
    upper.legend(fontsize=8, loc="upper left")
    lower.bar(
        positions,
        [r["performance"][total_key] for r in reports],
        color="#dddddd",
        label=total_label,
    )
    lower.bar(
        positions,
        [r["performance"][found_key] for r in reports],
        color="#27ae60",
        label=found_label,
    )
    for position, report in enumerate(reports):
        if report.get("alert"):
            for axis in (upper, lower):
                axis.axvspan(position - 0.5, position + 0.5, color="#fdecea", zorder=0)
    lower.set(ylabel=axis_label)
    lower.set_xticks(positions, [r["window"] for r in reports], rotation=45, ha="right", fontsize=7)
    lower.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    return cast("Figure", figure)
