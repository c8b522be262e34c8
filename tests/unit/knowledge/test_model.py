import numpy as np
import pandas as pd
import pytest

from itsm_ml.errors import ItsmMlError
from itsm_ml.knowledge.model import SimilarityModel

FIXES = {
    "vpn": ("VPN tunnel drops after an hour", "reinstalled client"),
    "printer": ("Printer jams on floor three", "replaced roller"),
    "password": ("Locked out after password expiry", "reset password"),
    "mail": ("Outlook crashes when it starts", "rebuilt profile"),
}


def _tickets(n: int, seed: int, start: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    topics = rng.choice(list(FIXES), n)
    noise = ["please help", "urgent", "since this morning", "again", "for the whole team"]
    return pd.DataFrame(
        {
            "ticket_id": [f"{start}-{i}" for i in range(n)],
            "opened_at": pd.Timestamp(start) + pd.to_timedelta(np.arange(n), unit="h"),
            "text": [f"{FIXES[t][0]} {rng.choice(noise)}" for t in topics],
            "service": topics,
            "label_closed_code": [FIXES[t][1] if rng.random() < 0.9 else "no fix" for t in topics],
        }
    )


def test_fit_chooses_a_method_suggests_fixes_and_answers_with_earlier_tickets() -> None:
    train, valid = _tickets(300, 0, "2024-01-01"), _tickets(120, 1, "2024-03-01")
    test = _tickets(60, 2, "2024-05-01")
    model = SimilarityModel(
        label="label_closed_code", fields=["service"], methods=["bm25", "fusion"]
    )
    model.fit(train, valid)
    assert model.method_ in {"bm25", "fusion"}
    assert set(model.selection_) == {"bm25", "fusion"}
    assert model.relevance_metric_ == "precision@5"

    suggestions = model.suggest(test)
    truth = test.label_closed_code.to_numpy()
    accuracy = np.mean(suggestions.classes[:, 0] == truth)
    assert accuracy > 0.8
    assert np.all(np.diff(suggestions.probabilities, axis=1) <= 0)

    similar = model.similar(test.head(2), k=3)
    assert list(similar.columns[:3]) == ["query", "rank", "score"]
    assert {"ticket_id", "label_closed_code", "opened_at"} <= set(similar.columns)
    assert (similar.opened_at < test.opened_at.min()).all()
    assert len(similar) == 6


def test_linked_duplicates_decide_the_method_when_the_export_has_enough() -> None:
    train = _tickets(200, 0, "2024-01-01")
    valid = _tickets(40, 1, "2024-03-01")
    # each validation ticket duplicates the training ticket with the same text start
    first_of = train.drop_duplicates("service").set_index("service").ticket_id
    valid["label_duplicate_of"] = valid.service.map(first_of)
    model = SimilarityModel(label="label_closed_code", methods=["bm25"]).fit(train, valid)
    assert model.relevance_metric_ == "duplicate recall@10"
    assert 0 <= model.selection_["bm25"]["duplicate recall@10"] <= 1


def test_a_missing_label_or_unknown_method_is_refused_before_any_work() -> None:
    train = _tickets(50, 0, "2024-01-01")
    with pytest.raises(ItsmMlError, match="label_resolution"):
        SimilarityModel(label="label_resolution").fit(train, train)
    with pytest.raises(ItsmMlError, match="bm52"):
        SimilarityModel(label="label_closed_code", methods=["bm52"]).fit(train, train)
    with pytest.raises(ItsmMlError, match=r"no ticket text .* and no field"):
        SimilarityModel(label="label_closed_code", methods=["fields"]).fit(train, train)
