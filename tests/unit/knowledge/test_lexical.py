import numpy as np

from itsm_ml.knowledge.lexical import Bm25Index, field_tokens, words


def test_words_are_lower_case_without_stop_words_or_single_letters() -> None:
    assert words("The VPN is DOWN, a b c error-42") == ["vpn", "error", "42"]


def test_field_values_are_single_tokens_and_missing_ones_are_left_out() -> None:
    rows = [("SAP ERP", None), ("", "Network"), (float("nan"), "Mail")]
    assert field_tokens(["ci", "category"], rows) == [
        ["ci=sap erp"],
        ["category=network"],
        ["category=mail"],
    ]


def test_a_long_query_keeps_its_most_telling_terms() -> None:
    documents = [["vpn", "drops"], ["vpn", "slow"], ["printer", "jam"], ["vpn", "login"]]
    index = Bm25Index(max_query_terms=1).fit(documents)
    assert index.query_terms(["vpn", "vpn", "jam", "unknown"]) == ["jam"]
    scores = index.scores(["vpn", "jam"])
    assert scores.shape == (4,)
    assert np.argmax(scores) == 2


def test_an_unknown_query_scores_zero_everywhere() -> None:
    index = Bm25Index().fit([["vpn"], ["printer"]])
    assert not index.scores(["nothing", "known"]).any()
