"""The champions the service answers with, swapped in place when an alias moves.

A request takes the `Loaded` entry once, at its start, and keeps it to the end: a promotion
replaces the entry for later requests while the ones in flight finish on the version they
began with. The new version is loaded completely before the swap, so no request waits for a
load or sees a half-loaded model; a version that fails to load leaves the old one serving.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from itsm_ml.tracking import registry

log = logging.getLogger(__name__)

Resolver = Callable[[str], str | None]
Loader = Callable[[str, str], Any]


@dataclass(frozen=True)
class Loaded:
    name: str
    version: str
    model: Any
    loaded_at: str


@dataclass
class Status:
    """What the service knows about one registered model, for /v1/models and /readyz."""

    name: str
    loaded: Loaded | None = None
    error: str | None = None
    checked_at: str | None = None
    history: list[str] = field(default_factory=list)


def champion_version(name: str) -> str | None:
    """The version `champion` points at in the configured registry, or None."""
    import mlflow

    found = registry.version_by_alias(mlflow.MlflowClient(), name, registry.CHAMPION)
    return None if found is None else str(found.version)


def load_version(name: str, version: str) -> Any:
    """The project's model inside a registered version (the object with `respond`).

    It must answer the input example it was logged with: a version that cannot is not
    swapped in, and the first real request does not pay for the warm-up."""
    import mlflow
    import pandas as pd

    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    model = pyfunc.unwrap_python_model().model
    example = pyfunc.input_example
    if isinstance(example, pd.DataFrame) and len(example):
        # A detector's state moves with every point it scores: it warms up on a copy.
        warm = model.fresh() if hasattr(model, "fresh") else model
        warm.respond(example.reset_index(drop=True))
    return model


class Champions:
    """The loaded champion of each model, refreshed from the registry."""

    def __init__(
        self,
        names: Iterable[str],
        *,
        resolve: Resolver = champion_version,
        load: Loader = load_version,
    ) -> None:
        self._status = {name: Status(name) for name in names}
        self._resolve = resolve
        self._load = load
        self._refreshed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one refresh at a time, not one per request

    def get(self, name: str) -> Loaded | None:
        status = self._status.get(name)
        return None if status is None else status.loaded

    def statuses(self) -> list[Status]:
        return list(self._status.values())

    @property
    def ready(self) -> bool:
        """True once the registry was read for every model and each champion found is loaded."""
        return self._refreshed.is_set()

    def refresh(self) -> list[str]:
        """Check every alias once; load and swap in any version that changed.

        Returns a line per change, e.g. "ticket-routing: 3 -> 4"."""
        changes: list[str] = []
        with self._lock:
            for status in self._status.values():
                change = self._refresh_one(status)
                if change:
                    changes.append(change)
            if changes:
                _settle_heap()
            self._refreshed.set()
        return changes

    def _refresh_one(self, status: Status) -> str | None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            version = self._resolve(status.name)
        except Exception as exc:  # the registry may be briefly unreachable: keep serving
            status.error = f"registry not reachable: {type(exc).__name__}: {exc}"
            log.warning("%s: %s", status.name, status.error)
            return None
        status.checked_at = now
        current = status.loaded.version if status.loaded else None
        if version == current:
            status.error = None
            return None
        if version is None:
            # The alias was removed on purpose: answering with a retired model is worse than 503.
            status.loaded = None
            status.error = None
            change = f"{status.name}: {current} -> none (alias removed)"
        else:
            try:
                model = self._load(status.name, version)
            except Exception as exc:  # a broken version must not take the old one down
                status.error = f"version {version} failed to load: {type(exc).__name__}: {exc}"
                log.error("%s: %s", status.name, status.error)
                return None
            status.loaded = Loaded(status.name, version, model, now)
            status.error = None
            change = f"{status.name}: {current or 'none'} -> {version}"
        status.history.append(f"{now} {change}")
        log.info("champion %s", change)
        return change

    def start(self, interval: float) -> None:
        """Load the champions, then check every `interval` seconds, in a background thread:
        the service answers /healthz (and /readyz: not yet) while the models load."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(interval,), name="champion-poll", daemon=True
        )
        self._thread.start()

    def _poll(self, interval: float) -> None:
        self.refresh()
        next_at = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.refresh()
            next_at = time.monotonic() + interval

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def _settle_heap() -> None:
    """Collect the replaced models, then freeze what is loaded out of the collector's sight.

    The loaded models and libraries are millions of long-lived objects: a full collection
    walking them pauses every request in flight, which showed as the slowest percentile of
    the load test (bench/serving.py). Frozen, they are not walked. Unfreezing first lets the
    models just replaced be freed; this one full collection happens once per alias move.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
