import numpy as np

from itsm_ml.knowledge.embedding import StaticEmbedder

CORPUS = [
    "the server is down",
    "the printer is out of paper",
    "the laptop battery does not charge",
    "the server does not respond to ping",
]


def test_vectors_are_unit_length_and_an_empty_text_is_zero() -> None:
    vectors = StaticEmbedder().fit(CORPUS).transform([*CORPUS, ""])
    assert vectors.shape == (5, 256)
    np.testing.assert_allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, rtol=1e-5)
    assert not vectors[4].any()


def test_meaning_beats_shared_filler_words() -> None:
    embedder = StaticEmbedder().fit(CORPUS)
    query, server, printer = embedder.transform(
        ["the host is unreachable", "the server is down", "the printer is out of paper"]
    )
    assert query @ server > query @ printer


def test_frequent_tokens_weigh_less_than_rare_ones() -> None:
    embedder = StaticEmbedder().fit(CORPUS)
    common = embedder.transform(["the"])[0]
    mixed = embedder.transform(["the battery"])[0]
    battery = embedder.transform(["battery"])[0]
    assert mixed @ battery > mixed @ common


def test_max_tokens_bounds_what_is_read() -> None:
    embedder = StaticEmbedder(max_tokens=3).fit(CORPUS)
    long = embedder.transform(["server down now " + "printer paper " * 50])[0]
    short = embedder.transform(["server down now"])[0]
    np.testing.assert_allclose(long, short, rtol=1e-5)
