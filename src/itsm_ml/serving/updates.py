"""What the service writes back onto a ticket: the auto-routed fields and a work note.

Only auto-routed answers set a field (they cleared the precision target); suggestions go to
the note for the person who picks the ticket up. The idempotency key hashes the ticket, the
versions and the decisions, so the same answer is noted once however often it is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from itsm_ml.serving.api import ResolutionResult, TriageResult


@dataclass(frozen=True)
class Update:
    sys_id: str
    fields: dict[str, str]
    note: str
    key: str


def triage_update(result: TriageResult) -> Update | None:
    """The update for one scored incident, or None when it has no sys_id or no answer."""
    if not result.sys_id or not result.answers:
        return None
    fields: dict[str, str] = {}
    lines = ["itsm-ml triage"]
    for answer in result.answers.values():
        made_by = f"{answer.model} v{answer.version}"
        if answer.decision == "auto_route" and answer.value is not None:
            fields[answer.field] = answer.value
            lines.append(
                f"{answer.field}: set to {answer.value} ({answer.probability:.0%}, {made_by})"
            )
        else:
            options = ", ".join(f"{s.value} ({s.probability:.0%})" for s in answer.suggestions)
            lines.append(f"{answer.field}: suggestions {options} ({made_by})")
    decisions = sorted(
        f"{a.model}:{a.version}:{a.decision}:{a.value or a.suggestions[0].value}"
        for a in result.answers.values()
    )
    digest = hashlib.sha256("|".join([result.sys_id, *decisions]).encode("utf-8")).hexdigest()
    return Update(result.sys_id, fields, "\n".join(lines), digest[:32])


def resolution_update(result: ResolutionResult) -> Update | None:
    """A work note with the suggested resolution, its runbook and the similar tickets; it
    sets no field. None when the incident has no sys_id."""
    if not result.sys_id:
        return None
    made_by = f"{result.model} v{result.version}"
    options = ", ".join(f"{s.value} ({s.probability:.0%})" for s in result.suggestions)
    lines = [f"itsm-ml knowledge ({made_by})", f"{result.field}: suggestions {options}"]
    if result.runbook:
        lines.append(f"runbook: {result.runbook} ({result.runbook_basis})")
    similar = ", ".join(f"{n.id} ({n.relevance:.0%})" for n in result.neighbours)
    if similar:
        lines.append(f"similar tickets: {similar}")
    first = result.suggestions[0].value if result.suggestions else ""
    decision = f"{result.model}:{result.version}:{result.decision}:{first}"
    digest = hashlib.sha256(f"{result.sys_id}|{decision}".encode()).hexdigest()
    return Update(result.sys_id, {}, "\n".join(lines), digest[:32])
