"""The data stages' wiring: which column a split without time keeps the shares of."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from itsm_ml import io
from itsm_ml.config import parse_params
from itsm_ml.data.stage import Layout, split


def test_a_table_without_time_is_stratified_on_the_first_label_it_has(tmp_path: Path) -> None:
    params = parse_params(
        {
            "tickets": {"source": {"kind": "generator"}},
            "changes": {"source": {"kind": "generator"}},
            "models": {
                # declared first, but this export lacks it: it must not decide the split
                "priority": {"table": "tickets", "kind": "multiclass", "label": "priority"},
                "category": {"table": "tickets", "kind": "multiclass", "label": "category"},
            },
        }
    )
    frame = pd.DataFrame(
        {
            "ticket_id": [f"t{i}" for i in range(400)],
            "opened_at": pd.Series([pd.NaT] * 400, dtype="datetime64[ns]"),
            "label_category": ["common"] * 360 + ["rare"] * 40,
        }
    )
    io.write_table(frame, Layout(tmp_path, "tickets").validated)
    summary = split(params, "tickets", tmp_path)
    assert summary.figures["method"] == "stratified"
    test = pd.read_parquet(Layout(tmp_path, "tickets").split("test"))
    assert test.label_category.eq("rare").mean() == 0.1  # the shares kept exactly
