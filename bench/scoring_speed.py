"""Benchmark: scoring at the bare model's speed on every path, against `mlflow models serve`.

One run, every path measured against the physical limit of the same model on the same rows:
the features already vectorised in memory, through the bare linear model or booster. Two
families of champions, registered in a throw-away MLflow store:
- text: three text models (category, ticket type, urgency) on the real Endava tickets (title
  and body; their cleaned text and integer codes are all the set has), 15% held out;
- fields: routing, category and priority (LightGBM on the open-time fields) on the real
  ServiceNow incident log, the last 20% by opening time held out;
- change risk on the built-in generator's changes (no public change-request data set has
  planned windows, CIs and services), served beside the text family.
Paths: the bare model's `respond`, the registered pyfunc, batch scoring (`score_file`),
`itsm-ml serve` (`/v1/triage` answers all three models of a family; `/v1/change-risk`) and
`mlflow models serve` on the family's first champion, both started here. The HTTP levels
(concurrency 1, 8, 32) alternate the two servers, `ROUNDS` rounds each; the load generator
shares the 2 cores with the server, so every HTTP figure is conservative.

    python bench/scoring_speed.py --out reports/bench/scoring_speed.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from machine import machine
from serving import (
    as_records,
    free_port,
    load_level,
    load_tickets,
    start_server,
    wait_until_ready,
)

ROOT = Path(__file__).parents[1]
LEVELS = (1, 8, 32)
ROUNDS = 2  # per server and level, alternated
ROUND_SECONDS = 10
SINGLE_CALLS = 300  # one-record calls per in-process path
TEXT_LABELS = {"category": "category", "ticket-type": "ticket_type", "urgency": "urgency"}
FIELD_MODELS = 3  # the first ticket models of params.yaml's catalog, fitted on the fields


@dataclass
class Family:
    name: str  # the project prefix of its registered models
    described: str
    models: dict[str, Any] = field(default_factory=dict)  # catalog name -> fitted model
    registered: dict[str, str] = field(default_factory=dict)
    train: pd.DataFrame = field(default_factory=pd.DataFrame)  # canonical training tickets
    test: pd.DataFrame = field(default_factory=pd.DataFrame)  # canonical held-out tickets
    inputs: list[str] = field(default_factory=list)  # canonical columns the models read
    records: list[dict[str, Any]] = field(default_factory=list)  # ServiceNow records
    fit_seconds: dict[str, float] = field(default_factory=dict)


def endava(datasets: str) -> pd.DataFrame:
    from itsm_ml.config import parse_source
    from itsm_ml.data.sources import load_table

    block = yaml.safe_load((ROOT / "pipelines/sources/endava-tickets.yaml").read_text())
    path = f"{datasets}/endava-tickets-sample/all_tickets_first5431.csv"
    return load_table("tickets", parse_source("tickets", {**block, "path": path}))


def fit_family(
    family: Family,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    labels: dict[str, str],
    features: list[str],
    text: str | None,
) -> None:
    from itsm_ml.config import TriageParams
    from itsm_ml.triage.stage import build_model

    for name, label in labels.items():
        model = build_model(TriageParams(), features, text)
        started = time.perf_counter()
        model.fit(train, train[label], valid, valid[label])
        family.fit_seconds[name] = time.perf_counter() - started
        family.models[name] = model
        family.registered[name] = f"{family.name}-{name}"


def text_family(datasets: str) -> Family:
    from itsm_ml.data.split import stratified_split

    tickets = endava(datasets)
    split = stratified_split(tickets, "label_category", 0.15, 0.15, seed=0)
    family = Family("text", "three text models on the Endava tickets (TF-IDF + linear SVM)")
    labels = {name: f"label_{label}" for name, label in TEXT_LABELS.items()}
    fit_family(family, split.train, split.valid, labels, [], "text")
    family.train = split.train
    family.test = split.test.reset_index(drop=True)
    family.inputs = ["ticket_id", "text"]
    family.records = [
        {"number": row.ticket_id, "short_description": row.text} for row in family.test.itertuples()
    ]
    return family


def fields_family(datasets: str) -> Family:
    from itsm_ml.catalog import catalog
    from itsm_ml.config import load_params

    tickets = load_tickets(datasets).sort_values("opened_at", kind="stable")
    tickets = tickets.reset_index(drop=True)
    test_start = int(len(tickets) * 0.8)
    valid_start = int(test_start * 0.85)
    train, valid = tickets.iloc[:valid_start], tickets.iloc[valid_start:test_start]
    entries = catalog(load_params(ROOT / "params.yaml")).of_family("triage")[:FIELD_MODELS]
    names = ", ".join(entry.name for entry in entries)
    family = Family("fields", f"{names} on the ServiceNow log, open-time fields only")
    features = sorted(
        {f for entry in entries for f in entry.feature_columns(tickets)}
        - {c for c in tickets if tickets[c].isna().all()}
    )
    labels = {entry.name: entry.label for entry in entries}
    fit_family(family, train, valid, labels, features, None)
    family.test = tickets.iloc[test_start:].reset_index(drop=True)
    family.inputs = ["ticket_id", *features]
    family.records = as_records(family.test)
    return family


def change_risk(params: Any) -> tuple[Any, pd.DataFrame, float]:
    from itsm_ml.catalog import catalog
    from itsm_ml.change_risk.stage import build_scorer, split_features
    from itsm_ml.data.sources import load_table
    from itsm_ml.data.split import time_split

    changes = load_table("changes", params.changes.source)
    split = time_split(changes, "opened_at", 0.15, 0.15)
    entry = catalog(params).of_family("change_risk")[0]  # what `itsm-ml train` would take
    numeric, categorical = split_features(split.train, entry.feature_columns(split.train))
    scorer = build_scorer(params.change_risk, numeric, categorical)
    started = time.perf_counter()
    scorer.fit(split.train, split.valid)
    return scorer, split.test.reset_index(drop=True), time.perf_counter() - started


def register(model: Any, name: str, example: pd.DataFrame, work: Path, dataset: str) -> None:
    import joblib
    import mlflow

    from itsm_ml.tracking import registry

    path = work / f"{name}.joblib"
    joblib.dump(model, path)
    registry.log_and_register(
        model=model,
        model_path=path,
        registered_model=name,
        params={},
        metrics={},
        tags={"purpose": "bench/scoring_speed.py"},
        artifacts=[],
        inputs={},
        input_example=example,
        code_path=ROOT / "src" / "itsm_ml",
        dataset_name=dataset,
    )
    mlflow.MlflowClient().set_registered_model_alias(name, registry.CHAMPION, "1")


def family_params(work: Path, family: Family, with_change_risk: bool) -> Path:
    """params.yaml for `itsm-ml serve` answering this family (and change risk)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    labels = TEXT_LABELS if family.name == "text" else {}
    raw["project"] = family.name
    raw["models"] = {
        name: {
            "table": "tickets",
            "kind": "multiclass",
            "label": labels.get(name) or raw["models"][name]["label"],
        }
        for name in family.models
    }
    if with_change_risk:
        raw["models"]["change-risk"] = {"table": "changes", "kind": "binary", "label": "failed"}
    raw["serving"]["poll_seconds"] = 3600  # no registry polls during the measurements
    path = work / family.name / "params.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ------------------------------------------------------------------------- timing helpers


def each_call(call: Callable[[Any], object], inputs: Sequence[Any]) -> np.ndarray:
    """Milliseconds of `call` on each input, after a few warm-up calls."""
    for item in inputs[:5]:
        call(item)
    spent = []
    for item in inputs:
        began = time.perf_counter()
        call(item)
        spent.append(time.perf_counter() - began)
    return np.array(spent) * 1000


def best_of(call: Callable[[], object], repeat: int = 3) -> float:
    """Milliseconds of the fastest of `repeat` calls."""
    spent = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        spent.append(time.perf_counter() - began)
    return min(spent) * 1000


def thousand(frame: pd.DataFrame) -> pd.DataFrame:
    """1,000 rows: the frame repeated as often as needed."""
    copies = -(-1000 // len(frame))
    return pd.concat([frame] * copies, ignore_index=True).iloc[:1000]


def p(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q))


# ------------------------------------------------------------------------- physical limits


def triage_limit(model: Any, frame: pd.DataFrame) -> dict[str, float]:
    """The vectorised features in memory through the bare model of each member the model
    chose (a blend adds its members' costs): the linear SVM or the logistic regression as a
    sparse product with their coefficients, the booster's `Booster.predict`."""
    from itsm_ml.triage.model import _Columns

    columns = _Columns(thousand(frame))
    one, per_thousand = 0.0, 0.0
    for member in model.members_:
        call = _bare_member(model, member, columns)
        one += p(each_call(call, list(range(SINGLE_CALLS))), 50)
        per_thousand += best_of(lambda call=call: call(None))
    return {"one": one, "thousand": per_thousand}


def _bare_member(model: Any, member: str, columns: Any) -> Callable[[int | None], object]:
    """`call(i)` scores row i of the in-memory features, `call(None)` all of them."""
    if member == "booster":
        codes = np.column_stack([model._bucket_codes(columns, c) for c in model.categorical_])
        matrix = codes.astype(float)
        booster = model.booster_.booster_
        single = [matrix[i : i + 1] for i in range(SINGLE_CALLS)]
        return lambda i: booster.predict(matrix if i is None else single[i], raw_score=True)
    if member == "text":
        features, estimator = model._text_features(columns).tocsr(), model.svm_
    else:
        features, estimator = model._onehot(columns).tocsr(), model.logistic_
    coefficients = np.ascontiguousarray(estimator.coef_.T)
    intercept = estimator.intercept_
    rows = [features[i] for i in range(SINGLE_CALLS)]
    return lambda i: (features if i is None else rows[i]) @ coefficients + intercept


def text_reference(family: Family, train: pd.DataFrame, label: str) -> dict[str, float]:
    """A bare scikit-learn TF-IDF (word 1-2 and character 2-5 grams) and linear SVM on the
    text alone: the reference of the issue's target (3.2 ms measured there)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    pipeline = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        ),
        LinearSVC(C=1.0, random_state=0),
    )
    known = train[label].notna()
    pipeline.fit(train.loc[known, "text"].fillna("").tolist(), train.loc[known, label].astype(str))
    texts = thousand(family.test)["text"].fillna("").tolist()
    one = each_call(lambda text: pipeline.decision_function([text]), texts[:SINGLE_CALLS])
    return {"one": p(one, 50), "thousand": best_of(lambda: pipeline.decision_function(texts))}


def change_limit(scorer: Any, changes: pd.DataFrame) -> dict[str, float]:
    batch = thousand(changes)
    matrix, _ = scorer.model._encoded(scorer.featurizer.transform(batch))
    booster = scorer.model.booster_.booster_
    rows = matrix[:SINGLE_CALLS, None]
    return {
        "one": p(each_call(lambda row: booster.predict(row, raw_score=True), rows), 50),
        "one_contrib": p(each_call(lambda row: booster.predict(row, pred_contrib=True), rows), 50),
        "thousand": best_of(lambda: booster.predict(matrix, raw_score=True)),
        "thousand_contrib": best_of(lambda: booster.predict(matrix, pred_contrib=True)),
    }


# ------------------------------------------------------------------------- in-process paths


def in_process(
    model: Any, registered: str, frame: pd.DataFrame, inputs: list[str]
) -> dict[str, float]:
    """`respond` of the bare model and `predict` of the registered pyfunc, one record at a
    time and 1,000 at once."""
    import mlflow

    from itsm_ml.tracking.registry import CHAMPION

    pyfunc = mlflow.pyfunc.load_model(f"models:/{registered}@{CHAMPION}")
    batch = thousand(frame[inputs])
    rows = [batch.iloc[[i]].reset_index(drop=True) for i in range(SINGLE_CALLS)]
    respond = each_call(model.respond, rows)
    through = each_call(pyfunc.predict, rows)
    return {
        "respond_p50": p(respond, 50),
        "respond_p99": p(respond, 99),
        "pyfunc_p50": p(through, 50),
        "pyfunc_p99": p(through, 99),
        "respond_thousand": best_of(lambda: model.respond(batch)),
        "pyfunc_thousand": best_of(lambda: pyfunc.predict(batch)),
    }


def batch_scoring(model: Any, name: str, records: list[dict[str, Any]], work: Path) -> float:
    """Milliseconds per ticket of `score_file` on 10,000 records (a ServiceNow export)."""
    from itsm_ml.serving.batch_scoring import score_file

    rows = pd.DataFrame(records)
    rows = pd.concat([rows] * -(-10_000 // len(rows)), ignore_index=True).iloc[:10_000]
    if "opened_at" not in rows:
        rows["opened_at"] = "2026-01-01 09:00:00"
    source = work / f"{name}-export.csv"
    rows.to_csv(source, index=False)
    began = time.perf_counter()
    score_file(
        model,
        kind="tickets",
        input_path=source,
        output_path=work / f"{name}-scored.csv",
        model_name=name,
        version="1",
        progress=False,
    )
    return (time.perf_counter() - began) * 1000 / len(rows)


# ------------------------------------------------------------------------- the two servers


def start_mlflow(work: Path, registered: str, port: int) -> subprocess.Popen[bytes]:
    from itsm_ml.tracking.registry import CHAMPION

    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow_cli, "models", "serve", "-m", f"models:/{registered}@{CHAMPION}",
        "-p", str(port), "-h", "127.0.0.1", "--env-manager", "local", "-w", "1",
    ]  # fmt: skip
    log = work / f"mlflow-{registered}.log"
    server = subprocess.Popen(command, cwd=work, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return wait_until_ready(server, f"http://127.0.0.1:{port}/ping", log, "mlflow models serve")


def mlflow_bodies(frame: pd.DataFrame, inputs: list[str]) -> list[dict[str, Any]]:
    bodies = []
    for row in frame[inputs].itertuples(index=False):
        record = {k: v for k, v in row._asdict().items() if isinstance(v, str)}
        bodies.append({"dataframe_records": [record]})
    return bodies


def alternate(
    targets: dict[str, tuple[str, list[Any]]], token: str, levels: Sequence[int]
) -> dict[str, dict[int, dict[str, Any]]]:
    """Every target at every level, `ROUNDS` rounds each, the targets taking turns."""
    found: dict[str, dict[int, list[dict[str, Any]]]] = {
        t: {c: [] for c in levels} for t in targets
    }
    for concurrency in levels:
        for _ in range(ROUNDS):
            for name, (url, bodies) in targets.items():
                found[name][concurrency].append(
                    asyncio.run(load_level(url, token, bodies, concurrency, 10**6, ROUND_SECONDS))
                )
    return {
        name: {c: merged(rounds) for c, rounds in per_level.items()}
        for name, per_level in found.items()
    }


def merged(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = np.concatenate([r["latencies_ms"] for r in rounds])
    seconds = sum(r["seconds"] for r in rounds)
    return {
        "requests": sum(r["requests"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
        "per_second": len(latencies) / seconds,
        "per_second_rounds": [r["per_second"] for r in rounds],
        "p50": p(latencies, 50),
        "p99": p(latencies, 99),
        "p99_rounds": [r["p99"] for r in rounds],
    }


# ------------------------------------------------------------------------- report


def ratio(value: float, limit: float) -> str:
    return f"{value / limit:,.1f}x" if limit > 0 else "n/a"


def family_section(
    family: Family,
    limits: dict[str, dict[str, float]],
    paths: dict[str, dict[str, float]],
    batch_ms: float,
    http: dict[str, dict[int, dict[str, Any]]],
    reference: dict[str, float] | None,
) -> str:
    first = next(iter(family.models))
    summed_one = sum(limits[m]["one"] for m in family.models)
    summed_thousand = sum(limits[m]["thousand"] for m in family.models)
    lines = [
        f"### {family.described}",
        "",
        f"Held-out tickets: {len(family.test):,}. Fit times: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in family.fit_seconds.items())
        + ".",
        "",
        "**Per model, in this process** (ms; one ticket: p50 and p99 of "
        f"{SINGLE_CALLS} calls; 1,000 tickets: fastest of 3 calls):",
        "",
        "| model | physical limit, one | respond, one | pyfunc, one (p99) | pyfunc / limit "
        "| physical limit, 1,000 | pyfunc, 1,000 | pyfunc / limit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in family.models:
        limit, path = limits[name], paths[name]
        lines.append(
            f"| {name} | {limit['one']:.3f} | {path['respond_p50']:.2f} "
            f"| {path['pyfunc_p50']:.2f} ({path['pyfunc_p99']:.2f}) "
            f"| {ratio(path['pyfunc_p50'], limit['one'])} | {limit['thousand']:.2f} "
            f"| {path['pyfunc_thousand']:.1f} | {ratio(path['pyfunc_thousand'], limit['thousand'])} |"
        )
    if reference:
        pyfunc = paths[first]["pyfunc_p50"]
        lines += [
            "",
            f"Bare scikit-learn TF-IDF (word 1-2 and char 2-5 grams) + LinearSVC on the text, "
            f"{first}'s label: one ticket p50 **{reference['one']:.2f} ms**, 1,000 tickets "
            f"{reference['thousand']:.0f} ms. {first}'s pyfunc: **{pyfunc:.2f} ms = "
            f"{ratio(pyfunc, reference['one'])} of it** (target: within 2x).",
        ]
    lines += [
        "",
        f"**Batch scoring** (`score_file`, {first}, 10,000 records of a ServiceNow export, "
        f"reading, scoring and writing): {batch_ms:.3f} ms per ticket, "
        f"{ratio(batch_ms, limits[first]['thousand'] / 1000)} of the physical limit in a batch "
        f"({limits[first]['thousand'] / 1000:.4f} ms per ticket).",
        "",
        f"**Over HTTP**, one ticket per request: `itsm-ml serve` `/v1/triage` answers all "
        f"{len(family.models)} models; `mlflow models serve` answers {first} alone. Answers/s "
        "counts model answers (requests/s x models). Rounds alternate; the ranges are the "
        "rounds'.",
        "",
        "| server | concurrency | requests | errors | requests/s | answers/s | p50 ms | p99 ms "
        "| p50 / physical limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for server, per_level in http.items():
        models = len(family.models) if server.startswith("itsm") else 1
        limit = summed_one if server.startswith("itsm") else limits[first]["one"]
        for concurrency, r in per_level.items():
            rounds = r["per_second_rounds"]
            lines.append(
                f"| {server} | {concurrency} | {r['requests']:,} | {r['errors']} "
                f"| {r['per_second']:.0f} ({min(rounds):.0f}-{max(rounds):.0f}) "
                f"| {r['per_second'] * models:.0f} | {r['p50']:.1f} "
                f"| {r['p99']:.1f} ({min(r['p99_rounds']):.0f}-{max(r['p99_rounds']):.0f}) "
                f"| {ratio(r['p50'], limit)} |"
            )
    ours, theirs = http["itsm-ml serve"][8], http["mlflow models serve"][8]
    gain = ours["per_second"] * len(family.models) / theirs["per_second"]
    lines += [
        "",
        f"At concurrency 8: `/v1/triage` p99 **{ours['p99']:.1f} ms**; model answers/s "
        f"**{gain:.1f}x** those of `mlflow models serve` (target: at least 2x). "
        f"The three models' physical limits add up to {summed_one:.3f} ms per ticket and "
        f"{summed_thousand:.1f} ms per 1,000.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports/bench/scoring_speed.md")
    args = parser.parse_args()
    datasets = os.environ.get("ITSM_ML_DATASETS")
    if not datasets:
        raise SystemExit("set ITSM_ML_DATASETS to the folder of the public datasets")
    from itsm_ml.config import load_params
    from itsm_ml.serving.tokens import STORE_NAME, TokenStore
    from itsm_ml.tracking import registry

    work = Path(tempfile.mkdtemp(prefix="itsm-ml-speed-"))
    began = time.perf_counter()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    registry.configure(work)
    sections = []
    try:
        families = [text_family(datasets), fields_family(datasets)]
        scorer, changes, change_fit = change_risk(load_params(ROOT / "params.yaml"))
        for family in families:
            for name, model in family.models.items():
                register(
                    model,
                    family.registered[name],
                    family.test[family.inputs].head(5),
                    work,
                    "tickets",
                )
        register(
            scorer, "text-change-risk", changes[scorer.input_columns_].head(5), work, "changes"
        )
        change_records = change_request_records(changes)
        for family in families:
            limits = {n: triage_limit(m, family.test) for n, m in family.models.items()}
            paths = {
                n: in_process(m, family.registered[n], family.test, family.inputs)
                for n, m in family.models.items()
            }
            first = next(iter(family.models))
            batch_ms = batch_scoring(
                family.models[first], family.registered[first], family.records, work
            )
            reference = None
            if family.name == "text":
                label = f"label_{TEXT_LABELS[first]}"
                reference = text_reference(family, family.train, label)
            folder = family_params(work, family, with_change_risk=family.name == "text").parent
            _, token = TokenStore(folder / STORE_NAME).create("bench", ["admin"])
            itsm_port, mlflow_port = free_port(), free_port()
            itsm = start_server(folder, itsm_port)
            theirs = start_mlflow(work, family.registered[first], mlflow_port)
            try:
                bodies = mlflow_bodies(family.test, family.inputs)
                targets = {
                    "itsm-ml serve": (f"http://127.0.0.1:{itsm_port}/v1/triage", family.records),
                    "mlflow models serve": (f"http://127.0.0.1:{mlflow_port}/invocations", bodies),
                }
                for url, sample in targets.values():  # warm both
                    asyncio.run(load_level(url, token, sample, 4, 100, 20))
                http = alternate(targets, token, LEVELS)
                changes_http = None
                if family.name == "text":
                    url = f"http://127.0.0.1:{itsm_port}/v1/change-risk"
                    asyncio.run(load_level(url, token, change_records, 2, 50, 20))
                    changes_http = alternate({"change-risk": (url, change_records)}, token, (1, 8))
            finally:
                for server in (itsm, theirs):
                    server.terminate()
                    server.wait(timeout=30)
            sections.append(family_section(family, limits, paths, batch_ms, http, reference))
            if changes_http is not None:
                sections.append(change_section(scorer, changes, change_fit, changes_http))
            write(args.out, sections, began)  # a family's figures survive a later failure
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(write(args.out, sections, began))
    return 0


def write(out: Path, sections: list[str], began: float) -> str:
    report = f"""## Scoring speed against the physical limit and `mlflow models serve`

Command: `make bench` (`python bench/scoring_speed.py`). Measured {time.strftime("%Y-%m-%d %H:%M")} on:
{machine()}. Run time {time.perf_counter() - began:.0f} s.
The physical limit of a model: its features already vectorised in memory, through the bare
linear model (a sparse product with its coefficients) or the booster (`Booster.predict`).
Every other figure is given as a multiple of it. HTTP levels: {ROUNDS} rounds of {ROUND_SECONDS} s
per server and concurrency, alternated; the load generator runs on the same 2 cores.

{chr(10).join(sections)}"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    return report


def change_request_records(changes: pd.DataFrame) -> list[dict[str, Any]]:
    """Held-out changes as ServiceNow change_request records."""
    fields = {
        "change_id": "number", "opened_at": "opened_at", "planned_start": "start_date",
        "planned_end": "end_date", "change_type": "type", "ci": "cmdb_ci",
        "service": "business_service", "assignment_group": "assignment_group",
    }  # fmt: skip
    records = []
    for row in changes.itertuples(index=False):
        values = row._asdict()
        record: dict[str, Any] = {}
        for column, name in fields.items():
            value = values.get(column)
            if value is None or pd.isna(value):
                continue
            record[name] = value.isoformat() if isinstance(value, pd.Timestamp) else str(value)
        if pd.notna(values.get("size")):
            record["size"] = float(values["size"])
        records.append(record)
    return records


def change_section(
    scorer: Any, changes: pd.DataFrame, fit: float, http: dict[str, dict[int, dict[str, Any]]]
) -> str:
    limit = change_limit(scorer, changes)
    frame = changes[scorer.input_columns_]
    rows = [frame.iloc[[i]].reset_index(drop=True) for i in range(SINGLE_CALLS)]
    respond = each_call(scorer.respond, rows)
    batch = thousand(frame)
    per_thousand = best_of(lambda: scorer.respond(batch))
    lines = [
        "### Change risk (generator's changes, with reasons and conflicts)",
        "",
        f"Fit {fit:.0f} s; {len(changes):,} held-out changes. Physical limit, one change: "
        f"{limit['one']:.3f} ms for the score, {limit['one_contrib']:.3f} ms with the SHAP "
        f"contributions (the reasons); 1,000 changes: {limit['thousand']:.1f} / "
        f"{limit['thousand_contrib']:.1f} ms.",
        "",
        f"`respond` in this process (features from the context, score, band, reasons, "
        f"conflicts): one change p50 {p(respond, 50):.2f} ms, p99 {p(respond, 99):.2f} ms "
        f"({ratio(p(respond, 50), limit['one_contrib'])} of the limit with reasons); 1,000 "
        f"changes {per_thousand:.0f} ms.",
        "",
        "| `/v1/change-risk` concurrency | requests | errors | requests/s | p50 ms | p99 ms "
        "| p50 / physical limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for concurrency, r in http["change-risk"].items():
        lines.append(
            f"| {concurrency} | {r['requests']:,} | {r['errors']} | {r['per_second']:.0f} "
            f"| {r['p50']:.1f} | {r['p99']:.1f} | {ratio(r['p50'], limit['one_contrib'])} |"
        )
    one = http["change-risk"][1]
    lines += [
        "",
        f"One change with reasons, alone: **p99 {one['p99']:.1f} ms** (target 20 ms).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
