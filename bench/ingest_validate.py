"""Benchmark: ingest + validate of the full ServiceNow audit log, beside a plain pandas read.

Each measurement runs in a fresh process, so import costs (GX takes seconds) count as they
do for a user; wall time and peak memory come from the child's own resource usage. The plain
`pd.read_csv` of the same file is the floor any ingest pays, measured in the same run, so the
ratio says what canonicalisation and validation add on this machine.

    make bench    # = python bench/ingest_validate.py --out reports/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import machine

LOG = "servicenow-incident-log/incident_event_log.csv.gz"
GOAL_SECONDS, GOAL_MB = 20.0, 1536.0


def child(kind: str, path: str) -> None:
    started = time.perf_counter()
    if kind == "read_csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype=str)
        print(json.dumps({"rows": len(frame)}))
        return
    from itsm_ml.config import ServiceNowAuditLogSource, ValidationParams
    from itsm_ml.data.sources import load_table
    from itsm_ml.data.stage import validate_loaded

    source = ServiceNowAuditLogSource(kind="servicenow_audit_log", path=path)
    imported = time.perf_counter()
    tickets = load_table("tickets", source)
    ingested = time.perf_counter()
    outcome = validate_loaded("tickets", source, tickets, ValidationParams())
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": len(tickets),
                "import_s": imported - started,
                "ingest_s": ingested - imported,
                "validate_s": done - ingested,
                "passed": outcome.report.passed,
            }
        )
    )


def measure(kind: str, path: Path) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, str(path)], stdout=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert process.stdout is not None
    output = process.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kind} benchmark failed")
    return {**json.loads(output), "wall_s": wall, "peak_mb": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("reports/bench/ingest_validate.md"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    datasets = os.environ.get("ITSM_ML_DATASETS")
    if not datasets:
        raise SystemExit("set ITSM_ML_DATASETS to the folder of the public datasets")
    path = Path(datasets) / LOG
    runs = {kind: [] for kind in ("read_csv", "itsm_ml")}  # type: dict[str, list[dict[str, float]]]
    for _ in range(args.repeats):
        for kind in runs:  # interleaved, so both see the same machine load
            runs[kind].append(measure(kind, path))
    med = {
        kind: {key: statistics.median(r[key] for r in rs) for key in ("wall_s", "peak_mb")}
        for kind, rs in runs.items()
    }
    ours = runs["itsm_ml"]
    phases = {
        key: statistics.median(r[key] for r in ours)
        for key in ("import_s", "ingest_s", "validate_s")
    }
    wall, peak = med["itsm_ml"]["wall_s"], med["itsm_ml"]["peak_mb"]
    verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    report = f"""## Ingest + validate of the ServiceNow audit log

Command: `make bench` (`python bench/ingest_validate.py --out {args.out}`), {args.repeats} runs each,
interleaved, medians. Measured {time.strftime("%Y-%m-%d %H:%M")} on: {machine()}.

Input: `$ITSM_ML_DATASETS/{LOG}`: {runs["read_csv"][0]["rows"]:,} events, collapsed to
{ours[0]["rows"]:,} incidents.
Each run is a fresh process (imports included).

| what | wall time (s) | peak memory (MB) |
|---|---|---|
| plain `pd.read_csv(dtype=str)` of the file (floor) | {med["read_csv"]["wall_s"]:.1f} | {med["read_csv"]["peak_mb"]:.0f} |
| itsm-ml: ingest + validate | {wall:.1f} | {peak:.0f} |
| ratio itsm-ml / plain read | {wall / med["read_csv"]["wall_s"]:.1f}x | {peak / med["read_csv"]["peak_mb"]:.1f}x |

Phases of the itsm-ml run (medians): imports {phases["import_s"]:.1f} s, ingest (read, collapse
to one row per incident, typed parsing) {phases["ingest_s"]:.1f} s, validation (Great
Expectations import and suite) {phases["validate_s"]:.1f} s.

Goal (issue 2): under {GOAL_SECONDS:.0f} s: {verdict(wall < GOAL_SECONDS)}; under 1.5 GB:
{verdict(peak < GOAL_MB)}.
"""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
