from __future__ import annotations

from pathlib import Path

import pandas as pd

from itsm_ml.data.profile import label_shares_by_month, plot_profile, profile_table
from itsm_ml.schemas import TICKETS


def frame() -> pd.DataFrame:
    opened = pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-03", "2025-02-10"])
    return pd.DataFrame(
        {
            "ticket_id": ["a", "b", "c", "d"],
            "opened_at": opened,
            "text": ["x", None, "y", "z"],
            "label_category": ["net", "net", "sap", None],
            "_source_row": [1, 2, 3, 4],
        }
    )


def test_profile_counts_labels_missing_shares_and_months() -> None:
    profile = profile_table(frame(), TICKETS)
    assert profile["rows"] == 4 and profile["columns"] == 4  # metadata not counted
    assert profile["time_range"] == {"from": "2025-01-05T00:00:00", "to": "2025-02-10T00:00:00"}
    assert profile["rows_per_month"] == {"2025-01": 2, "2025-02": 2}
    assert profile["missing_share"]["text"] == 0.25
    assert profile["labels"]["label_category"]["top"] == {"net": 2, "sap": 1, "<missing>": 1}
    assert profile["duplicate_records"] == 0
    copied = pd.concat([frame(), frame().iloc[[1]].assign(ticket_id="e", _source_row=5)])
    assert profile_table(copied, TICKETS)["duplicate_records"] == 1


def test_label_shares_sum_to_one_per_month() -> None:
    shares = label_shares_by_month(frame(), TICKETS, "label_category")
    assert shares.loc[pd.Period("2025-01")]["net"] == 1.0
    assert (shares.sum(axis=1).round(9) == 1).all()


def test_plot_is_written_without_a_display(tmp_path: Path) -> None:
    plot_profile(frame(), TICKETS, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
