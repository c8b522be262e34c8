"""The promotion ledger read back: what each line did to `champion`, as `itsm-ml history`
shows it.

Pure: entries in, rows out. The gate writes its intent before it acts: a passed (or forced)
decision, or a rollback, asks `champion` to move; the move itself follows, then an
"alias moved" line says it was applied. A process stopped in between leaves an intent with
no "alias moved" line for that version before the model's next intent: either the alias
never moved ("not applied", the common case: the move is the step after a slow gate), or
it moved and the line was lost (a kill in the instant between the two). Only the registry
tells these apart, so `rows` takes the current champion; the next promote or rollback
records a lost line (see `promotion.stage.reconcile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NOT_APPLIED = (
    "not applied (no alias move followed: the promotion was interrupted; "
    "run `itsm-ml promote` again)"
)
ROLLBACK_NOT_APPLIED = (
    "not applied (no alias move followed: the rollback was interrupted; "
    "run `itsm-ml rollback` again)"
)
NOT_LEDGERED = (
    "applied, not ledgered (the alias moved but the process stopped before writing so; "
    "the next promote or rollback records the move)"
)


@dataclass(frozen=True)
class Row:
    at: str
    event: str
    actor: str
    version: str
    outcome: str


def target(entry: dict[str, Any]) -> str | None:
    """The version an entry asks `champion` to move to: a passed or forced decision's
    challenger, a rollback's `to`; None for a refusal or a move already applied."""
    if entry.get("event") == "decision" and (entry.get("passed") or entry.get("forced")):
        return str(entry["challenger"])
    if entry.get("event") == "rollback":
        return str(entry["to"])
    return None


def applied(entries: Sequence[dict[str, Any]]) -> list[bool | None]:
    """For each entry: whether the move it asks for was applied, i.e. an "alias moved" line
    of the same model and version follows before that model's next decision or rollback;
    None for entries that ask no move."""
    found: list[bool | None] = [None] * len(entries)
    waiting: dict[str, tuple[int, str]] = {}  # model -> (index of its open intent, version)
    for index, entry in enumerate(entries):
        model = str(entry.get("model"))
        if entry.get("event") in ("decision", "rollback"):
            waiting.pop(model, None)  # an intent not followed by its move stays False
            version = target(entry)
            if version is not None:
                found[index] = False
                waiting[model] = (index, version)
        elif entry.get("event") == "alias moved" and model in waiting:
            opened, version = waiting[model]
            if str(entry.get("version")) == version:
                found[opened] = True
                del waiting[model]
    return found


def pending(entries: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The last entry of a single model's ledger, when it asks a move no line records: the
    one an interruption between moving the alias and ledgering it leaves."""
    if not entries:
        return None
    return entries[-1] if applied(entries)[-1] is False else None


def rows(entries: Sequence[dict[str, Any]], champion: str | None = None) -> list[Row]:
    """One row per ledger entry of a model, oldest first. `champion`: the version the
    alias points at now, to tell a pending last move that was applied from one that was
    not (without it, every unrecorded move reads "not applied")."""
    done = applied(entries)
    last = pending(entries)
    shown = []
    for entry, was_applied in zip(entries, done, strict=True):
        unrecorded = NOT_APPLIED if entry["event"] == "decision" else ROLLBACK_NOT_APPLIED
        if entry is last and champion is not None and champion == target(entry):
            unrecorded = NOT_LEDGERED
        if entry["event"] == "decision":
            failed = [
                c["name"] for c in entry["checks"] if not c["passed"] and c.get("blocking", True)
            ]
            outcome = "passed" if entry["passed"] else "refused: " + "; ".join(failed)
            if entry.get("forced"):
                outcome = f"FORCED past: {'; '.join(failed)}; reason: {entry['reason']}"
            if was_applied is False:
                outcome += f", {unrecorded}"
            against = f"champion v{entry['champion']}" if entry["champion"] else "no champion"
            version = f"v{entry['challenger']} ({against})"
        elif entry["event"] == "rollback":
            outcome, version = f"from v{entry['from']}", f"v{entry['to']}"
            if was_applied is False:
                outcome += f", {unrecorded}"
        else:
            outcome, version = f"{entry['alias']} moved", f"v{entry['version']}"
            if entry.get("reconciled"):
                outcome += " (recorded after an interrupted run)"
        shown.append(Row(entry["at"], entry["event"], entry["actor"], version, outcome))
    return shown
