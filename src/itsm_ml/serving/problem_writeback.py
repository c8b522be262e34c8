"""Problem candidates in the ITSM: each opened once as a problem in state New with its
incidents linked, and the problem managers' decisions read back as labels.

A problem is created with the candidate's id as its `correlation_id` (`ServiceNowWriter
.create`), so running the write-back again, or a retry after a lost answer, never opens a
second problem for one candidate. Each incident is linked by setting its reference field to
the problem's number, with a work note keyed by candidate and incident: linking again adds
nothing. Micro-records have no record in the ITSM; the description counts them.

Reading back, a problem closed with a rejecting resolution code (Canceled, Duplicate) is a
rejected candidate, one moved on from New an accepted one, one still New pending. Precision,
the share of decided candidates accepted, is what the rule is tuned by.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from itsm_ml.catalog import catalog
from itsm_ml.config import Params, ProblemWriteBackParams
from itsm_ml.problems.grouping import ID_PREFIX
from itsm_ml.serving.writeback import MARKER_PREFIX, ServiceNowWriter, WriteBackError

MAX_LINKS = 50  # incidents linked per problem, the newest: a problem lists its evidence


@dataclass(frozen=True)
class Opened:
    candidate: str
    problem: str  # its number, or sys_id when the ITSM gave no number
    status: str  # written or already_written
    linked: int
    failed_links: int


def problem_fields(candidate: dict[str, Any], settings: ProblemWriteBackParams) -> dict[str, str]:
    where = ", ".join(candidate["services"]) or "no service named"
    terms = ", ".join(candidate["top_terms"][:5])
    lines = [
        f"Recurring issue {candidate['id']} raised by itsm-ml on {candidate['raised_at'][:10]}.",
        f"{candidate['records']} records ({candidate['tickets']} incidents,"
        f" {candidate['micro_records']} fixed outside the desk) from {candidate['callers']}"
        f" callers, {candidate['first_seen'][:10]} to {candidate['last_seen'][:10]};"
        f" {candidate['minutes_lost']:.0f} minutes lost.",
        f"Services: {where}. CIs: {', '.join(candidate['cis']) or 'none named'}.",
        f"Terms: {terms}.",
        "Representative records:",
        *(
            f"- {r['id']} ({r['source']}, {r['opened_at'][:10]})"
            for r in candidate["representatives"]
        ),
        "Accept by moving it on from New; reject by closing it as Canceled or Duplicate.",
    ]
    return {
        "short_description": f"Recurring: {terms} ({where})"[:160],
        "description": "\n".join(lines),
        "state": settings.state,
    }


def open_problems(
    candidates: list[dict[str, Any]],
    problems: ServiceNowWriter,
    incidents: ServiceNowWriter,
    settings: ProblemWriteBackParams,
    echo: Callable[[str], None] = print,
) -> list[Opened]:
    """One problem per candidate, its incidents linked; a failure on one candidate is said
    and the others go on (WriteBackError for a candidate that could not be opened)."""
    opened = []
    for candidate in candidates:
        try:
            created = problems.create(problem_fields(candidate, settings), candidate["id"])
            found = problems.rows("correlation_id", candidate["id"], ["sys_id", "number"])
            number = found[0].get("number") if found else None
            reference = str(number or created.sys_id)
        except WriteBackError as exc:
            echo(f"{candidate['id']}: no problem opened: {exc}")
            continue
        linked = failed = 0
        for ticket in candidate["ticket_ids"][-MAX_LINKS:]:
            try:
                rows = incidents.rows("number", ticket, ["sys_id"])
                if not rows:
                    failed += 1
                    continue
                incidents.update(
                    rows[0]["sys_id"],
                    {settings.link_field: reference},
                    f"Linked to problem {reference}: recurring issue {candidate['id']}.",
                    f"{candidate['id']}:{ticket}"[:64],
                )
                linked += 1
            except WriteBackError as exc:
                failed += 1
                echo(f"{candidate['id']}: incident {ticket} not linked: {exc}")
        opened.append(Opened(candidate["id"], reference, created.status, linked, failed))
    return opened


def read_decisions(
    problems: ServiceNowWriter, settings: ProblemWriteBackParams
) -> list[dict[str, str]]:
    """The problems opened from candidates, each with its decision: accepted, rejected or
    pending."""
    rows = problems.rows(
        "correlation_display",
        MARKER_PREFIX,
        ["sys_id", "number", "correlation_id", "state", "resolution_code"],
    )
    decided = []
    for row in rows:
        candidate = row.get("correlation_id") or ""
        if not candidate.startswith(ID_PREFIX):
            continue  # an incident from an early warning, or another integration's record
        state, code = row.get("state") or "", row.get("resolution_code") or ""
        if code in settings.rejected or state in settings.rejected:
            decision = "rejected"
        elif state and state != settings.state:
            decision = "accepted"
        else:
            decision = "pending"
        decided.append(
            {"candidate": candidate, "problem": row.get("number") or row.get("sys_id", ""),
             "state": state, "resolution_code": code, "decision": decision}
        )  # fmt: skip
    return sorted(decided, key=lambda d: d["candidate"])


def precision(decisions: list[dict[str, str]], candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """Accepted among decided, overall and by the month each candidate was raised."""
    raised = {c["id"]: c["raised_at"][:7] for c in candidates}
    months: dict[str, dict[str, int]] = {}
    for decision in decisions:
        month = raised.get(decision["candidate"], "unknown")
        counts = months.setdefault(month, {"accepted": 0, "rejected": 0, "pending": 0})
        counts[decision["decision"]] += 1

    def share(counts: dict[str, int]) -> float | None:
        decided = counts["accepted"] + counts["rejected"]
        return round(counts["accepted"] / decided, 3) if decided else None

    total = {k: sum(m[k] for m in months.values()) for k in ("accepted", "rejected", "pending")}
    return {
        "precision": share(total),
        **total,
        "by_month": {m: {**c, "precision": share(c)} for m, c in sorted(months.items())},
    }


DECISION_METRICS = ("precision", "accepted", "rejected", "pending")


def track_precision(
    root: Path, params: Params, summary: dict[str, Any], threshold: float
) -> str | None:
    """The decisions' figures logged on the registered version of the catalog's recurrence
    model that is serving (`champion`, else the newest `challenger`), as one more point of
    each metric's history in MLflow, so its precision reads as a line over time; the
    threshold the candidates were raised at is tagged beside it, since `itsm-ml problems`
    raises them with `problems.threshold`, which may not be the one the version chose.
    Returns "name vN", or None when the catalog has no registered recurrence model."""
    from itsm_ml.tracking import registry

    found = catalog(params).of_family("problems")
    if not found:
        return None
    name = found[0].registered_model
    client = registry.client(root)
    version = registry.version_by_alias(client, name, registry.CHAMPION) or (
        registry.version_by_alias(client, name, registry.CHALLENGER)
    )
    if version is None:
        return None
    now = int(time.time() * 1000)
    steps = len(client.get_metric_history(version.run_id, "decisions accepted"))
    for key in DECISION_METRICS:
        value = summary.get(key)
        if value is not None:
            client.log_metric(version.run_id, f"decisions {key}", float(value), now, steps)
    for key, value in (
        ("decisions.precision", summary.get("precision")),
        ("decisions.threshold", threshold),
        ("decisions.at", datetime.fromtimestamp(now / 1000, UTC).isoformat(timespec="seconds")),
    ):
        client.set_model_version_tag(name, str(version.version), key, str(value))
    return f"{name} v{version.version}"
