"""LinearEncoder gives the fitted scikit-learn transformers' matrix entry for entry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import OneHotEncoder

from itsm_ml.triage.encoding import LinearEncoder, UnsupportedTransformerError
from itsm_ml.triage.model import MISSING, _linear_features

FIELDS = ["caller", "service"]


def tickets(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = ["vpn", "drops", "outlook", "password", "reset", "printer", "jammed", "SAP", "Ümlaut"]
    return pd.DataFrame(
        {
            "text": [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(rows)],
            "caller": [f"caller {rng.zipf(1.5) % 40}" for _ in range(rows)],
            "service": rng.choice(["email", "network", "erp"], rows),
        }
    )


def as_inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """What TriageModel hands the encoder: strings and None, text '' where missing."""
    found = {c: frame[c].astype("string").to_numpy(dtype=object, na_value=None) for c in FIELDS}
    found["text"] = frame["text"].astype("string").fillna("").to_numpy(dtype=object)
    return found


def prepared(frame: pd.DataFrame) -> pd.DataFrame:
    """What TriageModel hands scikit-learn: missing fields spelled MISSING, texts ''."""
    out = frame.copy()
    out["text"] = out["text"].astype("string").fillna("").astype(str)
    for column in FIELDS:
        out[column] = out[column].astype("string").fillna(MISSING).astype(str)
    return out


def unusual(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing and never-seen values, empty and missing texts, a text of unknown words."""
    out = frame.copy().astype(object)
    out.loc[0, "caller"] = None
    out.loc[1, "service"] = "never seen"
    out.loc[2, "text"] = None
    out.loc[3, "text"] = ""
    out.loc[4, "text"] = "zzzz qqqq"
    out.loc[5, ["caller", "service", "text"]] = [None, None, None]
    return out


def assert_same_matrix(expected: Any, found: Any) -> None:
    expected = expected.tocsr()
    assert found.shape == expected.shape
    assert np.array_equal(found.indptr, expected.indptr)
    assert np.array_equal(found.indices, expected.indices)
    assert np.array_equal(found.data, expected.data)  # bit for bit, not approximately


def test_the_model_s_own_transformers_are_replayed_exactly() -> None:
    train, new = tickets(600, 0), unusual(tickets(200, 1))
    fitted = _linear_features(FIELDS, "text", 0.5).fit(prepared(train))
    found = LinearEncoder(fitted, missing=MISSING).transform(as_inputs(new), len(new))
    assert_same_matrix(fitted.transform(prepared(new)), found)


@pytest.mark.parametrize(
    ("words", "fields"),
    [
        ({"binary": True}, {"handle_unknown": "ignore"}),
        ({"use_idf": False, "sublinear_tf": False}, {"handle_unknown": "infrequent_if_exist"}),
        ({"norm": None, "ngram_range": (1, 3)}, {"handle_unknown": "ignore", "min_frequency": 5}),
        ({"lowercase": False, "analyzer": "char", "ngram_range": (1, 3)}, {"max_categories": 4}),
    ],
)
def test_other_settings_of_the_same_transformers_are_replayed_exactly(
    words: dict[str, Any], fields: dict[str, Any]
) -> None:
    fields = {"handle_unknown": "infrequent_if_exist", **fields}
    fitted = ColumnTransformer(
        [
            ("words", TfidfVectorizer(**words), "text"),
            ("fields", OneHotEncoder(**fields), FIELDS),
        ],
        transformer_weights={"words": 2.0},
        sparse_threshold=1.0,
    ).fit(prepared(tickets(500, 2)))
    new = unusual(tickets(150, 3))
    found = LinearEncoder(fitted, missing=MISSING).transform(as_inputs(new), len(new))
    assert_same_matrix(fitted.transform(prepared(new)), found)


@pytest.mark.parametrize(
    "transformer",
    [
        OneHotEncoder(drop="first"),
        OneHotEncoder(handle_unknown="error"),
    ],
)
def test_a_form_it_does_not_know_is_refused_not_approximated(transformer: Any) -> None:
    fitted = ColumnTransformer([("fields", transformer, FIELDS)], sparse_threshold=1.0).fit(
        prepared(tickets(100, 4))
    )
    with pytest.raises(UnsupportedTransformerError):
        LinearEncoder(fitted, missing=MISSING)


def test_an_l1_norm_is_refused() -> None:
    fitted = ColumnTransformer(
        [("words", TfidfVectorizer(norm="l1"), "text")], sparse_threshold=1.0
    ).fit(prepared(tickets(100, 5)))
    with pytest.raises(UnsupportedTransformerError, match="norm"):
        LinearEncoder(fitted, missing=MISSING)
