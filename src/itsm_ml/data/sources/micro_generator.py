"""Seeded generator of chat-assistant micro-records: fixes made outside the service desk.

Most records are the desk's known requests asked of the assistant instead ("forgot my
password", "mailbox full"), by the ticket generator's callers, with one of the fixes the desk
would have applied: a steady background spread over every service. On top of it,
`hidden.count` recurring issues that never reach the desk: each a run of `hidden.records`
micro-records over `hidden.days` on one service, worded differently by different callers
(an error after an update, a missing add-in), the fault problem management would want to
hear of. They start at even shares of the date range; `hidden_issues` says where.

Rows look like the assistant's export (the names `POST /v1/micro-records` takes) and go
through the same adapter as a real export, so the offline pipeline exercises the real
ingest path.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from itsm_ml.config import GeneratorSource, MicroRecordGeneratorSource, MicroRecordsFileSource
from itsm_ml.data.sources import generator as tickets
from itsm_ml.data.sources.micro_records import micro_rows_to_canonical

# fmt: off
# (service, its CI, wordings of the symptom, what fixed it): none of them is a ticket topic.
_HIDDEN = (
    ("VPN", "vpn-gw-02", ("VPN client shows error 809 since the Windows update", "Error 809 when connecting to VPN from home after patching", "cannot connect VPN, error 809 after update", "VPN fails with 809 since yesterday's update"), "Reset the network adapter and ran the VPN client repair; it connects."),
    ("Email", "exch-prd-01", ("Teams meeting add-in missing from Outlook", "Outlook no longer shows the Teams meeting button", "Teams add-in disappeared in Outlook ribbon", "can't create Teams meeting from Outlook, add-in gone"), "Re-enabled the Teams add-in under Outlook's disabled items."),
    ("Printing", "mfp-floor-03", ("Badge not recognised at the follow-me printers on floor 3", "Follow-me printing does not accept my badge on floor 3", "floor 3 printer card reader rejects badge", "badge release fails at floor 3 copier"), "Re-registered the badge in the print portal; release works."),
    ("Identity", "adfs-prd-01", ("MFA push notification never arrives on my new phone", "Not getting MFA prompts after changing phone", "authenticator push not received on new phone", "MFA approval request doesn't show on new mobile"), "Re-registered the authenticator app from the security info page."),
    ("File Services", "fs-prd-02", ("OneDrive sync stuck on processing changes", "OneDrive stuck syncing, processing changes forever", "files not syncing, OneDrive says processing changes", "OneDrive icon spinning, sync never finishes"), "Reset the OneDrive client with onedrive.exe /reset; sync resumed."),
    ("SAP ERP", "sap-ecc-app-02", ("SAP GUI crashes when exporting a report to Excel", "Export to spreadsheet closes SAP GUI", "SAP crashes on Excel export of the list", "SAP GUI freezes and quits when I export to Excel"), "Switched the export format to XLSX in the SAP GUI options."),
    ("Telephony", "sbc-prd-01", ("Headset audio one-way on softphone after driver update", "People can't hear me on the softphone since the headset update", "softphone calls: caller can't hear me, headset", "one-way audio with USB headset in softphone"), "Rolled back the headset driver and re-selected the audio device."),
    ("Workplace", "wks-fleet-win11", ("Laptop fan loud and battery drains since BIOS update", "Battery drains in two hours after the BIOS update", "fan always running, battery empty fast after update", "laptop hot and battery drain after firmware update"), "Reset the power plan to balanced and updated the chipset driver."),
)
_OPENINGS = ("", "", "Hi, ", "Hello, ", "Quick one: ", "Assistant: user reports ")
_ENDINGS = ("", "", "", " - any idea?", ". Please help.", ", how do I fix it?")
_CHANNELS = (("chat assistant", 0.75), ("self-service", 0.2), ("walk-up", 0.05))
_SERVICE_KNOWN = 0.7  # share of records where the assistant names the service
# fmt: on


class HiddenIssue(NamedTuple):
    service: str
    start: pd.Timestamp
    end: pd.Timestamp
    records: int
    symptom: str  # its first wording, to name it in a report


def hidden_issues(params: MicroRecordGeneratorSource) -> list[HiddenIssue]:
    """Where the hidden issues of `params` are: the k-th starts at share (k + 0.5) / count of
    the date range and cycles through the catalogue of issues."""
    knobs = params.hidden
    start = pd.Timestamp(params.start)
    span = pd.Timestamp(params.end) - start - pd.Timedelta(days=knobs.days)
    out = []
    for k in range(knobs.count):
        service, _, wordings, _ = _HIDDEN[k % len(_HIDDEN)]
        begins = (start + span * ((k + 0.5) / knobs.count)).floor("D") + pd.Timedelta(hours=8)
        out.append(
            HiddenIssue(
                service, begins, begins + pd.Timedelta(days=knobs.days), knobs.records, wordings[0]
            )
        )
    return out


def generate_micro_records(params: MicroRecordGeneratorSource) -> pd.DataFrame:
    """The canonical micro_records table."""
    rows, _ = generate_with_truth(params)
    return micro_rows_to_canonical(
        rows, MicroRecordsFileSource(kind="assistant_export", path="<generator>")
    )


def generate_with_truth(params: MicroRecordGeneratorSource) -> tuple[pd.DataFrame, pd.Series]:
    """The export's rows (all text, sorted by time), and per row the index of the hidden
    issue it belongs to (-1 for the background)."""
    rng = np.random.default_rng(params.seed)
    n = params.rows
    window = GeneratorSource(kind="generator", start=params.start, end=params.end)
    opened = tickets._opened_times(rng, n, window)
    requests = tickets._ALL_REQUESTS
    which = rng.integers(0, len(requests), n)
    texts = [
        requests[w]
        .phrasings[int(rng.integers(0, 3))]
        .replace("{ci}", tickets._SERVICES[requests[w].service][1][0])
        for w in which
    ]
    fixes = [
        _one(rng, tickets._FIXES.get(requests[w].topic, tickets._GENERIC_FIXES)) for w in which
    ]
    services = [requests[w].service for w in which]
    cis: list[str | None] = [None] * n
    issue = [-1] * n
    for k, found in enumerate(hidden_issues(params)):
        service, ci, wordings, fix = _HIDDEN[k % len(_HIDDEN)]
        seconds = rng.uniform(0, (found.end - found.start).total_seconds(), found.records)
        opened = np.concatenate([opened, (found.start.value // 10**9 + seconds).astype(np.int64)])
        texts += [_one(rng, wordings) for _ in range(found.records)]
        fixes += [fix] * found.records
        services += [service] * found.records
        cis += [ci if rng.random() < 0.5 else None for _ in range(found.records)]
        issue += [k] * found.records
    total = len(texts)
    worded = [_one(rng, _OPENINGS) + text + _one(rng, _ENDINGS) for text in texts]
    caller_p = np.arange(1, tickets._CALLERS + 1) ** -0.7
    callers = rng.choice(tickets._CALLERS, total, p=caller_p / caller_p.sum()) + 1
    named = rng.random(total) < _SERVICE_KNOWN
    channel = tickets._draw(rng, _CHANNELS, total)
    minutes = np.round(rng.lognormal(np.log(12), 0.8, total), 1)
    order = np.argsort(opened, kind="stable")
    frame = (
        pd.DataFrame(
            {
                "timestamp": pd.to_datetime(opened, unit="s").strftime("%Y-%m-%dT%H:%M:%S"),
                "user": [f"Caller {c}" for c in callers],
                "service": [s if keep else None for s, keep in zip(services, named, strict=True)],
                "ci": cis,
                "symptom": worded,
                "fix": fixes,
                "minutes_lost": [f"{m:g}" for m in minutes],
                "channel": channel,
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    frame.insert(0, "id", [f"MR{i + 1:07d}" for i in range(total)])
    truth = pd.Series(np.asarray(issue)[order], name="hidden_issue")
    return frame.astype("string"), truth


def _one(rng: np.random.Generator, choices: tuple[str, ...]) -> str:
    return choices[int(rng.integers(0, len(choices)))]
