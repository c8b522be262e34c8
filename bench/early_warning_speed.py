"""Early-warning speed at the size of a large estate: scoring throughput in points per second
per series, and memory per series, with 10,000 series watched by one process.

    uv run python bench/early_warning_speed.py --out reports/bench/early_warning_speed.md

A step is one new point for every series (what a scrape interval brings). Each detector is
first warmed on 200 generated series until every window it scans is full (a step then costs
what it costs in steady state), then that state is copied to 10,000 series and the next
steps are timed: the work of a step does not depend on the values, only on how much state
each series carries. One core does the work (numpy with no
threads of its own for these operations).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import machine

from itsm_ml.early_warning.detectors import (
    SeasonalBaseline,
    StreamingDetector,
    SurpriseDetector,
    VolumeDetector,
)

WARM_SERIES = 200
SERIES = 10_000
TIMED_STEPS = 10
# Points of history that fill each detector's state (its longest window or warm-up).
WARM_STEPS = {"surprise": 3_200, "volume": 400, "seasonal": 400}
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def step_points(series: int, step: int, rng: np.random.Generator) -> pd.DataFrame:
    at = pd.Timestamp("2026-01-05") + pd.Timedelta(minutes=5 * step)
    daily = 50 + 20 * np.sin(2 * np.pi * (at.hour + at.minute / 60) / 24)
    return pd.DataFrame(
        {
            "series": [f"s{i}" for i in range(series)],
            "timestamp": at,
            "value": rng.poisson(daily, series).astype(float),
        }
    )


def widened(detector: StreamingDetector, copies: int) -> None:
    """The state of every series repeated `copies` times, under new names."""
    detector.state = {
        key: np.concatenate([value] * copies) for key, value in detector.state.items()
    }
    count = len(detector.series_rows)
    detector.series_rows = {f"s{i}": i for i in range(count * copies)}


def measure(make: type[StreamingDetector]) -> dict[str, float]:
    rng = np.random.default_rng(0)
    detector = make()
    started = time.perf_counter()
    names = [f"s{i}" for i in range(WARM_SERIES)]
    steps = WARM_STEPS[make.name]
    for step in range(steps):
        points = step_points(WARM_SERIES, step, rng)
        points["series"] = names
        detector.score(points)
    warm_seconds = time.perf_counter() - started
    log(f"{make.name}: warmed {WARM_SERIES:,} series over {steps:,} steps in {warm_seconds:.0f} s")
    widened(detector, SERIES // WARM_SERIES)
    state_bytes = sum(value.nbytes for value in detector.state.values())
    elapsed = []
    for step in range(steps, steps + TIMED_STEPS):
        points = step_points(SERIES, step, rng)
        started = time.perf_counter()
        detector.score(points)
        elapsed.append(time.perf_counter() - started)
    per_step = float(np.median(elapsed))
    log(f"{make.name}: {per_step:.2f} s per step of {SERIES:,} points")
    return {
        "per_step_s": per_step,
        "points_per_s": SERIES / per_step,
        "per_series": 1 / per_step,
        "state_kib_per_series": state_bytes / SERIES / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = {
        make.name: measure(make) for make in (SurpriseDetector, VolumeDetector, SeasonalBaseline)
    }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    lines = [
        "## Early warning: speed at 10,000 series",
        "",
        "Command: `uv run python bench/early_warning_speed.py` (in `make bench`).",
        f"Machine: {machine()}.",
        "",
        f"One step is a new point for each of {SERIES:,} series, scored in one call; the median "
        f"of {TIMED_STEPS} steps after the state was full (see the script's docstring).",
        "",
        "| detector | seconds per step | points per second | points per second per series | "
        "state per series (KiB) | state for 10,000 series (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['per_step_s']:.3f} | {row['points_per_s']:,.0f} | "
            f"{row['per_series']:.2f} | {row['state_kib_per_series']:.1f} | "
            f"{row['state_kib_per_series'] * SERIES / 1024:,.0f} |"
        )
    lines += [
        "",
        f"Peak memory of the process: {peak:.1f} GiB. A series sampled every minute needs "
        "1/60 = 0.017 points per second; the figures above are how far one core is from that.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
