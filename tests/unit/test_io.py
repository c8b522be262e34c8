from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml import io


def test_atomic_path_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "table.json"
    io.write_json({"v": 1}, target)
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]  # no temporary left behind


def test_csv_for_humans_escapes_formulas_but_keeps_plain_text(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "text": pd.array(
                ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "plain", None], dtype="string"
            ),
            "n": [1, 2, 3, 4, 5, 6],
        }
    )
    io.write_csv_for_humans(frame, tmp_path / "q.csv")
    back = pd.read_csv(tmp_path / "q.csv", dtype=str, keep_default_na=False)
    assert back.text.tolist() == ['\'=HYPERLINK("x")', "'+1", "'-2", "'@SUM(A1)", "plain", ""]
    assert back.n.tolist() == ["1", "2", "3", "4", "5", "6"]


def test_json_has_no_nan(tmp_path: Path) -> None:
    io.write_json({"precision": float("nan"), "limits": [1.0, float("inf")]}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "precision": None,
        "limits": [1.0, None],
    }
