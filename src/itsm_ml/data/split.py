"""Train / validation / test splits: by time where time exists, seeded and stratified where not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from itsm_ml.errors import ItsmMlError


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    method: Literal["time", "stratified", "random"]

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def summary(self, time_column: str) -> dict[str, object]:
        out: dict[str, object] = {"method": self.method}
        for name, part in self.parts().items():
            times = part[time_column].dropna() if time_column in part else pd.Series(dtype=object)
            out[name] = {
                "rows": len(part),
                "from": times.min().isoformat() if len(times) else None,
                "to": times.max().isoformat() if len(times) else None,
            }
        return out


def time_split(
    frame: pd.DataFrame, time_column: str, valid_share: float, test_share: float
) -> Split:
    """Oldest rows train, newest rows test; ties at a boundary stay on the same side.

    Rows are cut by position in time order, then each boundary moves back so that rows sharing
    the boundary timestamp all fall in the later part: no training row is later than any test
    row, and none is equal either.
    """
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    times = ordered[time_column]
    if times.isna().any():
        raise ItsmMlError(
            f"time split: {int(times.isna().sum())} rows have no {time_column}; "
            "validation should have quarantined them"
        )
    n = len(ordered)
    test_start = _boundary(times, round(n * (1 - test_share)))
    valid_start = _boundary(times, min(round(n * (1 - test_share - valid_share)), test_start))
    return Split(
        train=ordered.iloc[:valid_start],
        valid=ordered.iloc[valid_start:test_start],
        test=ordered.iloc[test_start:],
        method="time",
    )


def _boundary(times: pd.Series, position: int) -> int:
    if position >= len(times) or position <= 0:
        return max(min(position, len(times)), 0)
    return int(times.searchsorted(times.iloc[position], side="left"))


def stratified_split(
    frame: pd.DataFrame, stratify: str | None, valid_share: float, test_share: float, seed: int
) -> Split:
    """Seeded split keeping class shares; classes too rare to stratify are kept in training."""
    # scikit-learn takes seconds to import; only tables without time need it.
    from sklearn.model_selection import train_test_split

    labels = frame[stratify] if stratify and stratify in frame else None
    if labels is None:
        method: Literal["stratified", "random"] = "random"
        rest, test = train_test_split(frame, test_size=test_share, random_state=seed)
        train, valid = train_test_split(
            rest, test_size=valid_share / (1 - test_share), random_state=seed
        )
        return Split(train, valid, test, method)
    # A class needs a few members to appear in every part; rarer ones train only.
    counts = labels.fillna("<missing>").map(labels.fillna("<missing>").value_counts())
    rare = counts < 5
    common = frame.loc[~rare]
    key = common[stratify].fillna("<missing>").astype(str)
    rest, test = train_test_split(common, test_size=test_share, random_state=seed, stratify=key)
    rest_key = rest[stratify].fillna("<missing>").astype(str)
    train, valid = train_test_split(
        rest, test_size=valid_share / (1 - test_share), random_state=seed, stratify=rest_key
    )
    train = pd.concat([train, frame.loc[rare]])
    return Split(train, valid, test, "stratified")


def split_table(
    frame: pd.DataFrame,
    *,
    time_column: str,
    stratify: str | None,
    valid_share: float,
    test_share: float,
    seed: int,
) -> Split:
    """Time-ordered when the table has times (every row must then have one), stratified otherwise."""
    if len(frame) < 3:
        raise ItsmMlError(f"split: {len(frame)} rows are too few for train, valid and test")
    if time_column in frame and frame[time_column].notna().any():
        return time_split(frame, time_column, valid_share, test_share)
    return stratified_split(frame, stratify, valid_share, test_share, seed)


def ordered_cut(
    frame: pd.DataFrame, time_column: str, head_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first `head_share` of rows in time order, and the rest: the published JIT protocol.

    A stable sort, then a cut at int(n * head_share) rows. Unlike `time_split`, ties at the cut
    are not kept together: this is the protocol the published baselines were measured with
    (scoring by `la` alone reproduces their AUCs exactly with it).
    """
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * head_share)
    return ordered.iloc[:cut], ordered.iloc[cut:]
