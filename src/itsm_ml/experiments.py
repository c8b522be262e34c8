"""DVC experiments, read as a person compares them: per experiment, the params it changed and,
per model of the catalog, its primary metric beside its best baseline and the gate's word.

`dvc exp show` lists every param, dependency hash and metric of the pipeline (well over a
hundred columns); this reads its JSON (`dvc exp show --json`) and keeps what decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsm_ml.catalog import Catalog, ModelLayout

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class ExperimentRow:
    name: str
    created: str
    changed: dict[str, Any]  # param key -> value, where it differs from the baseline
    models: dict[str, dict[str, Any]]  # model -> {metric, value, baseline, gate}


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    found: dict[str, Any] = {}
    for key, value in tree.items():
        found.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def _revisions(entries: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, data) of each commit and of each experiment on it, in DVC's order."""
    for entry in entries:
        if entry.get("data"):
            yield entry.get("name") or _short(str(entry.get("rev", ""))), entry["data"]
        for experiment in entry.get("experiments") or []:
            for revision in experiment.get("revs") or []:
                if revision.get("data"):
                    name = (
                        experiment.get("name")
                        or revision.get("name")
                        or _short(str(revision.get("rev", "")))
                    )
                    yield name, revision["data"]


def _short(rev: str) -> str:
    """A commit's sha shortened as git does; `workspace` and names as they are."""
    return rev[:7] if len(rev) == 40 else rev


def _metrics(data: dict[str, Any], path: str) -> dict[str, Any]:
    found = (data.get("metrics") or {}).get(path) or {}
    return dict(found.get("data") or {})


def experiment_rows(shown: list[dict[str, Any]], known: Catalog) -> list[ExperimentRow]:
    """Rows of `dvc exp show --json`; params compared with the first revision (the
    workspace, or the baseline commit when DVC lists it first)."""
    rows: list[ExperimentRow] = []
    baseline: dict[str, Any] | None = None
    for name, data in _revisions(shown):
        params = _flat(((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data") or {})
        if baseline is None:
            baseline = params
        changed = {k: v for k, v in params.items() if baseline.get(k) != v}
        models: dict[str, dict[str, Any]] = {}
        for entry in known:
            # DVC names each metrics file by its path from the project root.
            layout = ModelLayout(Path(), entry.name)
            headline = _metrics(data, layout.metrics.as_posix())
            gate = _metrics(data, layout.gate.as_posix()).get("gate")
            models[entry.name] = {
                "metric": entry.metric,
                "value": None if headline.get("skipped") else headline.get(entry.metric),
                "baseline": headline.get(f"best baseline {entry.metric}"),
                "gate": "skipped" if headline.get("skipped") else gate,
            }
        rows.append(ExperimentRow(name, str(data.get("timestamp") or ""), changed, models))
    return rows
