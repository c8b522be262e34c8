from __future__ import annotations

import pandas as pd

from itsm_ml.data.sources import parsing


def s(*values: object) -> pd.Series:
    return pd.Series(list(values), dtype="string")


def test_timestamps_keep_the_raw_text_of_failures() -> None:
    parsed, failed = parsing.parse_timestamps(
        s("29/2/2016 01:16", "31/02/2016 10:00", pd.NA), "%d/%m/%Y %H:%M"
    )
    assert parsed.iloc[0] == pd.Timestamp("2016-02-29 01:16")
    assert pd.isna(parsed.iloc[1]) and failed.iloc[1] == "31/02/2016 10:00"
    assert pd.isna(failed.iloc[0]) and pd.isna(failed.iloc[2])  # missing is not a failure
    assert str(parsed.dtype) == "datetime64[ns]"


def test_unix_seconds_and_iso_with_offsets() -> None:
    parsed, failed = parsing.parse_timestamps(s("1420046511", "soon"), "unix")
    assert parsed.iloc[0] == pd.Timestamp("2014-12-31 17:21:51")
    assert failed.iloc[1] == "soon"
    parsed, _ = parsing.parse_timestamps(s("2025-03-01T10:00:00+02:00"), "ISO8601")
    assert parsed.iloc[0] == pd.Timestamp("2025-03-01 08:00:00")  # normalised to naive UTC


def test_numbers_reject_text_and_infinity() -> None:
    parsed, failed = parsing.parse_numbers(s("1.5", "big", "inf", " 7 "))
    assert parsed.iloc[0] == 1.5 and parsed.iloc[3] == 7
    assert list(failed.iloc[1:3]) == ["big", "inf"]


def test_integers_reject_fractions() -> None:
    parsed, failed = parsing.parse_integers(s("3", "2.5"))
    assert parsed.iloc[0] == 3 and failed.iloc[1] == "2.5"
    assert str(parsed.dtype) == "Int64"


def test_booleans_follow_the_given_vocabulary() -> None:
    parsed, failed = parsing.parse_booleans(s("true", "false", "maybe"), ["true"], ["false"])
    assert parsed.iloc[:2].tolist() == [True, False]
    assert failed.iloc[2] == "maybe"


def test_join_text_skips_missing_and_blank_parts() -> None:
    index = pd.RangeIndex(3)
    joined = parsing.join_text([s("title", pd.NA, "  "), s("body", "only body", pd.NA)], index)
    assert joined.iloc[0] == "title\nbody"
    assert joined.iloc[1] == "only body"
    assert pd.isna(joined.iloc[2])
