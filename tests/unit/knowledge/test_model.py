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


def test_respond_answers_like_a_triage_model_with_neighbours_and_runbooks() -> None:
    train, valid = _tickets(300, 0, "2024-01-01"), _tickets(120, 1, "2024-03-01")
    test = _tickets(40, 2, "2024-05-01")
    model = SimilarityModel(
        label="label_closed_code",
        fields=["service"],
        methods=["bm25"],
        returned=["service"],
        runbooks={"suggestion": {"reset password": "RB-7"}, "service": {"vpn": "RB-1"}},
        k=3,
    ).fit(train, valid)
    answer = model.respond(test)
    proba = model.predict_proba(test)
    assert proba.shape == (len(test), len(model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(answer.label) == list(model.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(answer.probability, proba.max(axis=1))
    assert answer.auto_suggest.dtype == bool
    assert all(len(s) == min(3, len(model.classes_)) for s in answer.suggestions)

    # The suggestion's runbook wins over the service's; the service's applies otherwise.
    by_suggestion = answer.label == "reset password"
    assert (answer.runbook[by_suggestion] == "RB-7").all()
    vpn = (test.service == "vpn") & ~by_suggestion
    assert (answer.runbook[vpn] == "RB-1").all()
    assert (answer.runbook_basis[vpn] == "service = vpn").all()
    neither = ~by_suggestion & ~vpn
    assert (answer.runbook[neither] == "").all()

    first = answer.neighbours[0]
    assert len(first) == 3
    assert set(first[0]) == {"id", "opened_at", "score", "relevance", "fields"}
    assert set(first[0]["fields"]) == {"label_closed_code", "service"}
    assert first[0]["score"] >= first[1]["score"] >= first[2]["score"]
    assert all(0 <= n["relevance"] <= 1 for n in first)
    assert all(n["opened_at"] < test.opened_at.min().isoformat() for n in first)
    assert model.uses_text_ and model.categorical_ == ["service"]


def test_relevance_is_the_share_of_neighbours_sharing_the_resolution() -> None:
    from itsm_ml.knowledge.evaluation import label_precision_at

    train, valid = _tickets(300, 0, "2024-01-01"), _tickets(200, 1, "2024-03-01")
    test = _tickets(200, 3, "2024-06-01")
    model = SimilarityModel(label="label_closed_code", methods=["bm25"], k=5).fit(train, valid)
    found = model.neighbours(test, 5)
    relevance = model.relevance_.probabilities(found)
    indexed = model.records_.label_closed_code.to_numpy(dtype=object)
    observed = label_precision_at(found, indexed, test.label_closed_code.to_numpy(object), 5)
    # Calibrated on validation, it promises about what the test neighbours deliver.
    assert abs(relevance[:, :5].mean() - observed) < 0.05
    assert 0.5 < observed < 1.0


def test_an_indexed_ticket_scored_again_never_finds_itself() -> None:
    train, valid = _tickets(200, 0, "2024-01-01"), _tickets(80, 1, "2024-03-01")
    model = SimilarityModel(label="label_closed_code", methods=["bm25"], k=3).fit(train, valid)
    again = valid.drop(columns=["opened_at"]).head(20)  # no time: only the id can exclude it
    found = model.neighbours(again, 3)
    own = [model.records_.ticket_id.tolist().index(i) for i in again.ticket_id]
    assert not (found.positions == np.array(own)[:, None]).any()
    # Without its id nothing tells it apart: it is among its own nearest (many texts tie).
    anonymous = model.neighbours(again.drop(columns=["ticket_id"]), 50)
    assert (anonymous.positions == np.array(own)[:, None]).any(axis=1).mean() > 0.5
