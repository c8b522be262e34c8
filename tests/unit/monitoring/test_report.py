"""The drift page renders offline and says what drifted; the timeline draws every window."""

from __future__ import annotations

import pandas as pd

from itsm_ml.monitoring.report import render_html, timeline_figure, timeline_table


def reports() -> list[dict[str, object]]:
    feature = {"feature": "ci <script>", "statistic": "psi", "value": 0.4, "threshold": 0.2}
    return [
        {"window": "w1", "rows": 500, "has_verdict": True, "drifted": False, "alert": False,
         "features": [{**feature, "value": 0.1, "drifted": False}], "performance": {"estimated": 0.7}},
        {"window": "w2", "rows": 500, "has_verdict": True, "drifted": True, "alert": True,
         "features": [{**feature, "drifted": True}], "performance": {"estimated": 0.6}},
        {"window": "w3", "rows": 20, "has_verdict": False, "drifted": False, "alert": False,
         "features": [{**feature, "drifted": True}], "performance": {}},
    ]  # fmt: skip


def test_the_page_is_offline_escaped_and_names_the_drifted_feature() -> None:
    summary = {"windows": 3, "alert_windows": 1, "window": "500 rows", "persistence": 2,
               "min_window": 200}  # fmt: skip
    page = render_html("ticket-routing", "3", summary, reports())
    assert "http" not in page and "<script>" not in page
    assert "ALERT: persistent drift in 1 of 3 windows" in page
    assert "ci &lt;script&gt;</b>: psi 0.4" in page and "too few rows" in page


def test_the_timeline_has_a_point_per_window_and_feature() -> None:
    table = timeline_table(reports())
    assert table.ratio.tolist() == [0.5, 2.0, 2.0]
    assert table.drifted.tolist() == [False, True, False]  # no verdict, no drift
    performance = pd.DataFrame({"estimated": [0.7, 0.6, 0.6], "realised": [0.72, 0.5, 0.6]})
    figure = timeline_figure(reports(), performance, "title")
    assert len(figure.axes[1].lines) == 2
