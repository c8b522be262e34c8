import numpy as np

from itsm_ml.knowledge.relevance import fit_relevance
from itsm_ml.knowledge.retrieval import Neighbours


def _neighbours(rng: np.random.Generator, queries: int) -> tuple[Neighbours, np.ndarray]:
    """Scores whose rank-1 neighbours share the label far more often than rank-10 ones."""
    scores = np.sort(rng.normal(size=(queries, 10)), axis=1)[:, ::-1] + 3
    share = 1 / (1 + np.exp(-(scores - 3)))  # higher score: likelier the same label
    same = rng.random(scores.shape) < share
    positions = np.arange(queries * 10).reshape(queries, 10)
    indexed = np.where(same.ravel(), "a", "b").astype(object)
    return Neighbours(positions, scores), indexed


def test_relevance_follows_the_observed_share_and_orders_with_the_score() -> None:
    rng = np.random.default_rng(0)
    fitted, indexed = _neighbours(rng, 2000)
    relevance = fit_relevance(fitted, indexed, np.full(2000, "a", dtype=object))
    test, test_indexed = _neighbours(rng, 2000)
    found = relevance.probabilities(test)
    same = test_indexed[test.positions] == "a"
    assert abs(found.mean() - same.mean()) < 0.02
    top, bottom = found[:, 0], found[:, -1]
    assert top.mean() > bottom.mean() + 0.2
    assert abs(top.mean() - same[:, 0].mean()) < 0.03


def test_missing_neighbours_get_zero_and_one_sided_labels_a_constant() -> None:
    positions = np.array([[0, 1, -1]])
    scores = np.array([[2.0, 1.0, -np.inf]])
    found = Neighbours(positions, scores)
    constant = fit_relevance(found, np.array(["a", "a"], dtype=object), np.array(["a"], object))
    assert constant.model is None
    np.testing.assert_allclose(constant.probabilities(found), [[1.0, 1.0, 0.0]])
    unlabelled = fit_relevance(found, np.array(["a", "b"], dtype=object), np.array([None]))
    np.testing.assert_allclose(unlabelled.probabilities(found), [[0.0, 0.0, 0.0]])
