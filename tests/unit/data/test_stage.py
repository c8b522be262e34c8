"""The data stages' wiring: which column a split without time keeps the shares of, which
labels validation judges, and what the validated table and the quarantine hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from itsm_ml import io
from itsm_ml.config import parse_params
from itsm_ml.data.stage import Layout, split, validate
from itsm_ml.errors import ValidationFailed


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


def _raw_tickets(n: int = 40) -> pd.DataFrame:
    opened = pd.Timestamp("2025-01-01") + pd.to_timedelta(range(n), unit="D")
    frame = pd.DataFrame(
        {
            "ticket_id": pd.array([f"T{i}" for i in range(n)], dtype="string"),
            "opened_at": opened,
            "closed_at": opened + pd.Timedelta(hours=3),
            "text": pd.array([f"printer {i}" for i in range(n)], dtype="string"),
            "caller": pd.array([f"caller {i % 4}" for i in range(n)], dtype="string"),
            "label_assignment_group": pd.array([f"G{i % 3}" for i in range(n)], dtype="string"),
            "_source_row": pd.array(range(1, n + 1), dtype="Int64"),
        }
    )
    return frame


def _params(**validation: object) -> Any:
    return parse_params(
        {
            "tickets": {
                "source": {"kind": "generator"},
                "validation": {"vocabularies": {}, **validation},
            },
            "changes": {"source": {"kind": "generator"}},
            "models": {
                "routing": {"table": "tickets", "kind": "multiclass", "label": "assignment_group"}
            },
        }
    )


def test_validate_judges_the_labels_of_the_catalogs_models(tmp_path: Path) -> None:
    frame = _raw_tickets().assign(label_assignment_group=pd.array([None] * 40, dtype="string"))
    io.write_table(frame, Layout(tmp_path, "tickets").raw)
    with pytest.raises(ValidationFailed, match="column `label_assignment_group`: rule 'label on"):
        validate(_params(), "tickets", tmp_path)
    report = json.loads(Layout(tmp_path, "tickets").validation_report.read_text())
    assert report["passed"] is False
    assert not Layout(tmp_path, "tickets").validated.exists()


def test_references_a_model_learns_are_not_held_to_label_completeness() -> None:
    from itsm_ml.data.stage import judged_labels

    models = {
        "routing": {"table": "tickets", "kind": "multiclass", "label": "assignment_group"},
        "articles": {"table": "tickets", "kind": "similarity", "label": "knowledge"},
        "codes": {"table": "tickets", "kind": "similarity", "label": "closed_code"},
    }
    raw = {
        "tickets": {"source": {"kind": "generator"}},
        "changes": {"source": {"kind": "generator"}},
    }
    params = parse_params({**raw, "models": models})
    # Only tickets linked to an article carry one: a sparse column is healthy there.
    assert judged_labels(params, "tickets") == ["label_assignment_group", "label_closed_code"]


def test_formulas_are_escaped_in_the_validated_table_and_the_quarantine_csv(
    tmp_path: Path,
) -> None:
    frame = _raw_tickets()
    frame.loc[1, "caller"] = '=HYPERLINK("http://attacker.example","x")'
    frame.loc[2, "caller"] = "@SUM(A1)"
    frame.loc[2, "closed_at"] = pd.Timestamp("2024-01-01")  # quarantined: closed before opened
    layout = Layout(tmp_path, "tickets")
    io.write_table(frame, layout.raw)
    report = validate(_params(max_quarantine_share=0.1), "tickets", tmp_path)
    assert report.passed and report.escaped_cells == 1 and report.quarantined_rows == 1
    valid = pd.read_parquet(layout.validated).set_index("ticket_id")
    assert valid.at["T1", "caller"] == '\'=HYPERLINK("http://attacker.example","x")'
    quarantine = pd.read_csv(layout.quarantine)
    assert quarantine.caller.tolist() == ["'@SUM(A1)"]
    metrics = json.loads(layout.validation_metrics.read_text())
    assert metrics["escaped_cells"] == 1 and metrics["warnings"] == 1
    page = layout.validation_report.with_suffix(".html").read_text()
    assert "1 formula-like cells escaped" in page
