"""Drift statistics: quiet on windows from the reference's own distribution, loud on each
kind of drift, and honest about windows too small to judge."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from itsm_ml.config import DriftParams
from itsm_ml.monitoring.drift import (
    ReferenceProfile,
    count_windows,
    jensen_shannon,
    persistent_alerts,
    psi,
    time_windows,
)

WORDS = ["printer", "vpn", "password", "outlook", "laptop", "screen", "access", "network"]


def tickets(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = rng.choice(["desk", "network", "apps", "sap", "db"], n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    callers = [f"caller {i}" for i in rng.zipf(1.6, n)]  # a long tail: new callers keep coming
    texts = [" ".join(rng.choice(WORDS, 4)) for _ in range(n)]
    return pd.DataFrame(
        {
            "opened_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(n) * 10, "min"),
            "group": groups,
            "caller": callers,
            "size": rng.lognormal(2, 1, n),
            "text": texts,
            "channel": pd.Series(rng.choice(["phone", "email"], n)).where(rng.random(n) > 0.05),
        }
    )


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return ReferenceProfile(DriftParams()).fit(
        tickets(6000, 0),
        numeric=["size"],
        categorical=["group", "caller", "channel"],
        text="text",
    )


def test_psi_and_jensen_shannon_are_zero_for_equal_shares_and_grow_with_change() -> None:
    same = np.array([0.5, 0.3, 0.2])
    assert psi(same, same) == 0 and jensen_shannon(same, same) == 0
    assert 0 < psi(same, np.array([0.4, 0.4, 0.2])) < psi(same, np.array([0.2, 0.4, 0.4]))
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_windows_from_the_reference_distribution_are_quiet(profile: ReferenceProfile) -> None:
    flagged = [profile.score(tickets(500, seed)).drifted for seed in range(1, 21)]
    # A long-tailed caller brings new values all the time: expected, so no alarm.
    assert sum(flagged) <= 1


def test_a_new_value_in_five_percent_of_a_window_is_drift(profile: ReferenceProfile) -> None:
    window = tickets(500, 30)
    window.loc[window.index[:25], "group"] = "a group never seen"
    report = profile.score(window)
    group = next(f for f in report.features if f.feature == "group")
    assert report.drifted and group.drifted
    assert group.details["new_share"] == pytest.approx(0.05)
    assert group.details["new_values"] == {"a group never seen": 25}


def test_a_ten_point_drop_of_the_main_category_is_drift(profile: ReferenceProfile) -> None:
    window = tickets(500, 31)
    desk = window.index[window.group == "desk"][:50]
    window.loc[desk, "group"] = "network"
    group = next(f for f in profile.score(window).features if f.feature == "group")
    assert group.drifted and group.details["largest_shift_category"] == "desk"
    assert group.details["largest_shift"] == pytest.approx(-0.1, abs=0.03)


def test_missing_values_and_a_scaled_number_are_drift(profile: ReferenceProfile) -> None:
    window = tickets(500, 32)
    window.loc[window.index[:150], "channel"] = None
    window["size"] = window["size"] * 2
    drifted = set(profile.score(window).drifted_features)
    assert {"channel (missing)", "size"} <= drifted
    size = next(f for f in profile.score(window).features if f.feature == "size")
    assert size.details["window_median"] > 1.5 * size.details["reference_median"]
    assert 0 < size.details["ks"] <= 1 and size.details["wasserstein_iqr"] > 0


def test_an_emerging_term_in_text_is_drift_and_named(profile: ReferenceProfile) -> None:
    window = tickets(500, 33)
    window.loc[window.index[:50], "text"] += " zentrix"
    terms = next(f for f in profile.score(window).features if f.feature == "text (terms)")
    assert terms.drifted and "zentrix" in terms.details["emerging_terms"]
    auc = next(f for f in profile.score(window).features if f.feature == "text")
    assert 0.5 < auc.value < 1


def test_a_small_window_gets_no_verdict(profile: ReferenceProfile) -> None:
    window = tickets(100, 34)
    window["group"] = "a group never seen"
    report = profile.score(window)
    assert not report.has_verdict and not report.drifted
    assert "group" in report.drifted_features  # the figures are there, the verdict is not
    json.dumps(report.to_dict(), default=str)


def test_alerts_need_consecutive_drifted_windows() -> None:
    flags = [True, True, False, True, True, True, False]
    assert persistent_alerts(flags, 2) == [False, True, False, False, True, True, False]
    assert persistent_alerts(flags, 1) == flags


def test_windows_by_count_and_by_time_cover_every_row() -> None:
    frame = tickets(1200, 35)
    by_count = list(count_windows(frame, 500, "opened_at"))
    assert [len(part) for _, part in by_count] == [500, 500, 200]
    assert by_count[0][0] == "2025-01-01 to 2025-01-04"
    by_day = list(time_windows(frame, "opened_at", "D"))
    assert sum(len(part) for _, part in by_day) == 1200 and len(by_day) == 9


def test_scoring_before_fitting_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        ReferenceProfile().score(tickets(10, 0))


def test_values_that_come_and_go_over_time_are_expected_when_time_is_given() -> None:
    # Callers churn: each month brings its own (new employees, new sites). Records in time
    # order bring never-seen callers at a rate Good-Turing, which assumes no order, misses.
    rng = np.random.default_rng(5)

    def month(number: int, rows: int = 1000) -> pd.DataFrame:
        regulars = rng.choice([f"regular {i}" for i in range(50)], rows)
        churning = [f"caller {i}" for i in rng.integers(100 * number, 100 * number + 300, rows)]
        callers = np.where(rng.random(rows) < 0.7, regulars, churning)
        opened = pd.Timestamp(f"2025-{number:02d}-01") + pd.to_timedelta(
            rng.integers(0, 27 * 24, rows), "h"
        )
        return pd.DataFrame({"caller": callers, "opened_at": opened})

    history = pd.concat([month(m) for m in range(1, 7)], ignore_index=True)
    later = month(7).head(500)
    unordered = ReferenceProfile().fit(history, categorical=["caller"])
    in_time = ReferenceProfile().fit(history, categorical=["caller"], time=history["opened_at"])
    assert unordered.score(later).drifted  # a false alarm every month
    assert not in_time.score(later).drifted
    assert in_time.categorical_unseen_["caller"] > 0.1 > unordered.categorical_unseen_["caller"]
    # A real newcomer on top of the usual churn is still drift.
    newcomer = later.copy()
    newcomer.loc[newcomer.index[:100], "caller"] = "bulk import robot"
    assert in_time.score(newcomer).drifted


PROFILE_AND_HASH = """
import hashlib, pickle
import numpy as np, pandas as pd
from itsm_ml.monitoring.drift import ReferenceProfile
rng = np.random.default_rng(0)
frame = pd.DataFrame({"caller": [f"caller {i}" for i in rng.integers(0, 300, 2000)],
                      "size": rng.normal(size=2000)})
profile = ReferenceProfile().fit(frame, numeric=["size"], categorical=["caller"])
print(hashlib.md5(pickle.dumps(profile)).hexdigest())
"""


def test_a_profile_pickles_to_the_same_bytes_in_any_process() -> None:
    from tests.hashing import pickled_md5_per_hash_seed

    assert len(pickled_md5_per_hash_seed(PROFILE_AND_HASH)) == 1
