"""The promotion gate: `champion` moves to the challenger only if every check passes.

The decision is a pure function of figures (the checks below, then `Decision`); the side effects are thin and in a
fixed order: the decision goes to the append-only ledger first, whatever it is; only a passed
decision moves the alias; a second ledger line records that the move was applied. A crash
between the two leaves the old champion serving and the ledger saying the move never happened.

Checks:
1. the challenger's training data passed validation (tag written when it was registered);
2. on the same recent labelled window, the challenger beats the champion (the best baseline
   for a first version) by `margin` on the primary metric and is not worse by more than
   `tolerance` on the others;
3. routing models: each class the challenger would auto-route reaches the target precision
   on the window; classes that do not are switched to suggest-only, not blocking;
4. no persistent drift of the current data against the challenger's training data.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.catalog import METRICS, Family
from itsm_ml.config import PromotionParams
from itsm_ml.errors import ItsmMlError

LEDGER_NAME = "promotion-ledger.jsonl"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    model: str
    challenger: str
    champion: str | None
    checks: tuple[Check, ...]
    suggest_only: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def summary(self) -> str:
        if self.passed:
            return f"{self.model} v{self.challenger} promoted to champion"
        failed = "; ".join(f"{c.name} ({c.detail})" for c in self.checks if not c.passed)
        return f"{self.model} v{self.challenger} refused: {failed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "challenger": self.challenger,
            "champion": self.champion,
            "passed": self.passed,
            "suggest_only": list(self.suggest_only),
            "checks": [asdict(check) for check in self.checks],
        }


def window_metrics(family: Family, answer: pd.DataFrame, truth: pd.Series) -> dict[str, float]:
    """The gate's metrics from a model's answer (its pyfunc output) on labelled records."""
    from itsm_ml.change_risk.evaluation import risk_metrics
    from itsm_ml.evaluation import classification_metrics, expected_calibration_error

    if family == "change_risk":
        found = risk_metrics(truth.astype(bool).to_numpy(), answer["probability"].to_numpy())
        return {k: found[k] for k in METRICS[family]}
    predicted = answer["label"].astype(str).reset_index(drop=True)
    expected = truth.astype(str).reset_index(drop=True)
    correct = (predicted == expected).to_numpy()
    return {
        **{k: v for k, v in classification_metrics(expected, predicted).items() if k != "rows"},
        "ece": expected_calibration_error(answer["probability"].to_numpy(dtype=float), correct),
    }


def compare(
    metrics: dict[str, bool],
    challenger: dict[str, float],
    reference: dict[str, float],
    against: str,
    settings: PromotionParams,
) -> Check:
    """Better by `margin` on the primary metric; no worse than `tolerance` on the others
    (only those the reference has: a baseline has no calibration to compare). `metrics`:
    name -> higher is better, the primary first (`CatalogEntry.metrics`)."""
    primary = next(iter(metrics))
    gain = challenger[primary] - reference[primary]
    problems = []
    if not gain >= settings.margin:
        problems.append(
            f"{primary} {challenger[primary]:.4f} against {reference[primary]:.4f}: gain"
            f" {gain:+.4f} below the margin {settings.margin}"
        )
    for name, higher in list(metrics.items())[1:]:
        if name not in reference or np.isnan(reference[name]) or np.isnan(challenger[name]):
            continue
        loss = (
            (reference[name] - challenger[name]) if higher else (challenger[name] - reference[name])
        )
        if loss > settings.tolerance:
            problems.append(
                f"{name} {challenger[name]:.4f} against {reference[name]:.4f}: worse by"
                f" {loss:.4f}, beyond the tolerance {settings.tolerance}"
            )
    detail = "; ".join(problems) or (
        f"{primary} {challenger[primary]:.4f} against {reference[primary]:.4f} ({gain:+.4f})"
    )
    return Check(
        f"beats {against} on the latest labelled window",
        not problems,
        detail,
        {"challenger": challenger, against: reference},
    )


def routing_check(
    answer: pd.DataFrame, truth: pd.Series, target: float, min_routed: int
) -> tuple[Check, tuple[str, ...]]:
    """Precision of each auto-routed class on the window; failing classes become suggest-only."""
    routed = answer[answer["auto_route"].astype(bool)].assign(
        correct=lambda a: (
            a["label"].astype(str).to_numpy()
            == truth[answer["auto_route"].astype(bool).to_numpy()].astype(str).to_numpy()
        )
    )
    per_class = routed.groupby(routed["label"].astype(str))["correct"].agg(["size", "mean"])
    judged = per_class[per_class["size"] >= min_routed]
    failing = tuple(sorted(judged.index[judged["mean"] < target]))
    figures = {
        str(name): {"auto_routed": int(row["size"]), "precision": float(row["mean"])}
        for name, row in per_class.iterrows()
    }
    detail = (
        f"{len(judged)} classes judged (at least {min_routed} auto-routed); below"
        f" {target:.0%}: {', '.join(failing) or 'none'} (switched to suggest-only)"
    )
    return Check("auto-routed classes reach the target precision", True, detail, figures), failing


def validation_check(tags: dict[str, str]) -> Check:
    state = tags.get("validation.passed")
    if state is None:
        return Check(
            "training data passed validation",
            False,
            "the version carries no validation record (tag validation.passed)",
        )
    return Check(
        "training data passed validation",
        state == "true",
        f"validation of its training table: {'passed' if state == 'true' else 'FAILED'}",
        {"report": tags.get("validation.report", "")},
    )


def drift_check(tags: dict[str, str]) -> Check:
    state = tags.get("drift.alert_at_end")
    if state is None:
        return Check(
            "no persistent drift against its training data",
            False,
            "no drift record for this version: run the drift stage first",
        )
    return Check(
        "no persistent drift against its training data",
        state != "True",
        f"{tags.get('drift.alert_windows', '?')} alert windows of"
        f" {tags.get('drift.windows', '?')}; persistent drift at the end: {state}",
    )


def actor() -> str:
    """Who or what ran the gate: the CI job when there is one, else user@host."""
    for variable in ("GITHUB_ACTIONS", "GITLAB_CI", "CI"):
        if os.environ.get(variable):
            job = os.environ.get("GITHUB_RUN_ID") or os.environ.get("CI_JOB_ID") or "job"
            return f"ci:{variable.lower()}:{job}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Ledger:
    """Append-only JSON lines: one per decision, rollback, and applied alias move."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, default=str, sort_keys=False)
        # One write of one line, flushed to disk before anything else happens.
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return entry

    def entries(self, model: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ItsmMlError(
                    f"{self.path}, line {number}: not a ledger entry ({exc})"
                ) from exc
            if model is None or entry.get("model") == model:
                found.append(entry)
        return found

    def previous_champion(self, model: str) -> str | None:
        """The champion before the current one, from the applied moves."""
        moves = [e for e in self.entries(model) if e.get("event") == "alias moved"]
        return str(moves[-1]["previous"]) if moves and moves[-1].get("previous") else None
