"""Exports a real desk might hand us, generated here: five shapes, no real data.

Each `write_<shape>(folder, seed)` writes one file into `folder` and returns it with the
`source` block that maps it (as it would sit under `tickets.source` or `changes.source` in
params.yaml, its `path` relative to `folder`). Column names are neither ServiceNow's nor our
canonical ones, dates are in a non-ISO format named by `date_format` (or `time_format`), and
each label carries a learnable signal plus noise, so a model can beat the majority class
without being handed the answer. Everything is drawn from `numpy.random.default_rng(seed)`:
the same seed writes the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Export = tuple[Path, dict[str, Any]]

START = pd.Timestamp("2024-01-08 07:00")
SPAN_DAYS = 330


def _times(rng: np.random.Generator, n: int) -> pd.Series:
    """`n` sorted moments over the period, minute precision (exports rarely keep seconds)."""
    minutes = np.sort(rng.integers(0, SPAN_DAYS * 24 * 60, size=n))
    return pd.Series(START + pd.to_timedelta(minutes, unit="min"))


def _pick(
    rng: np.random.Generator, values: list[str], n: int, p: list[float] | None = None
) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=p)]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------- ticket_text_one_label

# Each team's own words; tickets borrow a word from another team now and then.
TEAM_TERMS = {
    "Network Ops": ["vpn", "wifi", "switch port", "router", "latency", "dns", "firewall rule"],
    "Workplace": ["laptop", "docking station", "monitor", "keyboard", "printer", "toner"],
    "Identity & Access": ["password", "account locked", "mfa token", "login", "ad group"],
    "Messaging": ["outlook", "mailbox", "calendar invite", "distribution list", "bounce"],
    "Finance Apps": ["sap", "invoice", "purchase order", "cost centre", "payment run"],
    "Data Platform": ["database", "query", "tablespace", "etl job", "warehouse load"],
    "Telephony": ["desk phone", "voicemail", "extension", "call forwarding", "softphone"],
    "Facilities IT": ["badge reader", "door access", "room screen", "projector", "cctv"],
}
TEAM_SHARES = [0.22, 0.19, 0.15, 0.12, 0.1, 0.09, 0.08, 0.05]
SUMMARY_TEMPLATES = [
    "{t} not working",
    "issue with {t}",
    "cannot use {t}",
    "{t} very slow since this morning",
    "request: help with {t}",
    "urgent - {t} down",
]
DETAIL_TEMPLATES = [
    "Hi team, since {when} the {t} {s}. Could you have a look? Thanks",
    "Hello, {t} {s}. I also tried the {u} but no luck. Regards",
    "User reports the {t} {s} after {when}.",
    "{t} {s}; colleague says the {u} is fine. Please advise",
]
SYMPTOMS = ["keeps failing", "gives an error", "stopped responding", "is intermittent", "is broken"]
WHEN = ["yesterday", "the update", "monday", "the office move", "the weekend", "lunch"]


def write_ticket_text_one_label(folder: Path, seed: int = 0) -> Export:
    """A help-desk ticket CSV with two free-text columns and one label, the resolver team.

    Imitates a desk that exports `Ref, Raised On, Summary, Details, Reporter, Source, Team`
    with European dates (`25.03.2024 14:07`). Eight teams with their own vocabulary; a
    quarter of the summaries name another team's thing, some details are empty.
    """
    rng = np.random.default_rng(seed)
    n = 1500
    teams = list(TEAM_TERMS)
    team = _pick(rng, teams, n, TEAM_SHARES)
    summaries, details = [], []
    for own in team:
        terms = TEAM_TERMS[own]
        other = TEAM_TERMS[teams[rng.integers(len(teams))]]
        lead = other if rng.random() < 0.25 else terms
        summary = SUMMARY_TEMPLATES[rng.integers(len(SUMMARY_TEMPLATES))]
        summaries.append(summary.format(t=lead[rng.integers(len(lead))]))
        if rng.random() < 0.03:
            details.append("")
            continue
        second = terms if rng.random() < 0.7 else other
        detail = DETAIL_TEMPLATES[rng.integers(len(DETAIL_TEMPLATES))]
        details.append(
            detail.format(
                t=second[rng.integers(len(second))],
                u=TEAM_TERMS[teams[rng.integers(len(teams))]][0],
                s=SYMPTOMS[rng.integers(len(SYMPTOMS))],
                when=WHEN[rng.integers(len(WHEN))],
            )
        )
    frame = pd.DataFrame(
        {
            "Ref": [f"HD-{i:06d}" for i in range(40_001, 40_001 + n)],
            "Raised On": _times(rng, n).dt.strftime("%d.%m.%Y %H:%M"),
            "Summary": summaries,
            "Details": details,
            "Reporter": [f"u{k:05d}" for k in rng.integers(1, 400, size=n)],
            "Source": _pick(rng, ["Mail", "Phone", "Self-Service", "Walk-up"], n),
            "Team": team,
        }
    )
    path = _write(frame, folder / "helpdesk_tickets.csv")
    return path, {
        "kind": "ticket_csv",
        "path": path.name,
        "id": "Ref",
        "opened_at": "Raised On",
        "date_format": "%d.%m.%Y %H:%M",
        "text": ["Summary", "Details"],
        "features": {"caller": "Reporter", "channel": "Source"},
        "labels": {"team": "Team"},
    }


# --------------------------------------------------------------------- ticket_binary_no_text

PRIO_EFFECT = {"P1": 2.2, "P2": 1.2, "P3": 0.0, "P4": -1.2}
SERVICE_EFFECT = {
    "Warehouse": 1.8,
    "Payroll": 1.0,
    "Network": 0.4,
    "CRM": 0.0,
    "Print": -0.8,
    "Intranet": -1.2,
}
SITE_EFFECT = {"Pune": 1.0, "Manila": 0.6, "Leeds": 0.0, "Porto": 0.0, "Krakow": -0.5}
METHOD_EFFECT = {"Phone": -0.5, "E-Mail": 0.2, "Portal": 0.6, "Chat": 0.0}


def write_ticket_binary_no_text(folder: Path, seed: int = 0) -> Export:
    """A ticket CSV without any text and a yes/no label: was the SLA breached.

    Imitates a service-level report (`Ticket No, Logged, Prio, Contact Method, Site,
    Svc Line, SLA Breached`) with US dates (`03/25/2024 02:07 PM`) and `Y`/`N`. Priority,
    service line, site and contact method drive the breach odds; the rest is chance.
    """
    rng = np.random.default_rng(seed)
    n = 2000
    prio = _pick(rng, list(PRIO_EFFECT), n, [0.06, 0.2, 0.44, 0.3])
    service = _pick(rng, list(SERVICE_EFFECT), n)
    site = _pick(rng, list(SITE_EFFECT), n, [0.2, 0.15, 0.3, 0.2, 0.15])
    method = _pick(rng, list(METHOD_EFFECT), n, [0.3, 0.3, 0.3, 0.1])
    logit = (
        -1.1
        + pd.Series(prio).map(PRIO_EFFECT)
        + pd.Series(service).map(SERVICE_EFFECT)
        + pd.Series(site).map(SITE_EFFECT)
        + pd.Series(method).map(METHOD_EFFECT)
    ).to_numpy(dtype=float)
    breached = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "Ticket No": [f"T{i}" for i in range(880_101, 880_101 + n)],
            "Logged": _times(rng, n).dt.strftime("%m/%d/%Y %I:%M %p"),
            "Prio": prio,
            "Contact Method": method,
            "Site": site,
            "Svc Line": service,
            "SLA Breached": np.where(breached, "Y", "N"),
        }
    )
    path = _write(frame, folder / "sla_report.csv")
    return path, {
        "kind": "ticket_csv",
        "path": path.name,
        "id": "Ticket No",
        "opened_at": "Logged",
        "date_format": "%m/%d/%Y %I:%M %p",
        "features": {
            "priority": "Prio",
            "channel": "Contact Method",
            "location": "Site",
            "service": "Svc Line",
        },
        "labels": {"sla_breached": "SLA Breached"},
    }


# --------------------------------------------------------------- ticket_many_classes_no_text

DEPARTMENTS = ["PAY", "HR", "LOG", "CRM", "ERP", "WEB", "DWH", "SEC", "NET", "OPS", "MKT", "LAB"]


def write_ticket_many_classes_no_text(folder: Path, seed: int = 0) -> Export:
    """A ticket CSV without text whose label has 120 values: the owner group.

    Imitates an application-support queue export (`Incident ID, Reported, App Code, Region,
    Env, Owner Group`) with dates like `25-Mar-2024 14:07`. Each owner group looks after one
    application code; 15% of the tickets end with another group (misfiled, shared apps).
    40 tickets per group, spread over the year, so most groups appear in every split.
    """
    rng = np.random.default_rng(seed)
    groups = [f"{DEPARTMENTS[k % len(DEPARTMENTS)]}-SUPPORT-{k:03d}" for k in range(120)]
    apps = [f"APP{(k * 37) % 1000:04d}" for k in range(120)]
    per_group = 40
    owner = np.repeat(np.arange(120), per_group)
    rng.shuffle(owner)
    n = len(owner)
    app = np.asarray(apps, dtype=object)[owner]
    misfiled = rng.random(n) < 0.15
    final = np.where(misfiled, rng.integers(0, 120, size=n), owner)
    frame = pd.DataFrame(
        {
            "Incident ID": [f"INC-{i:07d}" for i in range(3_000_001, 3_000_001 + n)],
            "Reported": _times(rng, n).dt.strftime("%d-%b-%Y %H:%M"),
            "App Code": app,
            "Region": _pick(rng, ["EMEA", "AMER", "APAC"], n, [0.5, 0.3, 0.2]),
            "Env": _pick(rng, ["PRD", "UAT", "DEV"], n, [0.7, 0.2, 0.1]),
            "Owner Group": np.asarray(groups, dtype=object)[final],
        }
    )
    path = _write(frame, folder / "app_support_queue.csv")
    return path, {
        "kind": "ticket_csv",
        "path": path.name,
        "id": "Incident ID",
        "opened_at": "Reported",
        "date_format": "%d-%b-%Y %H:%M",
        "features": {"ci": "App Code", "location": "Region", "environment": "Env"},
        "labels": {"owner_group": "Owner Group"},
    }


# ----------------------------------------------------------------------- change_metrics_only


def write_change_metrics_only(folder: Path, seed: int = 0) -> Export:
    """A change CSV holding only the change's own measures and whether it failed.

    Imitates a deployment tool's export (`Change Ref, Merged, Files Touched, Lines Added,
    Lines Removed, Authors, Review Rounds, Caused Incident`) with dates like
    `25/03/2024 14:07` and `yes`/`no`: no planned window, CI, service, type or group. Bigger
    changes with more authors and fewer review rounds fail more often (about one in six).
    """
    rng = np.random.default_rng(seed)
    n = 2000
    files = rng.geometric(0.15, size=n)
    added = np.round(files * rng.lognormal(3.0, 1.0, size=n)).astype(int)
    removed = np.round(added * rng.beta(2, 5, size=n)).astype(int)
    authors = 1 + rng.poisson(0.6, size=n)
    reviews = rng.integers(0, 5, size=n)
    logit = (
        -3.6
        + 0.45 * np.log1p(files)
        + 0.35 * np.log1p(added)
        + 0.6 * (authors - 1)
        - 0.5 * reviews
        + rng.normal(0, 0.3, size=n)
    )
    failed = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "Change Ref": [f"{x:012x}" for x in rng.integers(0, 2**48, size=n)],
            "Merged": _times(rng, n).dt.strftime("%d/%m/%Y %H:%M"),
            "Files Touched": files,
            "Lines Added": added,
            "Lines Removed": removed,
            "Authors": authors,
            "Review Rounds": reviews,
            "Caused Incident": np.where(failed, "yes", "no"),
        }
    )
    path = _write(frame, folder / "deployments.csv")
    return path, {
        "kind": "change_csv",
        "path": path.name,
        "id": "Change Ref",
        "opened_at": "Merged",
        "time_format": "%d/%m/%Y %H:%M",
        "numeric": {
            "files": "Files Touched",
            "size": "Lines Added",
            "lines_removed": "Lines Removed",
            "authors": "Authors",
            "review_rounds": "Review Rounds",
        },
        "outcome": "Caused Incident",
    }


# ---------------------------------------------------------------------- event_log_other_names

QUEUES = {
    "Servers": ["disk full", "cpu spike", "reboot", "patching", "vm snapshot"],
    "Network": ["vpn", "wifi", "dns", "proxy", "packet loss"],
    "Apps": ["crm error", "portal login", "report export", "release bug", "api timeout"],
    "Workplace": ["laptop", "printer", "monitor", "headset", "docking"],
    "Access": ["password", "locked out", "mfa", "permission", "new starter"],
    "Database": ["slow query", "deadlock", "backup failed", "replication", "tablespace"],
}
QUEUE_SHARES = [0.2, 0.18, 0.22, 0.18, 0.14, 0.08]
FIRST_LINE = "Service Desk"
STATUSES = ["new", "assigned", "in progress", "pending", "resolved", "closed"]


def write_event_log_other_names(folder: Path, seed: int = 0) -> Export:
    """An event log, one row per update of a case, with names nobody else uses.

    Imitates a case-management audit trail (`case, step, changed at, status, queue,
    severity, title`) with dates like `25.03.2024 14:07:33`, exported in time order so a
    case's events are interleaved with others'. 3-6 events per case; the queue at open is
    right about 55% of the time, otherwise the case starts at the Service Desk or a wrong
    queue and is reassigned before it closes. The final queue is the label, the first one a
    feature; the title (one of the final queue's words, sometimes another's) is the text.
    """
    rng = np.random.default_rng(seed)
    cases = 1200
    names = list(QUEUES)
    final = _pick(rng, names, cases, QUEUE_SHARES)
    opened = _times(rng, cases)
    rows = []
    for k in range(cases):
        team = final[k]
        words = QUEUES[names[rng.integers(len(names))]] if rng.random() < 0.2 else QUEUES[team]
        title = f"{words[rng.integers(len(words))]} - {['user', 'site', 'team'][k % 3]} affected"
        draw = rng.random()
        first = team if draw < 0.55 else FIRST_LINE if draw < 0.8 else names[rng.integers(6)]
        events = int(rng.integers(3, 7))
        moved = int(rng.integers(1, events))  # the event where the case reaches its final queue
        severity = f"Sev{rng.choice([1, 2, 3, 4], p=[0.05, 0.2, 0.5, 0.25])}"
        when = opened.iloc[k]
        for step in range(1, events + 1):
            if step > 1:
                when = when + pd.Timedelta(minutes=int(rng.integers(5, 3 * 24 * 60)))
            rows.append(
                {
                    "case": f"CS{k + 70_001}",
                    "step": step,
                    "changed at": when,
                    "status": STATUSES[min(step - 1, 4)] if step < events else "closed",
                    "queue": first if step <= moved else team,
                    "severity": severity,
                    "title": title,
                }
            )
    frame = pd.DataFrame(rows).sort_values(["changed at", "case"], kind="stable")
    frame["changed at"] = frame["changed at"].dt.strftime("%d.%m.%Y %H:%M:%S")
    path = _write(frame, folder / "case_history.csv")
    return path, {
        "kind": "event_log",
        "path": path.name,
        "case_id": "case",
        "order": ["step", "changed at"],
        "date_format": "%d.%m.%Y %H:%M:%S",
        "opened_at": "changed at",
        "closed_at": "changed at",
        "text": ["title"],
        "at_open": {"assignment_group": "queue", "severity": "severity"},
        "labels": {"assignment_group": "queue"},
    }


SHAPES = {
    "ticket_text_one_label": write_ticket_text_one_label,
    "ticket_binary_no_text": write_ticket_binary_no_text,
    "ticket_many_classes_no_text": write_ticket_many_classes_no_text,
    "change_metrics_only": write_change_metrics_only,
    "event_log_other_names": write_event_log_other_names,
}
