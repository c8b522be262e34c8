from __future__ import annotations

import bz2
import gzip
import lzma
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.data.sources.csv_files import read_csv_as_text, reporting_read_progress
from itsm_ml.errors import SourceError
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


VALID = (BROKEN / "valid.csv").read_bytes()


@pytest.mark.parametrize(
    ("name", "pack"),
    [
        ("plain_named.csv.gz", lambda b: b),
        ("gzip_named.csv", gzip.compress),
        ("export.csv.bz2", bz2.compress),
        ("export.csv.xz", lzma.compress),
    ],
)
@pytest.mark.parametrize("with_progress", [False, True])
def test_compression_is_read_from_the_content_not_the_name(
    tmp_path: Path, name: str, pack: Callable[[bytes], bytes], with_progress: bool
) -> None:
    path = tmp_path / name
    path.write_bytes(pack(VALID))
    expected = read_csv_as_text(BROKEN / "valid.csv")
    if with_progress:
        with reporting_read_progress(lambda done, total: None):
            frame = read_csv_as_text(path)
    else:
        frame = read_csv_as_text(path)
    pd.testing.assert_frame_equal(frame, expected)


def test_a_cut_short_gzip_names_the_file_the_byte_the_line_and_the_fix(tmp_path: Path) -> None:
    packed = gzip.compress(VALID * 300)
    path = tmp_path / "export.csv.gz"
    path.write_bytes(packed[: len(packed) // 2])

    with pytest.raises(SourceError) as caught:
        read_csv_as_text(path)

    message = str(caught.value)
    assert str(path) in message and "cut short" in message
    assert f"of {len(packed) // 2:,}" in message, "which compressed byte"
    line = int(re.search(r"after line ([\d,]+)", message).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert 0 < line < VALID.count(b"\n") * 300, "how far the CSV got"
    assert "gzip -t export.csv.gz" in message and "copy or export the file again" in message


def test_a_gzip_cut_inside_its_first_block_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv.gz"
    path.write_bytes(gzip.compress(VALID)[:40])
    with pytest.raises(SourceError, match=r"tiny\.csv\.gz: the gzip stream is cut short"):
        read_csv_as_text(path)


def test_a_corrupt_gzip_says_corrupt(tmp_path: Path) -> None:
    packed = bytearray(gzip.compress(VALID * 50))
    packed[-8] ^= 0xFF  # the CRC of the content: every byte decompresses, the check fails
    path = tmp_path / "export.csv.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(
        SourceError, match=r"export\.csv\.gz: the gzip stream is corrupt near.*damaged"
    ):
        read_csv_as_text(path)


def test_a_zstd_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 40)
    with pytest.raises(SourceError, match="zstd-compressed, which is not read here"):
        read_csv_as_text(path)


def test_a_wrong_delimiter_is_named_in_one_short_message(tmp_path: Path) -> None:
    columns = [f"column_{i}" for i in range(40)]
    path = tmp_path / "export.csv"
    path.write_text(";".join(columns) + "\n" + ";".join("x" for _ in columns) + "\n")

    with pytest.raises(SourceError) as caught:
        read_csv_as_text(path, columns=columns)

    message = str(caught.value)
    assert "the file is ';'-separated" in message and "delimiter: ';'" in message
    assert "did you mean" not in message
    assert len(message) < 1_000


def test_did_you_mean_is_cut_to_the_best_three(tmp_path: Path) -> None:
    present = [f"field {name}" for name in "abcdefgh"]
    path = tmp_path / "export.csv"
    path.write_text(",".join(present) + "\n" + ",".join("x" for _ in present) + "\n")
    wanted = [f"field_{name}" for name in "abcdefgh"]

    with pytest.raises(SourceError) as caught:
        read_csv_as_text(path, columns=wanted)

    assert str(caught.value).count("did you mean") == 3
