import numpy as np
import pandas as pd
import pytest

from itsm_ml.errors import ConfigError
from itsm_ml.knowledge.retrieval import TicketIndex, top_k


def _tickets() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": ["t1", "t2", "t3", "t4", "t5"],
            "opened_at": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
            ),
            "text": [
                "VPN client disconnects every hour\nThe VPN tunnel drops after an hour",
                "Printer on floor 3 jams\nPaper jam in the printer tray",
                "Password reset needed\nUser locked out after password expiry",
                "VPN disconnects when roaming\nTunnel drops on wifi change",
                "Outlook crashes on start\nMail client crash at launch",
            ],
            "service": ["network", "print", "identity", "network", "mail"],
            "category": ["network", "hardware", "access", "software", "software"],
        }
    )


@pytest.mark.parametrize("method", ["bm25", "dense", "fusion", "fusion_fields"])
def test_a_query_finds_the_ticket_about_the_same_problem(method: str) -> None:
    tickets = _tickets()
    index = TicketIndex(method=method, fields=["service"]).fit(tickets)
    found = index.search(tickets.iloc[[3]], k=1)
    assert found.positions[0, 0] == 0


def test_a_ticket_never_sees_itself_or_a_later_ticket() -> None:
    tickets = _tickets()
    index = TicketIndex().fit(tickets)
    found = index.search(tickets, k=5, exclude=list(range(5)))
    for row, positions in enumerate(found.positions):
        seen = positions[positions >= 0]
        assert row not in seen
        assert (tickets.opened_at.to_numpy()[seen] < tickets.opened_at.iloc[row]).all()
    # the first ticket has no earlier one: nothing, padded with -1 and -inf
    assert (found.positions[0] == -1).all()
    assert np.isneginf(found.scores[0]).all()


def test_a_filter_field_hides_tickets_with_another_value_and_a_boost_lifts_the_same_value() -> None:
    tickets = _tickets()
    query = tickets.iloc[[3]].assign(opened_at=pd.Timestamp("2025-01-01"))
    filtered = TicketIndex(filter=["category"]).fit(tickets).search(query, k=5)
    seen = filtered.positions[0][filtered.positions[0] >= 0]
    assert set(tickets.category.iloc[seen]) == {"software"}

    plain = TicketIndex().fit(tickets).scores(query)
    boosted = TicketIndex(boost={"category": 2.0}).fit(tickets).scores(query)
    lift = boosted[0] - plain[0]
    assert lift[4] == pytest.approx(2.0)  # the other software ticket
    assert lift[0] == pytest.approx(0.0)


def test_a_text_less_export_is_matched_on_its_field_values() -> None:
    tickets = _tickets().drop(columns="text")
    index = TicketIndex(method="fields", fields=["service", "category"]).fit(tickets)
    assert index.signals_ == ["fields"]
    found = index.search(tickets.iloc[[4]].assign(opened_at=pd.Timestamp("2025-01-01")), k=2)
    # t5 itself (not excluded here) shares both values, t4 the category only
    assert list(found.positions[0]) == [4, 3]


def test_standardised_signals_do_not_let_a_long_query_decide() -> None:
    tickets = _tickets()
    long_query = tickets.iloc[[1]].assign(
        text="Printer jam " * 200, opened_at=pd.Timestamp("2025-01-01")
    )
    scores = TicketIndex().fit(tickets).scores(long_query)
    assert np.argmax(scores[0]) == 1
    assert np.isfinite(scores).all()


def test_an_unknown_method_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="retrieval method 'bm52'"):
        TicketIndex(method="bm52").fit(_tickets())


def test_top_k_orders_best_first_and_breaks_ties_by_position() -> None:
    scores = np.array([[0.1, 0.9, 0.9, -np.inf], [-np.inf, -np.inf, 0.2, -np.inf]])
    found = top_k(scores, 3)
    assert found.positions.tolist() == [[1, 2, 0], [2, -1, -1]]


def test_a_large_index_finds_nearly_what_scoring_everything_finds() -> None:
    import pickle

    from itsm_ml.knowledge.retrieval import TicketIndex

    rng = np.random.default_rng(7)
    vocabulary = np.array([f"w{i}" for i in range(400)])
    topics = [rng.choice(400, 12, replace=False) for _ in range(60)]
    n = 3000
    which = rng.integers(0, 60, n)
    tickets = pd.DataFrame(
        {
            "text": [
                " ".join(vocabulary[rng.choice(topics[t], 6)])
                + " "
                + " ".join(rng.choice(vocabulary, 3))
                for t in which
            ],
            "opened_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="min"),
            "service": [f"s{t % 5}" for t in which],
        }
    )
    indexed, queries = tickets.iloc[:2800], tickets.iloc[2800:].reset_index(drop=True)
    settings = {"method": "fusion", "boost": {"service": 0.5}}
    exact = TicketIndex(**settings).fit(indexed)
    large = TicketIndex(**settings, exact_up_to=100, candidates=200).fit(indexed)
    assert large.large_ and not exact.large_
    found, truth = large.search(queries, 5), exact.search(queries, 5)
    overlap = np.mean(
        [len(set(a) & set(b)) / 5 for a, b in zip(found.positions, truth.positions, strict=True)]
    )
    assert overlap > 0.9
    # Candidates respect time as the exact search does, and the index survives pickling.
    late = queries.assign(opened_at=pd.Timestamp("2024-01-01 10:00"))
    early = large.search(late, 5).positions
    assert (indexed.opened_at.to_numpy()[early[early >= 0]] < late.opened_at[0]).all()
    again = pickle.loads(pickle.dumps(large)).search(queries, 5)
    np.testing.assert_array_equal(again.positions, found.positions)
