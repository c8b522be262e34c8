from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from itsm_ml.data.sources.csv_files import read_csv_as_text, reporting_read_progress
from tests.conftest import BROKEN


@pytest.mark.parametrize("packed", [False, True])
def test_progress_reaches_the_file_size(tmp_path: Path, packed: bool) -> None:
    data = (BROKEN / "valid.csv").read_bytes()  # header + 20 rows
    path = tmp_path / ("t.csv.gz" if packed else "t.csv")
    path.write_bytes(gzip.compress(data) if packed else data)
    seen: list[tuple[int, int]] = []
    with reporting_read_progress(lambda done, total: seen.append((done, total))):
        frame = read_csv_as_text(path, columns=["number", "group"])
    assert len(frame) == 20 and list(frame.columns) == ["number", "group"]
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_without_a_progress_scope_the_file_is_read_by_path() -> None:
    frame = read_csv_as_text(BROKEN / "valid.csv")
    assert frame.shape == (20, 8)


def test_cells_stay_text_and_only_missing_markers_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\ufeffid,region,code\n1,NA,007\n2,?,\n", encoding="utf-8")
    frame = read_csv_as_text(path, missing_values=("?", ""))
    assert list(frame.columns) == ["id", "region", "code"]  # byte-order mark dropped
    assert frame.region.tolist()[0] == "NA"  # North America, not a missing value
    assert frame.code.tolist()[0] == "007"  # leading zeros kept
    assert frame.region.isna().tolist() == [False, True]
