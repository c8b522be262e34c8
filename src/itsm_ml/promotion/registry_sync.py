"""The pipeline's committed outputs against the tracking store they describe.

`evaluate` registers a version, `drift` tags it and `promote` moves its alias, but the store
is no DVC output: on a fresh clone (no `mlflow.db`, reports committed, models retrained byte
for byte) or after the store was deleted or replaced, DVC would skip those stages and leave
a store without versions. `stale_outputs` finds the outputs that claim what the store does
not hold; `sync` deletes them, so the next `dvc repro` runs those stages again and writes
them back identical (versions are numbered from 1 in a new store). Nothing machine-specific
enters a tracked file or dvc.lock.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsm_ml.catalog import Catalog, CatalogEntry, ModelLayout
from itsm_ml.monitoring.stage import drift_folder
from itsm_ml.promotion.stage import decision_path
from itsm_ml.tracking import registry

DRIFT_MARK = "drift.windows"  # a tag every drift run sets on the version it judged


@dataclass(frozen=True)
class Stale:
    stage: str
    model: str
    path: Path
    why: str

    def __str__(self) -> str:
        return f"{self.stage}@{self.model} ({self.why})"


def stale_outputs(root: Path, known: Catalog) -> list[Stale]:
    """Outputs of evaluate, drift and promote that the current store contradicts."""
    claims = [(entry, _read(ModelLayout(root, entry.name).registered)) for entry in known]
    claims = [(entry, claim) for entry, claim in claims if claim.get("version")]
    if not claims:
        return []
    store = _store(root)
    found: list[Stale] = []
    for entry, claim in claims:
        found.extend(_stale_of(root, entry, claim, store))
    return found


def sync(root: Path, known: Catalog) -> list[Stale]:
    """Delete the stale outputs (DVC then runs their stages again); returns them."""
    stale = stale_outputs(root, known)
    for item in stale:
        item.path.unlink(missing_ok=True)
    return stale


def _stale_of(root: Path, entry: CatalogEntry, claim: dict[str, Any], store: Any) -> list[Stale]:
    name, version = str(claim.get("name", entry.registered_model)), str(claim["version"])
    drift = drift_folder(root, entry.name) / "metrics.json"
    decision = decision_path(root, entry.name)
    found = _version(store, name, version)
    if found is None:
        why = f"{name} v{version} is not in the store"
        return [
            Stale("evaluate", entry.name, ModelLayout(root, entry.name).registered, why),
            Stale("drift", entry.name, drift, why),
            Stale("promote", entry.name, decision, why),
        ]
    stale = []
    if DRIFT_MARK not in found.tags:
        why = f"{name} v{version} carries no drift figures"
        stale += [
            Stale("drift", entry.name, drift, why),
            Stale("promote", entry.name, decision, why),
        ]
    # Only a promotion the store lost is redone: a champion moved since (a rollback, a
    # forced promotion) is a later decision, not a stale one.
    verdict = _read(decision)
    promoted = verdict.get("passed") or verdict.get("forced")
    if promoted and not stale and registry.version_by_alias(store, name, registry.CHAMPION) is None:
        why = f"the gate promoted {name} v{verdict.get('challenger')}; the store has no champion"
        stale.append(Stale("promote", entry.name, decision, why))
    return stale


def _store(root: Path) -> Any:
    """A client on the store, or None when the embedded store does not exist yet (looking
    would create an empty one)."""
    uri = registry.tracking_uri(root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    return registry.client(root)


def _version(store: Any, name: str, version: str) -> Any | None:
    if store is None:
        return None
    from mlflow.exceptions import MlflowException

    try:
        return store.get_model_version(name, version)
    except MlflowException:
        return None


def _read(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}
