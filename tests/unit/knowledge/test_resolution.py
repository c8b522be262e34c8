import numpy as np
import pandas as pd
import pytest

from itsm_ml.knowledge.resolution import ResolutionSuggester, neighbour_votes
from itsm_ml.knowledge.retrieval import Neighbours


def test_votes_weigh_close_neighbours_more_and_keep_a_share_for_every_class() -> None:
    labels = np.array(["reset", "reset", "replace", None], dtype=object)
    classes = np.array(["reset", "replace"], dtype=object)
    found = Neighbours(np.array([[2, 0, 1, 3, -1]]), np.array([[5.0, 1.0, 1.0, 0.5, -np.inf]]))
    shares = np.exp(neighbour_votes(found, labels, classes, np.array([0.5, 0.5]), 0.1))
    assert shares.sum() == pytest.approx(1.0)
    # one close "replace" outweighs two far "reset"; the unlabelled neighbour counts for none
    assert shares[0, 1] > shares[0, 0] > 0
    expected_reset = (2 * np.exp(-4.0) + 0.05) / (1 + 2 * np.exp(-4.0) + 0.1)
    assert shares[0, 0] == pytest.approx(expected_reset)


def test_a_ticket_with_no_neighbour_gets_the_class_frequencies() -> None:
    suggester = ResolutionSuggester(top=2).fit(pd.Series(["a"] * 3 + ["b"]))
    empty = Neighbours(np.full((1, 3), -1), np.full((1, 3), -np.inf))
    found = suggester.suggest(empty)
    assert found.classes.tolist() == [["a", "b"]]
    np.testing.assert_allclose(found.probabilities, [[0.75, 0.25]])
    assert not found.auto.any()


def test_auto_suggest_only_for_classes_that_reached_the_target_on_validation() -> None:
    rng = np.random.default_rng(0)
    indexed = pd.Series(["reset"] * 60 + ["replace"] * 60 + ["rare"] * 5)
    # validation: "reset" tickets have only reset neighbours; "replace" tickets a mix
    positions, truth = [], []
    for _ in range(80):
        positions.append(rng.choice(60, 5, replace=False))
        truth.append("reset")
    for _ in range(80):
        positions.append(np.r_[rng.choice(60, 3, replace=False) + 60, rng.choice(60, 2)])
        truth.append("replace" if rng.random() < 0.6 else "reset")
    found = Neighbours(np.array(positions), np.zeros((160, 5)))
    suggester = ResolutionSuggester(min_class_support=30).fit(indexed)
    suggester.calibrate(found, pd.Series(truth))
    assert np.isfinite(suggester.thresholds_["reset"])
    assert not np.isfinite(suggester.thresholds_["replace"])
    assert not np.isfinite(suggester.thresholds_.get("rare", np.inf))  # too few indexed
    suggestions = suggester.suggest(found)
    assert suggestions.auto[:80].all() and not suggestions.auto[80:].any()
