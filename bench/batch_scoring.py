"""Benchmark: batch scoring of incident exports (`itsm-ml score`), speed and memory.

A routing model (TriageModel with the project's default hyper-parameters, text and open-time
fields) is trained on 20,000 generated tickets; generated open incidents are written as
ServiceNow CSV exports of 100,000 and 1,000,000 rows. Each run scores in a fresh child process
that reports its own peak RSS, so the figures do not mix: `score_file` on both exports (flat
memory means a 1M/100k peak ratio near 1), then the Dask engine on a local cluster of two
single-threaded worker processes on the 1M export, with its output compared byte for byte
with the single-process one.

    python bench/batch_scoring.py --out reports/bench/batch_scoring.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine

from itsm_ml.serving.batch_scoring import DEFAULT_CHUNK_ROWS

ROOT = Path(__file__).parents[1]
SIZES = (100_000, 1_000_000)
WORKERS = 2
ROUTING = "routing"  # the catalog's model (params.yaml `models`)
# Columns a ticket gets only once it is worked on: an export of open tickets has none of them.
CLOSED_ONLY = ("resolved_at", "closed_at", "close_code", "made_sla", "reassignment_count")


def _peak_mib() -> float:
    """Peak RSS of this process so far. VmHWM, not getrusage's ru_maxrss: Linux carries the
    parent's RSS at fork into a child's ru_maxrss, which would hide the child's own peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def train(folder: Path) -> tuple[Path, float, str]:
    """The routing model fitted and saved under `folder`; its fit time and registered name."""
    import joblib

    from itsm_ml.catalog import catalog
    from itsm_ml.config import GeneratorSource, TriageParams, load_params
    from itsm_ml.data.sources import load_table
    from itsm_ml.data.split import time_split
    from itsm_ml.triage.stage import build_model

    triage = TriageParams(n_jobs=1)
    routing = catalog(load_params(ROOT / "params.yaml")).get(ROUTING)
    tickets = load_table("tickets", GeneratorSource(kind="generator", rows=20_000, seed=1))
    split = time_split(tickets, "opened_at", 0.15, 0.15)
    # The open-time fields `itsm-ml train routing` takes from this table.
    categorical = [f for f in routing.feature_columns(tickets) if tickets[f].notna().any()]
    started = time.perf_counter()
    model = build_model(triage, categorical, "text")
    target = routing.label
    model.fit(split.train, split.train[target], split.valid, split.valid[target])
    seconds = time.perf_counter() - started
    path = folder / "routing.joblib"
    joblib.dump(model, path)
    return path, seconds, routing.registered_model


def export(folder: Path, rows: int) -> Path:
    from itsm_ml.config import GeneratorSource
    from itsm_ml.data.sources.generator import generate_incidents

    incidents = generate_incidents(GeneratorSource(kind="generator", rows=rows, seed=7))
    path = folder / f"incidents-{rows}.csv"
    incidents.drop(columns=list(CLOSED_ONLY)).to_csv(path, index=False)
    return path


def child(job: dict[str, Any]) -> dict[str, Any]:
    """One scoring run in this (fresh) process; its figures as a dict."""
    import joblib

    from itsm_ml.serving.batch_scoring import score_file, score_file_dask

    model = joblib.load(job["model"])
    options = {
        "kind": "tickets",
        "input_path": Path(job["input"]),
        "output_path": Path(job["output"]),
        "model_name": job["model_name"],
        "version": "bench",
        "chunk_rows": DEFAULT_CHUNK_ROWS,
        "progress": False,
    }
    loaded_mib = _peak_mib()
    started = time.perf_counter()
    if job["engine"] == "local":
        summary = score_file(model, **options)
        workers_mib: list[float] = []
        cluster_seconds = 0.0
    else:
        from distributed import Client, LocalCluster

        opening = time.perf_counter()
        with (
            LocalCluster(
                n_workers=WORKERS, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            started = time.perf_counter()  # the cluster is up: time the scoring only
            cluster_seconds = started - opening
            summary = score_file_dask(model, scheduler=cluster.scheduler_address, **options)
            workers_mib = sorted(client.run(_peak_mib).values())
    return {
        "rows": summary.rows,
        "chunks": summary.chunks,
        "seconds": time.perf_counter() - started,
        "cluster_seconds": cluster_seconds,
        "loaded_mib": loaded_mib,
        "peak_mib": _peak_mib(),
        "workers_mib": workers_mib,
        "sha256": hashlib.sha256(Path(job["output"]).read_bytes()).hexdigest(),
        "output_mb": Path(job["output"]).stat().st_size / 1e6,
    }


def run_child(job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "batch_scoring.md")
    parser.add_argument(
        "--rows",
        default=",".join(str(n) for n in SIZES),
        help="Export sizes, smallest first; the largest one also runs on Dask.",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        folder = Path(tmp)
        model, fit_seconds, model_name = train(folder)
        sizes = [int(n) for n in args.rows.split(",")]
        inputs = {rows: export(folder, rows) for rows in sizes}
        runs = {
            rows: run_child(
                {
                    "engine": "local",
                    "model": str(model),
                    "model_name": model_name,
                    "input": str(path),
                    "output": str(folder / f"local-{rows}.csv"),
                }
            )
            for rows, path in inputs.items()
        }
        big = sizes[-1]
        dask = run_child(
            {
                "engine": "dask",
                "model": str(model),
                "model_name": model_name,
                "input": str(inputs[big]),
                "output": str(folder / f"dask-{big}.csv"),
            }
        )
        sizes_mb = {rows: path.stat().st_size / 1e6 for rows, path in inputs.items()}

    small, large = runs[sizes[0]], runs[big]
    lines = [
        f"| `score_file` | {rows:,} ({sizes_mb[rows]:.0f} MB) | {run['chunks']} "
        f"| {run['seconds']:.1f} | {run['rows'] / run['seconds']:,.0f} "
        f"| {run['loaded_mib']:.0f} | {run['peak_mib']:.0f} |"
        for rows, run in runs.items()
    ]
    lines.append(
        f"| `score_file_dask`, {WORKERS} workers | {big:,} ({sizes_mb[big]:.0f} MB) "
        f"| {dask['chunks']} | {dask['seconds']:.1f} | {dask['rows'] / dask['seconds']:,.0f} "
        f"| {dask['loaded_mib']:.0f} | {dask['peak_mib']:.0f} (workers: "
        f"{', '.join(f'{m:.0f}' for m in dask['workers_mib'])}) |"
    )
    ratio = large["peak_mib"] / small["peak_mib"]
    added = ", ".join(
        f"{rows:,} rows: {run['peak_mib'] - run['loaded_mib']:.0f} MiB"
        for rows, run in runs.items()
    )
    same = "identical" if dask["sha256"] == large["sha256"] else "DIFFERENT"
    table = "\n".join(lines)
    report = f"""## Batch scoring of exports (`itsm-ml score`)

Command: `python bench/batch_scoring.py`. Measured {time.strftime("%Y-%m-%d %H:%M")} on:
{machine()}. Routing model: TriageModel (text + open-time fields, default hyper-parameters,
fitted in {fit_seconds:.0f} s on 20,000 generated tickets); exports: generated open incidents
with ServiceNow field names; chunks of {DEFAULT_CHUNK_ROWS:,} rows (the default); each run in a fresh process,
OMP_NUM_THREADS=1. Goal (issue): memory flat on a file of a million rows.

| engine | rows (CSV size) | chunks | seconds | rows/s | RSS with model loaded (MiB) | peak RSS (MiB) |
|---|---|---|---|---|---|---|
{table}

- Peak RSS {big:,} / {sizes[0]:,} rows: {ratio:.2f}; above the loaded model, scoring adds
  {added}.
- The Dask output of the {big:,}-row export is {same} to the single-process one (SHA-256,
  {large["output_mb"]:.0f} MB). The Dask time is the scoring's; starting the local cluster took
  {dask["cluster_seconds"]:.1f} s more.
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
