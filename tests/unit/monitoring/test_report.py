"""The drift page renders offline and says what drifted; the timeline draws every window."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from itsm_ml import io
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


SUMMARY = {"windows": 3, "alert_windows": 1, "window": "500 rows", "persistence": 2,
           "min_window": 200}  # fmt: skip
PERFORMANCE = pd.DataFrame({"estimated": [0.7, 0.6, 0.6], "realised": [0.72, 0.5, 0.6]})


def test_the_page_is_offline_escaped_and_names_the_drifted_feature() -> None:
    page = render_html("ticket-routing", "3", SUMMARY, reports())
    assert "http" not in page and "<script>" not in page
    assert "ALERT: persistent drift in 1 of 3 windows" in page
    assert "ci &lt;script&gt;</b>: psi 0.4" in page and "too few rows" in page


def test_the_timeline_has_a_point_per_window_and_feature() -> None:
    table = timeline_table(reports())
    assert table.ratio.tolist() == [0.5, 2.0, 2.0]
    assert table.drifted.tolist() == [False, True, False]  # no verdict, no drift
    figure = timeline_figure(reports(), PERFORMANCE, "title")
    assert len(figure.axes[1].lines) == 2


def test_the_page_carries_the_timeline_png_inline(tmp_path: Path) -> None:
    figure = timeline_figure(reports(), PERFORMANCE, "title")
    page = render_html("ticket-routing", "3", SUMMARY, reports(), timeline=figure)
    assert plt.fignum_exists(figure.number)  # left open for the stage to save
    io.save_figure(figure, tmp_path / "timeline.png")  # what the drift stage writes beside it
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    embedded = base64.b64decode(sources[0].removeprefix("data:image/png;base64,"))
    assert embedded == (tmp_path / "timeline.png").read_bytes()
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing to fetch, no network
    assert "ALERT: persistent drift in 1 of 3 windows" in page
