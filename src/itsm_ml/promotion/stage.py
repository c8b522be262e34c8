"""Wiring of the promotion gate: load the versions, score the window, ledger, move the alias.

One gate at a time per model: `promote` and `rollback` hold an exclusive lock on
`.promotion-<registered name>.lock` beside the ledger for their whole read-decide-ledger-move
sequence, so two runs never both decide on the same champion. A second run waits up to
`LOCK_WAIT_SECONDS`, then reads the aliases afresh (typically finding the first run's
challenger already champion). The lock is `flock`: the kernel drops it when its holder
exits, however it exits, so a killed run leaves no stale lock.

Each run also repairs what an interrupted one can leave: the intent (a passed decision, a
rollback) is ledgered before the alias moves, and "alias moved" after; a run stopped between
the move and its line leaves the alias ahead of the ledger, and the next run records the
move (`reconcile`). A run stopped before the move leaves the old champion serving and the
decision shown "not applied" by `history_rows`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml import io
from itsm_ml.catalog import CatalogEntry, ModelLayout, Skipped, catalog
from itsm_ml.config import Params
from itsm_ml.data.stage import Layout
from itsm_ml.errors import ItsmMlError, NothingToPromote
from itsm_ml.promotion import history
from itsm_ml.promotion.gate import (
    AUTOMATIC_FLAGS,
    LEDGER_NAME,
    Check,
    Decision,
    Ledger,
    actor,
    compare,
    drift_check,
    performance_check,
    routing_check,
    validation_check,
    window_metrics,
)
from itsm_ml.results import StageResult
from itsm_ml.tracking import registry

log = logging.getLogger(__name__)

# A gate loads two versions and scores a window: under a minute on a desk's test split.
LOCK_WAIT_SECONDS = 60.0
_LOCK_POLL_SECONDS = 0.1


def ledger(root: Path) -> Ledger:
    """Next to the tracking store: the project root for the embedded one."""
    return Ledger(root / LEDGER_NAME)


def lock_path(root: Path, name: str) -> Path:
    """Beside the ledger, one per registered model (git-ignored: `.promotion-*.lock`)."""
    return root / f".promotion-{re.sub(r'[^A-Za-z0-9._-]', '_', name)}.lock"


@contextmanager
def model_lock(root: Path, name: str) -> Iterator[Path]:
    """Hold the promotion lock of one registered model; wait for it up to
    `LOCK_WAIT_SECONDS` (saying so once, as a warning), then fail naming its holder."""
    path = lock_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if time.monotonic() >= deadline:
                    raise ItsmMlError(
                        f"another promotion of {name} is running (pid {holder}, lock file "
                        f"{path}); try again when it ends"
                    ) from None
                if not waited:
                    log.warning(
                        "waiting up to %g s for another promotion of %s to end (pid %s, "
                        "lock file %s)",
                        LOCK_WAIT_SECONDS,
                        name,
                        holder,
                        path,
                    )
                    waited = True
                time.sleep(_LOCK_POLL_SECONDS)
        # Who holds it, for the message of a run that waits (informative only: the lock
        # is the flock, not this content).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


def reconcile(params: Params, item: str, root: Path) -> dict[str, Any] | None:
    """Record an alias move an interrupted run applied but did not ledger (under the lock);
    returns the "alias moved" entry written, or None when the ledger already agrees."""
    name = registered_name(params, item)
    with model_lock(root, name):
        return _reconcile(registry.client(root), ledger(root), name)


def _reconcile(client: Any, book: Ledger, name: str) -> dict[str, Any] | None:
    """The last intent of the ledger (a passed or forced decision, a rollback) with no
    "alias moved" line: if `champion` points at its version, the move happened and only
    its line was lost (the process stopped between the two): write the line now, marked
    `reconciled`. If the alias did not move, the ledger is right as it is: the intent
    reads "not applied" and the next gate decides afresh."""
    from itsm_ml.tracking.registry import CHAMPION

    intent = history.pending(book.entries(name))
    if intent is None:
        return None
    current = registry.version_by_alias(client, name, CHAMPION)
    if current is None or str(current.version) != history.target(intent):
        return None
    previous = intent["champion"] if intent["event"] == "decision" else intent["from"]
    forced = (
        {"forced": True, "reason": intent["reason"]}
        if intent["event"] == "decision" and intent.get("forced")
        else {}
    )
    return book.append(
        {
            "event": "alias moved",
            "actor": actor(),
            "model": name,
            "alias": CHAMPION,
            "version": str(current.version),
            "previous": previous,
            **forced,
            "reconciled": f"the move ledgered at {intent['at']} was applied, its line lost",
        }
    )


def history_rows(params: Params, item: str, root: Path) -> list[history.Row]:
    """The ledger of one model as `itsm-ml history` shows it, oldest first. The registry is
    read only when the last move the ledger asks for has no line saying it was applied:
    where the alias points tells an interrupted move that happened from one that did not."""
    from itsm_ml.tracking.registry import CHAMPION

    name = registered_name(params, item)
    entries = ledger(root).entries(name)
    champion = None
    if history.pending(entries) is not None:
        current = registry.version_by_alias(registry.client(root), name, CHAMPION)
        champion = str(current.version) if current is not None else None
    return history.rows(entries, champion)


def _window(target: Any, root: Path, window: Path | None) -> pd.DataFrame:
    if window is None:
        frame = io.read_table(Layout(root, target.table).split("test"))
    elif window.suffix == ".parquet":
        frame = pd.read_parquet(window)
    else:
        raise ItsmMlError(f"{window}: give the labelled window as a canonical .parquet table")
    if target.label not in frame:
        raise ItsmMlError(f"{window or 'the test split'}: no `{target.label}` column to judge by")
    frame = frame[frame[target.label].notna()].reset_index(drop=True)
    if frame.empty:
        raise ItsmMlError(f"{window or 'the test split'}: no labelled record to judge by")
    return frame


def _baseline(
    params: Params, entry: CatalogEntry, target: Any, root: Path, frame: pd.DataFrame
) -> tuple[str, dict[str, float]]:
    """The best of the simple baselines on the window, for a first version."""
    from itsm_ml.change_risk import stage as change_risk_stages
    from itsm_ml.change_risk.evaluation import risk_metrics
    from itsm_ml.triage.baselines import cheap_guesses

    train = io.read_table(Layout(root, target.table).split("train"))
    truth = frame[target.label]
    if entry.family == "change_risk":
        guesses = change_risk_stages.baseline_guesses(train, frame, params.change_risk.size_column)
        found = {
            name: risk_metrics(truth.astype(bool).to_numpy(), guess, is_probability=calibrated)
            for name, (guess, calibrated) in guesses.items()
        }
    else:
        # What the desk has without a model; the learned baselines are the evaluation's.
        found = {
            name: window_metrics(
                entry.family,
                pd.DataFrame({"label": guess.labels, "probability": 1.0}),
                truth,
                entry.kind,
            )
            for name, guess in cheap_guesses(train, frame, entry).items()
        }
    primary = entry.metric
    name = max(found, key=lambda n: found[n][primary])
    # A baseline's confidence means nothing: compare on the primary metric only.
    return name, {primary: found[name][primary]}


def baseline_phrase(name: str, label: str) -> str:
    """How a figure's sentence ends for a baseline: "... < 0.977 when the category set at
    open is kept"."""
    from itsm_ml.triage.baselines import AT_OPEN, MAJORITY

    known = {
        AT_OPEN: f"when the {label.removeprefix('label_')} set at open is kept",
        MAJORITY: "of always answering the most frequent class",
    }
    return known.get(name, f"of the baseline '{name}'")


def promote(
    params: Params,
    item: str,
    root: Path,
    *,
    window: Path | None = None,
    force_reason: str | None = None,
) -> Decision:
    """Run the gate for one model; ledger the decision; move `champion` only if it passed,
    or if `force_reason` says why it moves past the failed checks (ledgered and tagged).
    Under the model's lock, after recording a move an interrupted run left unledgered."""
    reason = _reason(force_reason)  # before any work: a forced run without a reason is an error
    entry = catalog(params).get(item)
    client = registry.client(root)
    with model_lock(root, entry.registered_model):
        _reconcile(client, ledger(root), entry.registered_model)
        return _promote(params, entry, root, client, window, reason)


def _promote(
    params: Params,
    entry: CatalogEntry,
    root: Path,
    client: Any,
    window: Path | None,
    reason: str | None,
) -> Decision:
    from itsm_ml.monitoring.stage import monitored
    from itsm_ml.tracking.registry import CHALLENGER, CHAMPION

    target = monitored(params, entry.name, root)
    name = entry.registered_model
    # Read here, under the lock: a run that waited sees what the one before it did.
    challenger = registry.version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise ItsmMlError(f"{name} has no `{CHALLENGER}` version to promote")
    champion = registry.version_by_alias(client, name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        raise NothingToPromote(f"{name} v{challenger.version} already is the champion")
    # Lineage and validation were tagged on the training run, drift on the version itself.
    tags = {**client.get_run(challenger.run_id).data.tags, **challenger.tags}
    checks: list[Check] = [validation_check(tags)]
    suggest_only: tuple[str, ...] = ()
    if entry.family == "early_warning":
        checks.append(_detector_comparison(params, entry, root, window, challenger, champion))
    elif entry.family == "problems":
        checks.append(_recurrence_comparison(params, entry, root, window, challenger, champion))
    else:
        comparison, suggest_only = _judged_on_window(
            params, entry, target, root, window, challenger, champion
        )
        checks.extend(comparison)
    checks.append(performance_check(tags))
    checks.append(drift_check(tags, blocking=params.promotion.block_on_data_drift))
    decision = Decision(
        name,
        str(challenger.version),
        str(champion.version) if champion else None,
        tuple(checks),
        suggest_only,
        forced_reason=reason,
    )
    return _record(client, root, entry, decision)


def _judged_on_window(
    params: Params,
    entry: CatalogEntry,
    target: Any,
    root: Path,
    window: Path | None,
    challenger: Any,
    champion: Any,
) -> tuple[list[Check], tuple[str, ...]]:
    """The challenger against the champion (or the best simple baseline) on the labelled
    window, and, for a model acting alone, its per-class precision there."""
    name = entry.registered_model
    frame = _window(target, root, window)
    truth = frame[target.label]
    answer = _answer(f"models:/{name}/{challenger.version}", frame)
    measured = window_metrics(entry.family, answer, truth, entry.kind)
    checks: list[Check] = []
    if champion is not None:
        previous = _answer(f"models:/{name}/{champion.version}", frame)
        reference = window_metrics(entry.family, previous, truth, entry.kind)
        checks.append(
            compare(
                entry.metrics,
                measured,
                reference,
                f"of champion v{champion.version}",
                params.promotion,
                check_name=f"beats champion v{champion.version} on the latest labelled window",
            )
        )
    else:
        baseline, figures = _baseline(params, entry, target, root, frame)
        checks.append(
            compare(
                entry.metrics,
                measured,
                figures,
                baseline_phrase(baseline, entry.label),
                params.promotion,
                check_name="beats the best simple baseline on the latest labelled window",
            )
        )
    suggest_only: tuple[str, ...] = ()
    automatic = next((c for c in AUTOMATIC_FLAGS if c in answer), None)
    if automatic:
        check, suggest_only = routing_check(
            answer, truth, params.triage.target_precision, params.promotion.min_routed, automatic
        )
        checks.append(check)
    return checks, suggest_only


def _detector_comparison(
    params: Params,
    entry: CatalogEntry,
    root: Path,
    window: Path | None,
    challenger: Any,
    champion: Any,
) -> Check:
    """A detector scores the period's incident volume from where its training stopped and is
    judged by NAB on the period's labelled windows; a first version against the seasonal
    baseline warmed on the same training split."""
    from itsm_ml.early_warning.model import judge_model
    from itsm_ml.early_warning.training import build_model

    name = entry.registered_model
    parts = Layout(root, entry.table).read_splits()
    frame, where = _period(parts, window)
    frame = frame[frame["opened_at"].notna()].sort_values("opened_at", kind="stable")

    def figures(model: Any) -> dict[str, float]:
        verdict, _ = judge_model(model, frame)
        if not verdict.windows:
            raise ItsmMlError(
                f"{where}: no labelled window (at least {model.outage_min_tickets} incidents"
                f" sharing a `{entry.label}` on one series) to judge {name} by"
            )
        return {k: float(v) for k, v in verdict.metrics().items() if k in entry.metrics}

    measured = figures(_detector(f"models:/{name}/{challenger.version}"))
    if champion is not None:
        reference = figures(_detector(f"models:/{name}/{champion.version}"))
        against, check_name = (
            f"of champion v{champion.version}",
            f"beats champion v{champion.version} on the latest labelled period",
        )
    else:
        baseline = build_model(params, entry, "seasonal").fit(parts["train"], parts["valid"])
        # On the primary metric only, as for every first version: a baseline that never
        # alarms has no false alarm to lose. Over-alerting is held to its budget by drift.
        reference = {entry.metric: figures(baseline)[entry.metric]}
        against, check_name = (
            "of the seasonal baseline",
            "beats the seasonal baseline on the latest labelled period",
        )
    return compare(
        entry.metrics, measured, reference, against, params.promotion, check_name=check_name
    )


def _period(parts: dict[str, pd.DataFrame], window: Path | None) -> tuple[pd.DataFrame, str]:
    """The period a detector or recurrence model is judged on, and how to name it."""
    if window is None:
        return parts["test"], "the test split"
    if window.suffix == ".parquet":
        return pd.read_parquet(window), str(window)
    raise ItsmMlError(f"{window}: give the period as a canonical tickets .parquet table")


def _recurrence_comparison(
    params: Params,
    entry: CatalogEntry,
    root: Path,
    window: Path | None,
    challenger: Any,
    champion: Any,
) -> Check:
    """Each version replays the history with its own settings up to the period's end and is
    judged on the period's problem links; a first version against the key baseline on the
    same records and rule."""
    from itsm_ml.problems.model import first_time, judge_key_baseline
    from itsm_ml.problems.training import micro_records

    name = entry.registered_model
    parts = Layout(root, entry.table).read_splits()
    period, where = _period(parts, window)
    if entry.label not in period or not (period[entry.label].value_counts() >= 2).any():
        raise ItsmMlError(f"{where}: no two incidents share a `{entry.label}` to judge {name} by")
    start = first_time(period)
    # The whole history before the period is replayed too: a later window follows the test
    # split, which must not leave a gap in what the groups saw.
    history = pd.concat(
        [parts["train"], parts["valid"], parts["test"], period], ignore_index=True
    ).drop_duplicates("ticket_id", keep="last")
    micro = micro_records(root)

    def figures(model: Any) -> tuple[dict[str, float], Any]:
        judged = model.judge(history, micro, start)
        return {k: float(v) for k, v in judged.figures.items() if k in entry.metrics}, judged

    candidate = _detector(f"models:/{name}/{challenger.version}")
    measured, judged = figures(candidate)
    if champion is not None:
        reference, _ = figures(_detector(f"models:/{name}/{champion.version}"))
        against, check_name = (
            f"of champion v{champion.version}",
            f"beats champion v{champion.version} on the latest labelled period",
        )
    else:
        key, baseline = judge_key_baseline(candidate.settings, judged.grouped.records, start)
        # On the primary metric only, as for every first version: a key that raises nothing
        # has no review load to lose.
        reference = {entry.metric: float(baseline.figures[entry.metric])}
        against, check_name = (
            f"of the key baseline ({' + '.join(key)})",
            "beats the key baseline on the latest labelled period",
        )
    return compare(
        entry.metrics, measured, reference, against, params.promotion, check_name=check_name
    )


def _detector(uri: str) -> Any:
    """A registered detector (or recurrence model) with the state it was registered with."""
    import mlflow

    return mlflow.pyfunc.load_model(uri).unwrap_python_model().model


def _record(client: Any, root: Path, entry: CatalogEntry, decision: Decision) -> Decision:
    """Ledger the decision, tag the version, move `champion` when it passed (or was forced)."""
    from itsm_ml.tracking.registry import CHAMPION

    name, challenger, suggest_only = (
        entry.registered_model,
        decision.challenger,
        decision.suggest_only,
    )
    book = ledger(root)
    book.append({"event": "decision", "actor": actor(), **decision.to_dict()})
    outcome = "passed" if decision.passed else "forced" if decision.forced else "refused"
    client.set_model_version_tag(name, challenger, "promotion.decision", outcome)
    if decision.forced:
        client.set_model_version_tag(name, challenger, "promotion.forced_by", actor())
        client.set_model_version_tag(
            name, challenger, "promotion.reason", str(decision.forced_reason)
        )
    if decision.promoted:
        if suggest_only:
            client.set_model_version_tag(
                name, challenger, "suggest_only", json.dumps(list(suggest_only))
            )
        _move_alias(client, name, challenger)
        book.append(
            {
                "event": "alias moved",
                "actor": actor(),
                "model": name,
                "alias": CHAMPION,
                "version": challenger,
                "previous": decision.champion,
                **({"forced": True, "reason": decision.forced_reason} if decision.forced else {}),
            }
        )
    io.write_json(decision.to_dict(), decision_path(root, entry.name))
    return decision


def _answer(uri: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A registered version's answer on the window, given only the columns its signature
    names (labels, ids and times would be ignored by it, with a warning each call)."""
    import mlflow

    model = mlflow.pyfunc.load_model(uri)
    schema = model.metadata.get_input_schema()
    names = schema.input_names() if schema is not None else list(frame.columns)
    return pd.DataFrame(model.predict(frame[[c for c in names if c in frame]]))


def _reason(force_reason: str | None) -> str | None:
    if force_reason is None:
        return None
    if not force_reason.strip():
        raise ItsmMlError("--force needs --reason: say why the failed checks may be overridden")
    return force_reason.strip()


def decision_path(root: Path, item: str) -> Path:
    return root / "reports" / "promotion" / f"{item}.json"


def _move_alias(client: Any, name: str, version: str) -> None:
    from itsm_ml.tracking.registry import CHAMPION

    client.set_registered_model_alias(name, CHAMPION, version)


def rollback(params: Params, item: str, root: Path) -> dict[str, Any]:
    """`champion` back to the version it replaced, ledgered like a promotion (under the same
    lock as `promote`)."""
    name = registered_name(params, item)
    client = registry.client(root)
    with model_lock(root, name):
        book = ledger(root)
        _reconcile(client, book, name)
        return _rollback(client, book, name)


def _rollback(client: Any, book: Ledger, name: str) -> dict[str, Any]:
    from itsm_ml.tracking.registry import CHAMPION

    current = registry.version_by_alias(client, name, CHAMPION)
    previous = book.previous_champion(name)
    if current is None or previous is None:
        raise ItsmMlError(f"{name}: no earlier champion in {book.path} to roll back to")
    book.append(
        {
            "event": "rollback",
            "actor": actor(),
            "model": name,
            "from": str(current.version),
            "to": previous,
        }
    )
    _move_alias(client, name, previous)
    return book.append(
        {
            "event": "alias moved",
            "actor": actor(),
            "model": name,
            "alias": CHAMPION,
            "version": previous,
            "previous": str(current.version),
        }
    )


def registered_name(params: Params, item: str) -> str:
    return catalog(params).get(item).registered_model


def stage(params: Params, item: str, root: Path) -> Any:
    """The DVC stage: a refusal is a decision, recorded, not a failed pipeline."""
    gate = ModelLayout(root, item).gate
    skipped = _skipped(root, item)
    if skipped is not None:
        io.write_json({"promotion": None, "note": skipped.summary()}, decision_path(root, item))
        io.write_json({"gate": "skipped"}, gate)
        return skipped
    try:
        decision = promote(params, item, root)
    except NothingToPromote as exc:
        # Nothing new to judge: the report says so rather than keep a stale decision.
        outcome = {"promotion": None, "note": str(exc)}
        io.write_json(outcome, decision_path(root, item))
        io.write_json({"gate": "already champion"}, gate)
        return StageResult(str(exc), outcome)
    io.write_json({"gate": "promoted" if decision.passed else "refused"}, gate)
    return StageResult(decision.summary(), {"promotion": decision.passed, **decision.to_dict()})


def _skipped(root: Path, item: str) -> Skipped | None:
    """The evaluation's headline says whether the model was skipped: no need to load it."""
    path = ModelLayout(root, item).metrics
    headline = json.loads(path.read_text()) if path.exists() else {}
    return Skipped(item, headline["reason"]) if headline.get("skipped") else None
