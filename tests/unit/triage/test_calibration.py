from __future__ import annotations

import numpy as np

from itsm_ml.triage.calibration import TemperatureScaler


def test_overconfident_scores_are_cooled_and_ranking_kept() -> None:
    rng = np.random.default_rng(0)
    n, classes = 5000, 4
    truth = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), truth] += 1.0
    scaler = TemperatureScaler().fit(logits * 5, truth)  # 5x too sharp
    assert 4 < scaler.temperature_ < 6
    proba = scaler.transform(logits * 5)
    assert np.allclose(proba.sum(axis=1), 1)
    assert (proba.argmax(axis=1) == logits.argmax(axis=1)).all()


def test_unknown_targets_are_skipped() -> None:
    scaler = TemperatureScaler().fit(np.zeros((3, 2)), np.array([-1, -1, -1]))
    assert scaler.temperature_ == 1.0
