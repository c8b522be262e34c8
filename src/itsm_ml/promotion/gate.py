"""The promotion gate: `champion` moves to the challenger only if every blocking check passes.

The decision is a pure function of figures (the checks below, then `Decision`); the side effects are thin and in a
fixed order: the decision goes to the append-only ledger first, whatever it is; only a passed
(or forced) decision moves the alias; a second ledger line records that the move was applied.
A crash between the two leaves the old champion serving and the ledger saying the move never
happened.

Checks, each blocking unless said otherwise:
1. the challenger's training data passed validation (tag written when it was registered);
2. on the same recent labelled window, the challenger beats the champion (the best simple
   baseline for a first version, the value the ITSM already holds at open among them) by
   `margin` on the primary metric and is not worse by more than `tolerance` on the others;
3. routing models: each class the challenger would auto-route reaches the target precision
   on the window; classes that do not are switched to suggest-only (warns, never blocks);
4. realised performance holds what the probabilities promised on the latest windows
   (performance drift: a model that no longer knows when it is wrong);
5. the current data did not drift away from its training data. Data drift alone warns: a
   desk's mix shifts week to week while accuracy holds, and check 2 already measures what
   the shift costs. It blocks only with `promotion.block_on_data_drift`.
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
    blocking: bool = True

    @property
    def verdict(self) -> str:
        if self.passed:
            return "pass"
        return "FAIL" if self.blocking else "warn"


@dataclass(frozen=True)
class Decision:
    model: str
    challenger: str
    champion: str | None
    checks: tuple[Check, ...]
    suggest_only: tuple[str, ...] = ()
    forced_reason: str | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks if check.blocking)

    @property
    def forced(self) -> bool:
        return self.forced_reason is not None and not self.passed

    @property
    def promoted(self) -> bool:
        return self.passed or self.forced

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed and c.blocking)

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed and not c.blocking)

    def summary(self) -> str:
        """One line a user can act on: the outcome, then each failed check with its figures."""
        head = f"{self.model} v{self.challenger}"
        failed = "; ".join(f"{c.name} failed: {c.detail}" for c in self.failed)
        warned = "".join(f" (warning, {c.name}: {c.detail})" for c in self.warnings)
        if self.passed:
            return f"{head} promoted to champion{warned}"
        if self.forced:
            return f"{head} FORCED to champion past: {failed}; reason: {self.forced_reason}"
        return f"{head} refused, {failed}{warned}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "challenger": self.challenger,
            "champion": self.champion,
            "passed": self.passed,
            "forced": self.forced,
            "reason": self.forced_reason if self.forced else None,
            "suggest_only": list(self.suggest_only),
            "checks": [{**asdict(check), "verdict": check.verdict} for check in self.checks],
        }


def window_metrics(
    family: Family, answer: pd.DataFrame, truth: pd.Series, kind: str = "multiclass"
) -> dict[str, float]:
    """The gate's metrics from a model's answer (its pyfunc output) on labelled records."""
    from itsm_ml.change_risk.evaluation import risk_metrics
    from itsm_ml.evaluation import (
        binary_metrics,
        classification_metrics,
        expected_calibration_error,
        positive_class,
    )

    if family == "change_risk":
        found = risk_metrics(truth.astype(bool).to_numpy(), answer["probability"].to_numpy())
        return {k: found[k] for k in METRICS[family]}
    predicted = answer["label"].astype(str).reset_index(drop=True)
    expected = truth.astype(str).reset_index(drop=True)
    confidence = answer["probability"].to_numpy(dtype=float)
    correct = (predicted == expected).to_numpy()
    found = {
        **{k: v for k, v in classification_metrics(expected, predicted).items() if k != "rows"},
        "ece": expected_calibration_error(confidence, correct),
    }
    if kind == "binary":
        # The model's two classes are in its suggestions; a baseline's guesses and the truth
        # name them otherwise.
        seen = set(expected) | set(predicted)
        if "suggestions" in answer:
            seen |= {str(c) for row in answer["suggestions"] for c in row}
        positive = positive_class(seen)
        score = np.where(predicted == positive, confidence, 1 - confidence)
        found.update(binary_metrics(expected, score, positive))
    return found


def compare(
    metrics: dict[str, bool],
    challenger: dict[str, float],
    reference: dict[str, float],
    against: str,
    settings: PromotionParams,
    *,
    check_name: str = "beats the champion on the latest labelled window",
) -> Check:
    """Better by `margin` on the primary metric; no worse than `tolerance` on the others
    (only those the reference has: a baseline has no calibration to compare). `metrics`:
    name -> higher is better, the primary first (`CatalogEntry.metrics`). `against` ends
    each figure's sentence: "accuracy 0.932 < 0.977 when the category set at open is kept"."""
    primary = next(iter(metrics))
    ours, theirs = challenger[primary], reference[primary]
    gain = ours - theirs
    problems = []
    if gain < 0:
        problems.append(f"{primary} {ours:.3f} < {theirs:.3f} {against}")
    elif gain < settings.margin:
        problems.append(
            f"{primary} {ours:.3f} against {theirs:.3f} {against}: {gain:+.4f}, below the"
            f" required margin of {settings.margin} (promotion.margin)"
        )
    for name, higher in list(metrics.items())[1:]:
        if name not in reference or np.isnan(reference[name]) or np.isnan(challenger[name]):
            continue
        loss = (
            (reference[name] - challenger[name]) if higher else (challenger[name] - reference[name])
        )
        if loss > settings.tolerance:
            problems.append(
                f"{name} {challenger[name]:.4f} against {reference[name]:.4f} {against}: worse"
                f" by {loss:.4f}, beyond the tolerance of {settings.tolerance}"
                " (promotion.tolerance)"
            )
    detail = "; ".join(problems) or f"{primary} {ours:.3f} > {theirs:.3f} {against} ({gain:+.4f})"
    return Check(
        check_name, not problems, detail, {"challenger": challenger, "reference": reference}
    )


# Columns of an answer saying its value is applied without a person: triage routes, knowledge
# suggests a resolution; both are held to the same per-class precision on the window.
AUTOMATIC_FLAGS = ("auto_route", "auto_suggest")


def routing_check(
    answer: pd.DataFrame,
    truth: pd.Series,
    target: float,
    min_routed: int,
    flag: str = "auto_route",
) -> tuple[Check, tuple[str, ...]]:
    """Precision of each class applied automatically on the window (`flag`: the answer's
    column saying so); failing classes become suggest-only."""
    automatic = answer[flag].astype(bool).to_numpy()
    routed = answer[automatic].assign(
        correct=lambda a: (
            a["label"].astype(str).to_numpy() == truth[automatic].astype(str).to_numpy()
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
    check = Check(
        "auto-routed classes reach the target precision",
        not failing,
        detail,
        figures,
        blocking=False,
    )
    return check, failing


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


def performance_check(tags: dict[str, str]) -> Check:
    """Realised performance against what the calibrated probabilities promised, from the
    drift stage's record on the version: persistent shortfall at the end blocks."""
    name = "realised performance holds what its probabilities promise"
    state = tags.get("drift.performance_alert_at_end")
    if state is None:
        return Check(name, False, "no performance record for this version: run the drift stage")
    metric = tags.get("drift.performance_metric", "performance")
    promised, realised = tags.get("drift.last_estimated"), tags.get("drift.last_realised")
    last = (
        f"; last judged window: {metric} {float(realised):.3f} realised against"
        f" {float(promised):.3f} promised"
        if promised not in (None, "nan") and realised not in (None, "nan")
        else ""
    )
    return Check(
        name,
        state != "True",
        f"{tags.get('drift.performance_drifted_windows', '?')} of"
        f" {tags.get('drift.windows', '?')} windows fell short, persistent at the end:"
        f" {'yes' if state == 'True' else 'no'}{last}",
    )


def drift_check(tags: dict[str, str], *, blocking: bool = False) -> Check:
    """Data drift of the current records against the training data: a warning unless the
    params say it blocks (`promotion.block_on_data_drift`)."""
    name = "current data resembles its training data"
    state = tags.get("drift.data_alert_at_end")
    if state is None:
        return Check(
            name, False, "no drift record for this version: run the drift stage", blocking=True
        )
    return Check(
        name,
        state != "True",
        f"{tags.get('drift.drifted_windows', '?')} of {tags.get('drift.windows', '?')} windows"
        f" drifted, persistent at the end: {'yes' if state == 'True' else 'no'}",
        blocking=blocking,
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
