"""Wiring of the promotion gate: load the versions, score the window, ledger, move the alias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml import io, registry
from itsm_ml.config import Params
from itsm_ml.errors import ItsmMlError, NothingToPromote
from itsm_ml.promotion import (
    LEDGER_NAME,
    Check,
    Decision,
    Ledger,
    actor,
    compare,
    drift_check,
    routing_check,
    validation_check,
    window_metrics,
)
from itsm_ml.stages import Layout

ROUTING = "routing"


def ledger(root: Path) -> Ledger:
    """Next to the tracking store: the project root for the embedded one."""
    return Ledger(root / LEDGER_NAME)


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
    params: Params, item: str, target: Any, root: Path, frame: pd.DataFrame
) -> tuple[str, dict[str, float]]:
    """The best of the simple baselines on the window, for a first version."""
    from itsm_ml import change_risk_stages, triage_stages
    from itsm_ml.promotion import METRICS
    from itsm_ml.risk_evaluation import risk_metrics

    train = io.read_table(Layout(root, target.table).split("train"))
    truth = frame[target.label]
    if target.table == "changes":
        guesses = change_risk_stages.baseline_guesses(train, frame, params.change_risk.size_column)
        found = {
            name: risk_metrics(truth.astype(bool).to_numpy(), guess, is_probability=calibrated)
            for name, (guess, calibrated) in guesses.items()
        }
    else:
        spec = params.triage.targets[item]
        parts = {"train": train, "test": frame}
        found = {
            name: window_metrics(
                "tickets", pd.DataFrame({"label": guess, "probability": 1.0}), truth
            )
            for name, guess in triage_stages.baseline_guesses(
                parts, spec.label, spec.at_open
            ).items()
        }
    primary = next(iter(METRICS[target.table]))
    name = max(found, key=lambda n: found[n][primary])
    # A baseline's confidence means nothing: compare on the primary metric only.
    return name, {primary: found[name][primary]}


def promote(
    params: Params,
    item: str,
    root: Path,
    *,
    window: Path | None = None,
) -> Decision:
    """Run the gate for one model; ledger the decision; move `champion` only if it passed."""
    import mlflow

    from itsm_ml.drift_stages import monitored
    from itsm_ml.registry import CHALLENGER, CHAMPION

    target = monitored(params, item, root)
    client = registry.client(root)
    name = registered_name(params, item)
    challenger = registry.version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise ItsmMlError(f"{name} has no `{CHALLENGER}` version to promote")
    champion = registry.version_by_alias(client, name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        raise NothingToPromote(f"{name} v{challenger.version} already is the champion")
    frame = _window(target, root, window)
    truth = frame[target.label]
    answer = mlflow.pyfunc.load_model(f"models:/{name}/{challenger.version}").predict(frame)
    measured = window_metrics(target.table, answer, truth)
    # Lineage and validation were tagged on the training run, drift on the version itself.
    tags = {**client.get_run(challenger.run_id).data.tags, **challenger.tags}
    checks: list[Check] = [validation_check(tags)]
    if champion is not None:
        previous = mlflow.pyfunc.load_model(f"models:/{name}/{champion.version}").predict(frame)
        reference = window_metrics(target.table, previous, truth)
        checks.append(
            compare(
                target.table, measured, reference, f"champion v{champion.version}", params.promotion
            )
        )
    else:
        baseline, figures = _baseline(params, item, target, root, frame)
        checks.append(
            compare(target.table, measured, figures, f"baseline ({baseline})", params.promotion)
        )
    suggest_only: tuple[str, ...] = ()
    if item == ROUTING and "auto_route" in answer:
        check, suggest_only = routing_check(
            answer, truth, params.triage.target_precision, params.promotion.min_routed
        )
        checks.append(check)
    checks.append(drift_check(tags))
    decision = Decision(
        name,
        str(challenger.version),
        str(champion.version) if champion else None,
        tuple(checks),
        suggest_only,
    )
    book = ledger(root)
    book.append({"event": "decision", "actor": actor(), **decision.to_dict()})
    client.set_model_version_tag(
        name,
        str(challenger.version),
        "promotion.decision",
        "passed" if decision.passed else "refused",
    )
    if decision.passed:
        if suggest_only:
            client.set_model_version_tag(
                name, str(challenger.version), "suggest_only", json.dumps(list(suggest_only))
            )
        _move_alias(client, name, str(challenger.version))
        book.append(
            {
                "event": "alias moved",
                "actor": actor(),
                "model": name,
                "alias": CHAMPION,
                "version": str(challenger.version),
                "previous": decision.champion,
            }
        )
    out = root / "reports" / "promotion" / f"{item}.json"
    io.write_json(decision.to_dict(), out)
    return decision


def _move_alias(client: Any, name: str, version: str) -> None:
    from itsm_ml.registry import CHAMPION

    client.set_registered_model_alias(name, CHAMPION, version)


def rollback(params: Params, item: str, root: Path) -> dict[str, Any]:
    """`champion` back to the version it replaced, ledgered like a promotion."""
    from itsm_ml.registry import CHAMPION

    name = registered_name(params, item)
    client = registry.client(root)
    book = ledger(root)
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
    if item == "change-risk":
        return params.change_risk.registered_model
    if item not in params.triage.targets:
        raise ItsmMlError(f"unknown model {item!r}")
    return params.triage.targets[item].registered_model


def stage(params: Params, item: str, root: Path) -> dict[str, Any]:
    """The DVC stage: a refusal is a decision, recorded, not a failed pipeline."""
    try:
        decision = promote(params, item, root)
    except NothingToPromote as exc:
        # Nothing new to judge: the report says so rather than keep a stale decision.
        outcome = {"promotion": None, "note": str(exc)}
        io.write_json(outcome, root / "reports" / "promotion" / f"{item}.json")
        return outcome
    return {"promotion": decision.passed, **decision.to_dict()}
