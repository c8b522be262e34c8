"""The gate under faults: two promotions of one model at once, and promotions killed midway.

A small project (generated tickets, a small routing model registered twice in a sqlite
store), no pipeline. Each promotion is a real process: the gate's lock is the kernel's
`flock`, and a SIGKILL is the one interruption no `finally` softens.

What a kill may leave, and what repairs it (see `promotion.stage`): the gate ledgers its
intent (the decision), then moves `champion`, then ledgers "alias moved".
- Killed before the decision line: nothing happened.
- Killed between the decision and the move: the old champion serves; the ledger's last
  "alias moved" still names it, and `history` reads the decision "not applied".
- Killed between the move and its line: the alias is ahead of the ledger. The next promote
  or rollback, under the lock, sees the last intent's version under `champion` and writes
  the missing "alias moved" line, marked `reconciled`; until then `history` reads the
  decision "applied, not ledgered". The test runs that reconciliation after every kill.
In every case the lock dies with its holder: the next run takes it without waiting.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

import pytest

from itsm_ml.config import GeneratorSource, Params, load_params
from itsm_ml.data.sources import load_table
from itsm_ml.data.split import time_split
from itsm_ml.data.stage import Layout
from itsm_ml.promotion import stage as promotion_stages
from itsm_ml.promotion.history import NOT_APPLIED, NOT_LEDGERED
from itsm_ml.triage.model import TriageModel
from tests.registering import register

pytestmark = pytest.mark.slow
NAME = "itsm-routing"
ITEM = "routing"

# Runs `promote` as the CLI does, printing a line after each side effect. With a step named
# in argv[1], it stops there (sleeps) so that the test's SIGKILL lands right after it.
DRIVER = """
import sys, time
from pathlib import Path
import itsm_ml.promotion.stage as gate
from itsm_ml.config import load_params

stop_at = sys.argv[1]

def step(name):
    print(name, flush=True)
    if name == stop_at:
        time.sleep(120)  # the test kills it here

real_append, real_move, real_reconcile = gate.Ledger.append, gate._move_alias, gate._reconcile

def append(self, record):
    entry = real_append(self, record)
    step("ledgered " + record["event"])
    return entry

def move(*args):
    real_move(*args)
    step("moved in the registry")

def reconcile(*args):
    step("holding the lock")
    if stop_at == "hold":  # until the test says go
        deadline = time.monotonic() + 60
        while not Path("go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return real_reconcile(*args)

gate.Ledger.append, gate._move_alias, gate._reconcile = append, move, reconcile
decision = gate.promote(load_params(Path("params.yaml")), "routing", Path.cwd(),
                        force_reason=sys.argv[2])
print("done", decision.challenger, flush=True)
"""


@dataclass
class Project:
    root: Path
    params: Params

    def env(self) -> dict[str, str]:
        return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{self.root}/mlflow.db",
                "COLUMNS": "400"}  # fmt: skip

    def client(self) -> Any:
        import mlflow

        return mlflow.MlflowClient(tracking_uri=f"sqlite:///{self.root}/mlflow.db")

    def champion(self) -> Any | None:
        from itsm_ml.tracking.registry import version_by_alias

        return version_by_alias(self.client(), NAME, "champion")

    def challenge_with_the_other_version(self) -> str:
        current = self.champion()
        other = "1" if current is not None and str(current.version) == "2" else "2"
        self.client().set_registered_model_alias(NAME, "challenger", other)
        return other

    def ledger(self) -> list[dict[str, Any]]:
        path = self.root / "promotion-ledger.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]  # every line must be whole JSON

    def start(self, *args: str) -> Running:
        process = subprocess.Popen(
            [sys.executable, "-c", *args],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Running(process, Lines(process.stdout), Lines(process.stderr))  # type: ignore[arg-type]

    def driver(self, stop_at: str) -> Running:
        return self.start(DRIVER, stop_at, "fault test")


class Lines:
    """A process's output read in a thread: wait for a line without blocking forever."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._new = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._new:
                self.seen.append(line.rstrip("\n"))
                self._new.notify_all()

    def wait_for(self, text: str, timeout: float = 90) -> bool:
        with self._new:
            return self._new.wait_for(lambda: any(text in s for s in self.seen), timeout)

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(self.seen)


@dataclass
class Running:
    process: subprocess.Popen[str]
    out: Lines
    err: Lines


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """Generated tickets split by time, routing v1 and v2 (the same small model, registered
    twice) and v1 promoted by the gate, so the ledger starts consistent."""
    root = tmp_path_factory.mktemp("faults")
    (root / "params.yaml").write_text(
        "tickets: {source: {kind: generator, rows: 800, seed: 3}}\n"
        "changes: {source: {kind: generator, rows: 200}}\n"
    )
    params = load_params(root / "params.yaml")
    source = GeneratorSource(
        kind="generator", rows=800, seed=3, start=date(2025, 1, 1), end=date(2025, 4, 1)
    )
    split = time_split(load_table("tickets", source), "opened_at", 0.2, 0.2)
    layout = Layout(root, "tickets")
    for part, frame in (("train", split.train), ("test", split.test)):
        layout.split(part).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(layout.split(part), index=False)
    label = "label_assignment_group"
    columns = ["caller", "channel", "ci", "service"]
    model = TriageModel(categorical=columns, n_estimators=50, candidates=("text",), n_jobs=1)
    model.fit(split.train, split.train[label], split.valid, split.valid[label])
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    try:
        register(model, root, NAME, split.test[[*columns, "text"]].head(3), times=2)
        made = Project(root, params)
        made.client().set_registered_model_alias(NAME, "challenger", "1")
        promotion_stages.promote(params, ITEM, root, force_reason="fault test setup")
        assert str(made.champion().version) == "1"
        yield made
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def check_consistent(project: Project, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any] | None:
    """After a kill: the champion is a READY version, the ledger is whole JSON lines, the
    lock is free at once, and once reconciled the last "alias moved" names the champion.
    Returns the line the reconciliation wrote, if any."""
    champion = project.champion()
    assert champion is not None and champion.status == "READY"
    project.ledger()  # parses every line
    monkeypatch.setattr(promotion_stages, "LOCK_WAIT_SECONDS", 0)  # a stale lock fails here
    written = promotion_stages.reconcile(project.params, ITEM, project.root)
    moves = [e for e in project.ledger() if e["event"] == "alias moved" and e["model"] == NAME]
    assert moves[-1]["version"] == str(champion.version)
    return written


def test_two_promotions_at_once_move_the_alias_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project.root}/mlflow.db")
    version = project.challenge_with_the_other_version()
    before = len(project.ledger())
    first = project.driver("hold")  # stops once it holds the lock, until `go` exists
    second = None
    try:
        assert first.out.wait_for("holding the lock"), first.err.text()
        # The CLI, as a second operator would run it while the first gate is running.
        second = project.start("from itsm_ml.cli import main; main()", "promote", ITEM,
                               "--force", "--reason", "the second")  # fmt: skip
        waiting = "waiting up to 60 s for another promotion of itsm-routing to end"
        assert second.err.wait_for(waiting), second.err.text()
        (project.root / "go").touch()
        assert first.process.wait(timeout=120) == 0, first.err.text()
        assert second.process.wait(timeout=120) == 1, second.err.text()
    finally:
        for running in (first, second):
            if running is not None:
                running.process.kill()
        (project.root / "go").unlink(missing_ok=True)
    assert first.out.wait_for(f"done {version}")
    told = second.err.text()
    lock = project.root / ".promotion-itsm-routing.lock"
    assert f"{waiting} (pid {first.process.pid}, lock file {lock})" in told
    assert f"error: {NAME} v{version} already is the champion" in told
    added = project.ledger()[before:]
    assert [(e["event"], e.get("challenger", e.get("version"))) for e in added] == [
        ("decision", version),
        ("alias moved", version),
    ]
    assert str(project.champion().version) == version


def test_a_promotion_killed_at_any_point_leaves_a_consistent_registry_and_ledger(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three kills aimed at the windows between the side effects (the driver pauses right
    after one, so the state is known exactly), then three at seeded random times (anywhere:
    the imports, the gate, inside a registry call), each followed by the checks."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project.root}/mlflow.db")
    rng = random.Random(20260501)
    stops = ["ledgered decision", "moved in the registry", "ledgered alias moved"]
    plan: list[str | float] = [
        *rng.sample(stops, len(stops)),
        *(round(rng.uniform(0.5, 8), 2) for _ in range(3)),
    ]
    for stop in plan:
        version = project.challenge_with_the_other_version()
        previous = str(project.champion().version)
        before = len(project.ledger())
        run = project.driver(stop if isinstance(stop, str) else "never")
        if isinstance(stop, str):
            assert run.out.wait_for(stop), (stop, run.out.text(), run.err.text())
        else:
            time.sleep(stop)
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(timeout=60)
        added = project.ledger()[before:]
        champion = str(project.champion().version)
        rows = promotion_stages.history_rows(project.params, ITEM, project.root)
        written = check_consistent(project, monkeypatch)
        # Whatever the moment: a line is reconciled exactly when the alias moved unledgered.
        moved_unledgered = champion == version and [e["event"] for e in added] == ["decision"]
        assert (written is not None) == moved_unledgered, (stop, added, champion)
        if stop == "ledgered decision":
            assert champion == previous and [e["event"] for e in added] == ["decision"]
            assert rows[-1].outcome.endswith(NOT_APPLIED)
        elif stop == "moved in the registry":
            assert champion == version and rows[-1].outcome.endswith(NOT_LEDGERED)
            assert written is not None
            assert (written["version"], written["previous"]) == (version, previous)
            assert written.get("forced", False) == added[0]["forced"]
        elif stop == "ledgered alias moved":
            assert champion == version and written is None
            assert [e["event"] for e in added] == ["decision", "alias moved"]
    # The next promotion after all this: no waiting, decided and moved as usual.
    version = project.challenge_with_the_other_version()
    promotion_stages.promote(project.params, ITEM, project.root, force_reason="after the kills")
    assert str(project.champion().version) == version
    assert project.ledger()[-1]["event"] == "alias moved"
