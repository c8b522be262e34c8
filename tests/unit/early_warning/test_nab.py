"""NAB's scoring: the shape of the sigmoid, the probation, and the published detectors'
per-file raw scores and counts reproduced from their result files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from itsm_ml.early_warning.benchmark import published_scores
from itsm_ml.early_warning.nab import (
    PROFILES,
    Profile,
    normalised,
    optimise_threshold,
    probation_rows,
    read_corpus,
    scaled_sigmoid,
    score_file,
    sweep,
)
from itsm_ml.errors import SourceError

DETECTORS = ("numenta", "randomCutForest", "twitterADVec", "windowedGaussian", "knncad", "null")


def test_the_scaled_sigmoid_rewards_early_detections_and_caps_late_false_alarms() -> None:
    np.testing.assert_allclose(
        scaled_sigmoid(np.array([-1.0, -0.5, 0.0])), [0.98661, 0.84828, 0.0], atol=1e-5
    )
    assert scaled_sigmoid(np.array(3.0)) == -1.0 and -1.0 < scaled_sigmoid(np.array(2.9)) < -0.99
    assert probation_rows(4032) == 604 and probation_rows(22695) == 750


def test_one_early_detection_beats_a_late_one_and_a_false_alarm_costs() -> None:
    times = pd.Series(pd.date_range("2024-01-01", periods=1000, freq="h"))
    window = [(str(times[800]), str(times[900]))]
    swept = sweep(times, window, Profile())
    early, late = np.zeros(1000), np.zeros(1000)
    early[805], late[895] = 1.0, 1.0
    assert (
        score_file(early, swept, Profile(), 0.5).score
        > score_file(late, swept, Profile(), 0.5).score
        > 0
    )
    missed = score_file(np.zeros(1000), swept, Profile(), 0.5)
    assert (missed.score, missed.fn, missed.tp) == (-1.0, 101, 0)
    alarm = np.zeros(1000)
    alarm[[500, 805]] = 1.0
    with_alarm = score_file(alarm, swept, Profile(), 0.5)
    assert with_alarm.fp == 1 and with_alarm.score == pytest.approx(
        score_file(early, swept, Profile(), 0.5).score - 0.11
    )
    probation = np.zeros(1000)
    probation[10] = 1.0  # inside the first 15%: not scored
    assert score_file(probation, swept, Profile(), 0.5).fp == 0


@pytest.mark.real_data
def test_the_published_detectors_per_file_scores_are_reproduced(datasets: Path) -> None:
    """Every detector, profile and file of the subset: the raw score to 1e-9 and the counts
    exactly, at the threshold NAB's optimiser chose (the scores files' Threshold)."""
    nab = datasets / "nab"
    windows = json.loads((nab / "labels/combined_windows.json").read_text())
    checked = 0
    for detector in DETECTORS:
        for name, profile in PROFILES.items():
            table = pd.read_csv(nab / f"results/{detector}/{detector}_{name}_scores.csv")
            for _, row in table[table.Detector != "Totals"].iterrows():
                category, file = row.File.split("/")
                results = nab / f"results/{detector}/{category}/{detector}_{file}.gz"
                if not results.exists():
                    continue  # a category the subset leaves out
                with gzip.open(results, "rt") as handle:
                    frame = pd.read_csv(handle, usecols=["timestamp", "anomaly_score"])
                swept = sweep(frame.timestamp, windows[row.File], profile)
                found = score_file(frame.anomaly_score.to_numpy(), swept, profile, row.Threshold)
                where = f"{detector} {name} {row.File}"
                assert found.score == pytest.approx(row.Score, rel=1e-9, abs=1e-9), where
                assert (found.tp, found.tn, found.fp, found.fn) == (
                    row.TP,
                    row.TN,
                    row.FP,
                    row.FN,
                ), where
                checked += 1
    assert checked == len(DETECTORS) * len(PROFILES) * 41


def brute_force(scores: list[np.ndarray], sweeps: list, profile: Profile, thresholds) -> float:
    return max(
        sum(score_file(s, w, profile, t).score for s, w in zip(scores, sweeps, strict=True))
        for t in thresholds
    )


def test_the_optimiser_finds_the_best_threshold_of_all() -> None:
    """Against every distinct score tried one by one, on files with several windows, false
    alarms before, between and after them, and ties."""
    rng = np.random.default_rng(0)
    times = pd.Series(pd.date_range("2024-01-01", periods=600, freq="h"))
    files = [
        (rng.integers(0, 40, 600) / 40.0, [(str(times[200]), str(times[260]))]),
        (
            rng.random(600) ** 3,
            [(str(times[150]), str(times[180])), (str(times[400]), str(times[470]))],
        ),
        (rng.random(600), []),
    ]
    for profile in PROFILES.values():
        sweeps = [sweep(times, windows, profile) for _, windows in files]
        scores = [s for s, _ in files]
        choice = optimise_threshold(scores, sweeps, profile)
        distinct = np.unique(np.concatenate(scores))
        best = brute_force(scores, sweeps, profile, [*distinct, 2.0])
        assert choice.score == pytest.approx(best, abs=1e-9)
        found = sum(
            score_file(s, w, profile, choice.threshold).score
            for s, w in zip(scores, sweeps, strict=True)
        )
        assert found == pytest.approx(choice.score, abs=1e-9)


def test_normalised_scores_place_null_at_zero_and_a_perfect_detector_at_100() -> None:
    profile = PROFILES["standard"]
    assert normalised(-69.0, -69.0, 69, profile) == 0.0
    assert normalised(69.0, -69.0, 69, profile) == 100.0
    assert normalised(0.0, -69.0, 69, profile) == 50.0


@pytest.mark.real_data
def test_on_the_subset_the_optimiser_beats_every_threshold_tried_and_null_is_never_firing(
    datasets: Path,
) -> None:
    corpus = read_corpus(datasets / "nab")
    assert len(corpus) == 41 and sum(len(f.windows) for f in corpus) == 69
    profile = PROFILES["standard"]
    sweeps = [sweep(f.timestamps, f.windows, profile) for f in corpus]
    knncad = published_scores(datasets / "nab", "knncad", corpus)
    choice = optimise_threshold(knncad, sweeps, profile)
    tried = np.quantile(np.concatenate(knncad), np.linspace(0.9, 1.0, 25))
    assert choice.score >= brute_force(knncad, sweeps, profile, tried) - 1e-9
    for name, each in PROFILES.items():
        null = published_scores(datasets / "nab", "null", corpus)
        each_sweeps = [sweep(f.timestamps, f.windows, each) for f in corpus]
        assert optimise_threshold(null, each_sweeps, each).score == -69 * each.fn_weight, name


def test_a_corpus_without_labels_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data" / "cat").mkdir(parents=True)
    with pytest.raises(SourceError, match=r"combined_windows\.json"):
        read_corpus(tmp_path)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text("{}")
    (tmp_path / "data" / "cat" / "a.csv").write_text("timestamp,value\n2024-01-01,1\n")
    with pytest.raises(SourceError, match=r"no entry 'cat/a\.csv'"):
        read_corpus(tmp_path)
