"""Seeded generator of ServiceNow-shaped incidents and change requests.

Both frames look like a table export read as text: ServiceNow column names, every column of
dtype "string", missing cells as NA, one row per record, sorted by ``opened_at`` and numbered
in that order (INC0010001..., CHG0030001...). They go through the same adapters as real
exports (`table_frame_to_canonical` with INCIDENT_DATE_FORMAT, `change_rows_to_canonical`
with GENERATED_CHANGE_MAPPING), so the offline pipeline exercises the real ingest path.

Incidents come from a catalogue of business services (each with its CIs), categories (with
subcategories and words) and assignment groups. As on a real desk, some tickets are known
requests (password resets, toner, VPN tokens) worded alike by every caller and handled by one
group nearly always; some are vague ("it doesn't work", "please call me") and often stay at
the Service Desk; the rest are reports whose group depends on category and service, with
noise, in texts mixing category, generic and off-topic words. So a router can be sure of some
tickets and of few others. Priority is ServiceNow's impact x urgency lookup; both follow what
the desk hears at open (a critical service, a request, a VIP caller, a phone call) with
noise, and the caller's wording reflects them loosely ("Outage:", "Cannot work at all", "No
rush").

How a ticket was resolved follows its topic (the known request it is, else its subcategory):
the close code's mix (password problems often clear before anyone acts, hardware gets
workarounds, crashes are known errors), a close note giving one of the topic's fixes in the
close code's words, and on part of the solved tickets the topic's knowledge article. A few
recurring faults (a CI and subcategory, over a stretch of the date range) are problems: about
half of their incidents in that stretch are linked to the problem and close as known errors
with its workaround. So similar tickets share what fixed them, as on a real desk.

Changes fail following a logistic model of type, size, window, fragile CIs, riskier groups,
off-hours starts, windows overlapping on the same CI and windows inside the year-end freeze,
which defers most planned work to January. Every change is closed, so its label is always
known (as in an extract taken once the last one closed: windows of changes opened near
``end`` may run past it); a few recent incidents are open.

DriftKnobs: incidents opened after ``after`` follow a shifted category mix, part of their
texts use words never seen before, and new groups take over part of existing groups' work
(for changes too). The random draws do not depend on the knobs, so records opened before
``after`` are identical with and without drift. The resolution fields draw after every other
column, and the close code takes one uniform per ticket whatever its mix, so how tickets are
resolved can change without moving any other column.

SurgeKnobs (incidents only): `count` bursts of `tickets` extra incidents, each on one service
within `hours`, as when a CI fails and its users call. A surge's tickets copy one ordinary
ticket of that service (the same CI, category and words) from different callers; they are
numbered after the ordinary tickets (INC9...), which stay identical with and without surges.
`surges(params)` says where they are, for a benchmark to check detections against.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from itsm_ml.config import ChangeCsvSource, DriftKnobs, GeneratorSource
from itsm_ml.errors import ConfigError

INCIDENT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
CHANGE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

GENERATED_CHANGE_MAPPING = ChangeCsvSource(
    kind="change_csv",
    path="<generator>",
    id="number",
    opened_at="opened_at",
    time_format=CHANGE_DATE_FORMAT,
    planned_start="planned_start",
    planned_end="planned_end",
    closed_at="closed_at",
    categorical={
        "ci": "cmdb_ci",
        "service": "business_service",
        "change_type": "type",
        "assignment_group": "assignment_group",
    },
    numeric={"size": "size"},
    outcome="close_code",
    outcome_true_values=("unsuccessful", "successful with issues"),
    outcome_false_values=("successful",),
)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]

# fmt: off
# service: (group owning it, its CIs; the first ones carry most of the load)
_SERVICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Email": ("Messaging", ("exch-prd-01", "exch-prd-02", "exch-prd-03", "mail-gw-01", "mail-gw-02")),
    "VPN": ("Network Ops", ("vpn-gw-01", "vpn-gw-02", "radius-prd-01")),
    "SAP ERP": ("SAP Basis", ("sap-ecc-app-01", "sap-ecc-app-02", "sap-ecc-db-01", "sap-bw-01", "sap-po-01", "sap-router-01")),
    "Network": ("Network Ops", ("core-sw-01", "core-sw-02", "fw-edge-01", "dns-prd-01", "wlc-prd-01", "rtr-wan-01", "rtr-wan-02")),
    "Printing": ("Print Services", ("prt-srv-01", "prt-srv-02", "mfp-floor-03", "mfp-floor-05")),
    "Workplace": ("Desktop Support", ("wks-fleet-win11", "wks-fleet-mac", "vdi-prd-01", "sccm-prd-01")),
    "Identity": ("Identity & Access", ("ad-dc-01", "ad-dc-02", "adfs-prd-01", "idm-prd-01")),
    "Telephony": ("Telephony", ("pbx-prd-01", "vm-srv-01", "sbc-prd-01")),
    "File Services": ("Storage & Backup", ("fs-prd-01", "fs-prd-02", "nas-prd-01", "backup-prd-01")),
    "CRM": ("Application Support", ("crm-app-01", "crm-app-02", "crm-db-01")),
    "Databases": ("Database Admins", ("ora-prd-01", "ora-prd-02", "sql-prd-01", "sql-prd-02", "pg-prd-01")),
    "Intranet": ("Web Team", ("web-prd-01", "web-prd-02", "cms-prd-01", "lb-prd-01")),
}


class _Category(NamedTuple):
    name: str
    weight: float
    drifted_weight: float  # weight in the shifted mix (an MFA rollout, a Teams migration)
    ambiguity: float  # 0..1: how often its tickets are misrouted and reassigned
    group: str
    by_service: float  # share handled by the owner of the service instead of `group`
    others: tuple[str, ...]  # plausible other groups that end up with some of its tickets
    services: tuple[str, ...]  # most likely first
    subcategories: tuple[str, ...]
    words: tuple[str, ...]  # ten each, so word draws vectorise over a 2-D table
    new_words: tuple[str, ...]  # used only after the drift date


_CATEGORIES = (
    _Category("network", 0.12, 0.05, 0.6, "Network Ops", 0.1, ("Service Desk", "Telephony"), ("Network", "VPN", "Intranet"), ("connectivity", "wifi", "dns", "firewall", "vpn"), ("network", "connection", "wifi", "latency", "switch", "router", "dns", "dropped", "firewall", "vpn"), ("zscaler", "sdwan")),
    _Category("hardware", 0.14, 0.05, 0.3, "Desktop Support", 0.0, ("Service Desk", "Print Services"), ("Workplace",), ("laptop", "monitor", "docking station", "keyboard", "mobile device"), ("laptop", "screen", "battery", "docking", "keyboard", "mouse", "charger", "monitor", "boot", "broken"), ("intune", "autopilot")),
    _Category("software", 0.14, 0.08, 0.8, "Application Support", 0.6, ("Service Desk", "Desktop Support"), ("Workplace", "CRM", "Intranet", "SAP ERP", "Email"), ("installation", "license", "crash", "update"), ("install", "application", "crash", "update", "license", "version", "freeze", "browser", "excel", "plugin"), ("copilot", "chatgpt")),
    _Category("email", 0.12, 0.18, 0.3, "Messaging", 0.1, ("Service Desk", "Identity & Access"), ("Email",), ("mailbox", "outlook client", "distribution list", "calendar"), ("outlook", "mailbox", "email", "calendar", "inbox", "attachment", "meeting", "send", "receive", "quota"), ("m365", "purview")),
    _Category("access", 0.14, 0.30, 0.5, "Identity & Access", 0.3, ("Service Desk",), ("Identity", "SAP ERP", "VPN", "CRM"), ("password reset", "account locked", "permissions", "new account"), ("password", "locked", "account", "login", "access", "permission", "reset", "expired", "credentials", "unlock"), ("mfa", "okta")),
    _Category("database", 0.06, 0.04, 0.5, "Database Admins", 0.3, ("Linux Server", "Windows Server"), ("Databases", "SAP ERP", "CRM"), ("performance", "backup", "replication", "connection pool"), ("database", "query", "oracle", "sql", "timeout", "backup", "tablespace", "deadlock", "replication", "index"), ("snowflake", "databricks")),
    _Category("erp", 0.08, 0.05, 0.6, "SAP Functional", 0.4, ("Service Desk", "Application Support"), ("SAP ERP",), ("invoicing", "purchasing", "payroll", "reporting"), ("sap", "invoice", "posting", "purchase", "order", "transaction", "payroll", "report", "workflow", "vendor"), ("s4hana", "fiori")),
    _Category("printing", 0.08, 0.03, 0.2, "Print Services", 0.0, ("Service Desk", "Desktop Support"), ("Printing",), ("printer offline", "paper jam", "toner", "scanning"), ("printer", "print", "toner", "paper", "jam", "queue", "scan", "offline", "tray", "copier"), ("printix", "uniflow")),
    _Category("telephony", 0.06, 0.18, 0.4, "Telephony", 0.1, ("Network Ops", "Service Desk"), ("Telephony",), ("desk phone", "voicemail", "conference", "mobile"), ("phone", "call", "voicemail", "headset", "dial", "conference", "extension", "line", "audio", "softphone"), ("teams", "zoom")),
    _Category("storage", 0.06, 0.04, 0.5, "Storage & Backup", 0.3, ("Windows Server", "Service Desk"), ("File Services", "Databases"), ("file share", "quota", "restore", "permissions"), ("share", "drive", "folder", "file", "restore", "quota", "disk", "storage", "mapped", "space"), ("onedrive", "sharepoint")),
)

# new group: the existing group it takes work from (each existing group at most once)
_NEW_GROUPS = (
    ("Collaboration Tools", "Messaging"),
    ("Zero Trust", "Identity & Access"),
    ("Endpoint Management", "Desktop Support"),
    ("Cloud Platform", "Windows Server"),
    ("Site Reliability", "Linux Server"),
    ("Data Platform", "Database Admins"),
    ("SaaS Admin", "Application Support"),
    ("Self-Service Automation", "Service Desk"),
    ("S4 Transformation", "SAP Functional"),
    ("Network Automation", "Network Ops"),
)
_TAKEOVER = 0.5  # share of a predecessor's work a new group takes


class _Request(NamedTuple):
    """A request the desk knows by its wording, and the one group that handles it."""

    phrasings: tuple[str, str, str]
    group: str
    service: str
    urgency: float  # latent urgency shift: locked out means no work, a second monitor can wait
    topic: str  # what fixes it: its key in _FIXES (a subcategory's, or its own)


# category: (share of its tickets that are such requests, the requests, most common first).
# Real desks get many of these (password resets, unlocks, toner, VPN tokens): worded alike
# by every caller and routed the same way every time, they are the tickets worth auto-routing.
_REQUESTS: dict[str, tuple[float, tuple[_Request, ...]]] = {
    "network": (0.35, (
        _Request(("VPN token expired, cannot connect from home", "VPN connection refused, token expired", "New VPN token needed"), "Network Ops", "VPN", 0.6, "vpn token"),
        _Request(("No wifi signal in meeting room", "Wifi access point down in meeting room", "Meeting room wifi not available"), "Network Ops", "Network", 0.0, "wifi"),
    )),
    "hardware": (0.40, (
        _Request(("Laptop battery no longer holds a charge", "Laptop battery replacement", "Swollen battery, need a new laptop battery"), "Desktop Support", "Workplace", -0.2, "laptop battery"),
        _Request(("Docking station does not detect my monitors", "Docking station stopped working", "Replace faulty docking station"), "Desktop Support", "Workplace", 0.0, "docking station"),
        _Request(("Request a second monitor", "Need an additional monitor for my desk", "New monitor request"), "Desktop Support", "Workplace", -1.2, "new monitor"),
    )),
    "software": (0.15, (
        _Request(("Install Visio on my laptop", "Request software installation of Visio", "Need a Visio license"), "Desktop Support", "Workplace", -0.8, "installation"),
        _Request(("CRM record cannot be saved, validation error", "Validation error when saving CRM record", "CRM save fails with validation error"), "Application Support", "CRM", 0.3, "crm validation"),
    )),
    "email": (0.45, (
        _Request(("Mailbox full, please increase the quota", "Mailbox size limit reached", "Cannot receive mail, mailbox over quota"), "Messaging", "Email", 0.2, "mailbox quota"),
        _Request(("Need access to a shared mailbox", "Shared mailbox access for my team", "Grant shared mailbox permissions"), "Messaging", "Email", -0.4, "shared mailbox"),
        _Request(("Please add me to a distribution list", "Add user to distribution list", "Distribution list membership change"), "Messaging", "Email", -1.0, "distribution list"),
    )),
    "access": (0.60, (
        _Request(("Password reset request", "Forgot my password, please reset it", "Need a password reset for my account"), "Identity & Access", "Identity", 0.4, "password reset"),
        _Request(("Account locked out after too many attempts", "My account is locked out, please unlock", "Locked out of my account again"), "Identity & Access", "Identity", 0.9, "account locked"),
        _Request(("New starter needs an account created", "Create user account for new joiner", "Account creation for new employee"), "Identity & Access", "Identity", -0.6, "new account"),
    )),
    "database": (0.30, (
        _Request(("Tablespace full on {ci}", "{ci}: tablespace out of space", "Extend tablespace on {ci}"), "Database Admins", "Databases", 0.6, "tablespace"),
        _Request(("Refresh test database from production", "Database copy request for testing", "Clone production database to test"), "Database Admins", "Databases", -1.2, "database copy"),
    )),
    "erp": (0.30, (
        _Request(("Cannot post invoice, posting period closed", "Posting period not open for invoice", "Open posting period for invoice entry"), "SAP Functional", "SAP ERP", 0.4, "posting period"),
        _Request(("Purchase order stuck in approval workflow", "PO approval workflow not moving", "Release purchase order stuck in workflow"), "SAP Functional", "SAP ERP", 0.0, "purchasing"),
    )),
    "printing": (0.60, (
        _Request(("Printer {ci} out of toner", "Toner cartridge replacement for {ci}", "Replace toner on {ci}"), "Print Services", "Printing", -0.9, "toner"),
        _Request(("Paper jam on {ci}", "{ci} reports a paper jam", "Jammed paper tray on {ci}"), "Print Services", "Printing", -0.3, "paper jam"),
        _Request(("Add printer {ci} to my laptop", "Install printer {ci} on my computer", "Printer driver needed for {ci}"), "Print Services", "Printing", -0.7, "printer driver"),
    )),
    "telephony": (0.50, (
        _Request(("Voicemail PIN reset", "Reset my voicemail PIN", "Forgot my voicemail PIN"), "Telephony", "Telephony", -0.3, "voicemail"),
        _Request(("Move my desk phone extension to a new desk", "Extension move request", "Desk phone extension change"), "Telephony", "Telephony", -0.9, "extension move"),
    )),
    "storage": (0.45, (
        _Request(("Restore a deleted file from backup", "Please restore a folder deleted yesterday", "File restore from last night's backup"), "Storage & Backup", "File Services", 0.1, "restore"),
        _Request(("Increase quota on the shared drive", "Shared drive full, need more space", "Quota increase for team share"), "Storage & Backup", "File Services", -0.3, "quota"),
    )),
}
# Tickets that name no system and no symptom: the desk calls back before anyone can route them.
_VAGUE_SHARE = 0.12
_VAGUE = ("It doesn't work", "Not working", "Very slow", "Everything is slow today", "Please call me back", "Can someone call me", "Error message", "Problem with my computer", "Help please", "Something is broken", "Quick question", "Not sure who to ask")
_VAGUE_AT_DESK = 0.35  # share the Service Desk keeps for itself
_REQUEST_NOISE = 0.02  # requests still misrouted (wrong queue picked in the portal, ...)

_GENERIC = ("issue", "not working", "please help", "urgent", "problem", "error", "slow", "down", "help needed", "keeps failing", "cannot use", "question about", "asap", "when possible")
# Callers say how bad it is: weights of each generic word per urgency level (high, medium,
# low). Every word turns up at every level: some callers call everything urgent.
_GENERIC_BY_URGENCY = (
    (1, 2, 1, 4, 1, 1, 0.5, 3, 1, 2, 3, 0.3, 3, 0.2),
    (2, 2, 2, 0.5, 2, 2, 1.5, 0.5, 2, 2, 1, 1, 0.2, 0.5),
    (3, 1, 2, 0.4, 2, 1, 2, 0.3, 2, 0.5, 0.5, 3, 0.2, 3),
)
_SHORT_TEMPLATES = ("{a} {g}", "{a} {b} {g}", "{g} - {a} {b}", "{a} {b}", "{g}", "{a} {g} on {ci}")
_SHORT_WEIGHTS = (0.25, 0.25, 0.15, 0.15, 0.05, 0.15)  # a few callers only say "not working"
# ... and how many people it hits: a scope prefix of the short description per impact level
_SCOPES = ("", "Outage: ", "Down for everyone: ", "All users: ", "Whole team: ", "Several users: ", "Only me: ")
_SCOPE_BY_IMPACT = ((3, 3, 2, 1.5, 1.5, 1, 0.2), (6, 0.3, 0.2, 0.3, 1, 1.5, 0.5), (8, 0.15, 0.1, 0.1, 0.2, 0.4, 1))
_OPENINGS = ("User reports", "Caller says", "Since this morning", "After the update", "Several users report", "Manager escalated:", "Whole department affected:", "A colleague and I see")
_OPENING_BY_IMPACT = ((1, 1, 1, 1, 4, 2, 4, 1), (2, 2, 2, 2, 2, 1, 0.4, 2), (4, 4, 2, 2, 0.5, 0.8, 0.15, 0.5))
_CLOSINGS = ("Please advise.", "Tried restarting, no change.", "Impacting work.", "Deadline today.", "Happens every day.", "", "Cannot work at all.", "Customer facing.", "When you have time.", "No rush.")
_CLOSING_BY_URGENCY = ((0.5, 1, 2, 3, 0.5, 1, 4, 3, 0.2, 0.2), (2, 2, 3, 0.5, 2, 2, 0.8, 0.6, 0.6, 0.4), (2, 1, 0.5, 0.2, 1.5, 2, 0.3, 0.2, 3, 3))
# business services whose failures hit many people at once
_CRITICAL_SERVICES = frozenset({"Email", "VPN", "SAP ERP", "Network", "Databases"})
_VIP_SHARE = 0.02  # callers whose tickets the desk treats as urgent (executives, their assistants)
_VIP_FLAGGED = 0.6  # share of a VIP's tickets whose text says so
_IMPACT_CUTS = (2.6, 0.5)  # latent impact above which it is high, medium
_URGENCY_CUTS = (2.4, 0.6)
_CONTACT_TYPES = (("self-service", 0.35), ("email", 0.22), ("phone", 0.28), ("chat", 0.10), ("walk-in", 0.05))
_LOCATIONS = ("London", "Paris", "Frankfurt", "Madrid", "Warsaw", "New York", "Chicago", "Singapore")
_LEVELS = ("1 - High", "2 - Medium", "3 - Low")
_PRIORITIES = ("1 - Critical", "2 - High", "3 - Moderate", "4 - Low", "5 - Planning")
_RESOLUTION_MEDIAN_H = (1.5, 4.0, 10.0, 24.0, 48.0)  # by priority
_SLA_H = (4.0, 8.0, 24.0, 72.0, 120.0)
_CLOSE_CODES = ("Solution provided", "Workaround provided", "Resolved by caller", "Known error", "Duplicate", "No resolution provided", "User error")
# How each category's tickets close (weights in _CLOSE_CODES order): password problems often
# clear before anyone acts (self-service reset, the caller remembers), hardware waits for
# parts behind a loaner, software and databases carry known errors, ERP users misuse screens.
_CLOSE_CODE_MIX = {
    "network": (50, 22, 10, 6, 6, 3, 3),
    "hardware": (44, 30, 8, 3, 5, 5, 5),
    "software": (46, 18, 10, 10, 5, 4, 7),
    "email": (58, 12, 10, 4, 5, 3, 8),
    "access": (56, 4, 25, 2, 6, 3, 4),
    "database": (60, 20, 3, 9, 4, 3, 1),
    "erp": (50, 14, 8, 8, 5, 5, 10),
    "printing": (60, 12, 13, 2, 7, 3, 3),
    "telephony": (58, 14, 12, 4, 5, 4, 3),
    "storage": (62, 12, 8, 3, 5, 4, 6),
}
# ... and topics that close their own way (a topic as in _FIXES)
_CLOSE_CODE_BY_TOPIC = {
    "password reset": (55, 1, 38, 0, 3, 2, 1),
    "account locked": (50, 2, 36, 0, 5, 2, 5),
    "crash": (34, 26, 5, 26, 4, 3, 2),
    "outlook client": (44, 22, 8, 16, 4, 2, 4),
    "replication": (46, 20, 0, 28, 3, 3, 0),
    "vpn": (40, 30, 10, 12, 4, 3, 1),
    "docking station": (40, 32, 6, 14, 4, 3, 1),
}
# What fixed a ticket, by topic: its subcategory, or its own for a known request (whose
# subcategory says nothing of it). Two or three wordings each; each topic has its article.
_FIXES: dict[str, tuple[str, ...]] = {
    "connectivity": ("Re-seated the patch cable and reset the switch port; link is up again.", "Renewed the DHCP lease and cleared the ARP cache; connection restored."),
    "wifi": ("Rebooted the access point and re-pushed the wifi profile; signal restored.", "Removed the stale wifi profile and reconnected to the corporate SSID."),
    "dns": ("Corrected the stale DNS record and flushed the resolver cache; name resolves again.", "Re-registered the host in DNS and flushed the client cache; lookups work."),
    "firewall": ("Added the missing firewall rule after approval; traffic passes.", "Corrected the NAT rule on the edge firewall; application reachable again."),
    "vpn": ("Reinstalled the VPN client and re-imported the profile; tunnel connects.", "Cleared the user's stale session on the VPN gateway; reconnect succeeded."),
    "laptop": ("Reseated the RAM and updated the BIOS; laptop boots normally.", "Reimaged the laptop and restored the user's profile.", "Sent the laptop for warranty repair; user works on a loaner."),
    "monitor": ("Replaced the monitor cable; display works.", "Swapped the faulty monitor for a spare from stock."),
    "docking station": ("Updated the dock firmware and driver; monitors detected again.", "Replaced the docking station with a spare."),
    "keyboard": ("Replaced the keyboard from stock.", "Re-paired the wireless keyboard and replaced its batteries."),
    "mobile device": ("Re-enrolled the phone in device management; mail and apps sync again.", "Replaced the faulty handset and restored the user's data."),
    "installation": ("Deployed the package through Software Center; user confirmed it starts.", "Installed the application with admin rights after the silent install failed."),
    "license": ("Assigned a licence from the pool and re-activated the product.", "Released an unused licence and assigned it to the user."),
    "crash": ("Repaired the installation and cleared the profile cache; no more crashes.", "Disabled the faulty add-in causing the crash; application stable."),
    "update": ("Rolled back the faulty update and paused the update ring for the device.", "Forced the pending update and rebooted; version now current."),
    "mailbox": ("Repaired the mailbox on the server; mail flows again.", "Rebuilt the offline cache; mailbox opens normally."),
    "outlook client": ("Recreated the Outlook profile; client connects.", "Repaired Office and disabled the faulty add-in; Outlook starts normally."),
    "distribution list": ("Updated the distribution list membership as requested.", "Added the user to the distribution list; change synced to Exchange."),
    "calendar": ("Removed the corrupt meeting and re-shared the calendar.", "Reset the calendar delegate permissions; invites work again."),
    "password reset": ("Reset the password and unlocked the account; user confirmed login.", "Verified identity and issued a temporary password; user changed it at login.", "Guided the user through the self-service password reset."),
    "account locked": ("Unlocked the account and removed an old password cached on the phone.", "Unlocked the account in AD; lockouts came from a stale mapped drive, removed it."),
    "permissions": ("Granted the requested permissions after owner approval.", "Added the user to the right security group; access confirmed."),
    "new account": ("Created the account and mailbox; credentials sent to the manager.", "Provisioned the new joiner's account from the HR record."),
    "performance": ("Rebuilt the fragmented index and refreshed statistics; queries fast again.", "Killed the blocking session and tuned the query; response time normal."),
    "backup": ("Re-ran the failed backup job after freeing space on the target.", "Fixed the backup agent's credentials; next backup completed."),
    "replication": ("Resynchronised the replica from the primary; lag back to zero.", "Restarted the replication apply process; replica caught up."),
    "connection pool": ("Raised the connection pool limit and recycled the application pool.", "Cleared leaked sessions and restarted the listener; connections accepted."),
    "invoicing": ("Corrected the vendor master data and reposted the invoice.", "Released the blocked invoice once the price variance was approved."),
    "purchasing": ("Reassigned the stuck approval step; purchase order released.", "Corrected the order's cost centre and restarted the approval workflow."),
    "payroll": ("Corrected the employee's payroll record and re-ran the simulation.", "Fixed the wage type mapping and re-ran the payroll posting."),
    "reporting": ("Refreshed the report's data extract; figures are current.", "Granted the missing reporting role; report runs."),
    "printer offline": ("Restarted the print spooler and cleared stuck jobs; printer online.", "Fixed the printer's IP reservation; printer back online."),
    "paper jam": ("Cleared the paper jam and cleaned the rollers.", "Removed torn paper from the fuser area; test page prints."),
    "toner": ("Replaced the toner cartridge; test page prints.", "Installed a new toner cartridge from stock."),
    "scanning": ("Fixed the scan-to-email SMTP settings on the device.", "Recreated the scan folder share permissions; scanning works."),
    "desk phone": ("Re-provisioned the desk phone; it registers again.", "Replaced the faulty handset cord."),
    "voicemail": ("Reset the voicemail PIN; user set a new one.", "Rebuilt the voicemail box; greetings restored."),
    "conference": ("Re-paired the room system with its calendar; meetings join.", "Updated the room system firmware; audio works again."),
    "mobile": ("Re-provisioned the SIM and reset network settings; calls work.", "Enabled the missing roaming option on the contract."),
    "file share": ("Remapped the network drive to the right share.", "Restored the share's permission inheritance; folder accessible."),
    "quota": ("Increased the quota after owner approval.", "Archived old files with the owner to get back under the quota."),
    "restore": ("Restored the files from last night's backup to their folder.", "Restored the previous version from shadow copies; user confirmed."),
    "vpn token": ("Issued a new VPN token and synced it; user connected from home.", "Re-enrolled the user's soft token; VPN login works."),
    "laptop battery": ("Replaced the laptop battery.", "Fitted a replacement battery; the swollen one sent for recycling."),
    "new monitor": ("Delivered and set up the additional monitor.", "Installed a second monitor from stock at the user's desk."),
    "crm validation": ("Fixed the invalid field on the CRM record; record saves.", "Corrected the validation rule that blocked the save."),
    "mailbox quota": ("Increased the mailbox quota and enabled the online archive.", "Enabled auto-archiving and cleared old items; mailbox under quota."),
    "shared mailbox": ("Granted full access to the shared mailbox; it shows in Outlook.", "Added the team to the shared mailbox's access group."),
    "tablespace": ("Added a datafile to extend the tablespace; alert cleared.", "Extended the tablespace and enabled autoextend."),
    "database copy": ("Refreshed the test database from last night's production backup.", "Cloned production to test and masked personal data."),
    "posting period": ("Opened the posting period; invoice posted.", "Posted the invoice in the open period after finance approval."),
    "printer driver": ("Installed the printer and its driver; test page prints.", "Added the printer through the print server; user can print."),
    "extension move": ("Moved the extension to the phone at the new desk.", "Re-assigned the extension to the new desk's handset."),
}
_GENERIC_FIXES = ("Investigated and fixed the reported issue; user confirmed.", "Applied the fix and verified it with the user.")
# A note per close code; {fix} is the topic's fix, {mid} the same after a colon.
_CLOSE_NOTES = {
    "Solution provided": ("{fix}",),
    "Workaround provided": ("Workaround: {mid}", "Temporary workaround until a permanent fix: {mid}"),
    "Known error": ("Known error: {mid}", "Matches a known error; workaround from the problem record: {mid}"),
    "Resolved by caller": ("Caller confirmed the issue cleared before any action; closed.", "Resolved by the caller; no action taken."),
    "Duplicate": ("Duplicate of an incident already being worked; closed.", "Same issue already reported; closed as duplicate."),
    "No resolution provided": ("No response from the caller after three attempts; closed.", "Could not reproduce and the caller did not reply; closed."),
    "User error": ("Not a fault: walked the user through the correct steps.", "User error: explained the procedure; works as designed."),
}
_KNOWLEDGE_CITED = 0.4  # share of solved or worked-around tickets citing their topic's article
# Recurring faults, each a problem record: (CI, subcategory, where its burst starts as a share
# of the date range, the workaround). Part of the incidents matching it during the burst are
# linked to it.
_PROBLEMS = (
    ("exch-prd-02", "outlook client", 0.05, "Recreated the Outlook profile; connection drops after the mailbox server update."),
    ("core-sw-01", "connectivity", 0.12, "Moved the user's port off core-sw-01, whose uplink module drops links."),
    ("sap-ecc-app-01", "invoicing", 0.25, "Cleared the lock entry and reposted the invoice; posting dump on sap-ecc-app-01."),
    ("prt-srv-01", "printer offline", 0.35, "Restarted the spooler on prt-srv-01, which hangs on one driver."),
    ("wks-fleet-win11", "docking station", 0.45, "Rolled back the dock driver; the latest one loses external monitors."),
    ("ora-prd-01", "performance", 0.55, "Flushed the bad execution plan and gathered statistics on ora-prd-01."),
    ("fs-prd-01", "file share", 0.62, "Remapped the drive through the DFS namespace; referrals to fs-prd-01 fail."),
    ("pbx-prd-01", "desk phone", 0.70, "Re-registered the handset; phones on pbx-prd-01 drop after the nightly restart."),
)
_PROBLEM_BURST = 0.3  # length of a burst, as a share of the date range
_PROBLEM_LINKED = 0.5  # share of a burst's matching incidents linked to its problem
_CALLERS, _AGENTS = 3000, 25
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 10, 20, 24, 24, 22, 15, 18, 22, 21, 18, 12, 6, 4, 3, 2, 1, 1)
_WEEKEND_WEIGHT = 0.2

_CHANGE_TYPES = ("standard", "normal", "emergency")
_TYPE_P = (0.5, 0.4, 0.1)
_SIZE_MEDIAN = (2.0, 6.0, 3.0)  # by type
_LEAD_MEDIAN_H = (36.0, 168.0, 4.0)  # normal changes wait for the CAB, emergencies do not
_BUNDLED = 0.15  # share of changes booked into another change's window on the same CI
_CHANGE_SUMMARIES = (
    ("Apply monthly patches to {ci}", "Renew TLS certificate on {ci}", "Restart services on {ci}", "Add firewall rule for {svc}", "Increase disk space on {ci}"),
    ("Upgrade {ci} to new version", "Deploy {svc} release", "Migrate {ci} to new hardware", "Change configuration of {ci}", "Firmware upgrade on {ci}"),
    ("Emergency fix for {svc} outage", "Hotfix on {ci}", "Rollback failed release on {ci}", "Urgent security patch on {ci}", "Emergency restart of {ci}"),
)
_INFRA_GROUPS = ("Windows Server", "Linux Server", "Network Ops", "Database Admins")
# CIs whose changes fail more often (old hardware, tight coupling, no test environment)
_FRAGILE_CIS = frozenset({"exch-prd-02", "sap-ecc-db-01", "core-sw-01", "fw-edge-01", "ora-prd-01", "pbx-prd-01", "crm-db-01"})
# logit shift of a group's change failures; new groups are still learning the estate
_GROUP_RISK = {"Web Team": 0.6, "SAP Basis": 0.4, "Application Support": 0.3, "Linux Server": -0.3, "Database Admins": -0.3}
_NEW_GROUP_RISK = 0.5
_FAILURE_INTERCEPT = -3.4
# Each year-end, planned work stops from 19 December to 5 January (exclusive), the freeze the
# default params.yaml lists as blackout windows. Standard and normal changes are deferred to
# just after it, but for a few exceptions the CAB grants; emergencies go ahead. What still
# runs inside it fails more often: exceptions are pressed, and half the experts are away.
_FREEZE = ((12, 19), (1, 5))  # (month, day) it starts, (month, day) of the next year it ends
_FREEZE_EXCEPTIONS = 0.1
_FREEZE_CATCH_UP_DAYS = 4.0  # mean delay of deferred work after the freeze ends
_FREEZE_RISK = 0.6
# fmt: on
_ARTICLES = {topic: f"KB{10_001 + i:07d}" for i, topic in enumerate(_FIXES)}
_PROBLEM_IDS = tuple(f"PRB{40_001 + k:07d}" for k in range(len(_PROBLEMS)))


def _seconds(day: date) -> int:
    return int(np.datetime64(day, "s").astype(np.int64))


def _cumulative(weights: Floats) -> Floats:
    return np.cumsum(weights / weights.sum(axis=-1, keepdims=True), axis=-1)


def _pick(u: Floats, cumulative: Floats, rows: Ints) -> Ints:
    """Draw one index per row from the row's own distribution (a row of `cumulative`)."""
    picked: Ints = np.minimum((u[:, None] > cumulative[rows]).sum(axis=1), cumulative.shape[1] - 1)
    return picked


def _draw(rng: np.random.Generator, mix: tuple[tuple[str, float], ...], n: int) -> Objects:
    values = np.array([value for value, _ in mix], dtype=object)
    drawn: Objects = values[rng.choice(len(mix), n, p=[share for _, share in mix])]
    return drawn


def _padded(rows: list[tuple[object, ...]]) -> tuple[Objects, Floats]:
    """Ragged lists as a 2-D table, with Zipf-like weights (zero on the padding)."""
    width = max(len(r) for r in rows)
    table = np.array([list(r) + [r[0]] * (width - len(r)) for r in rows], dtype=object)
    weights = np.array([[(i + 1.0) ** -0.8 * (i < len(r)) for i in range(width)] for r in rows])
    return table, weights


def _opened_times(rng: np.random.Generator, n: int, params: GeneratorSource) -> Ints:
    days = np.arange(_seconds(params.start), _seconds(params.end), 86_400, dtype=np.int64)
    weekday = (days // 86_400 + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    day_p = np.where(weekday < 5, 1.0, _WEEKEND_WEIGHT)
    hour_p = np.array(_HOUR_WEIGHTS, dtype=float)
    opened = rng.choice(days, n, p=day_p / day_p.sum())
    opened += rng.choice(24, n, p=hour_p / hour_p.sum()) * 3600 + rng.integers(0, 3600, n)
    return opened.astype(np.int64)


def _poisson(u: Floats, lam: Floats) -> Ints:
    """Poisson by inversion: one uniform per row, whatever lam, so the stream stays aligned."""
    count, term = np.zeros(len(u), dtype=np.int64), np.exp(-lam)
    cdf = term.copy()
    for k in range(1, 50):
        above = u > cdf
        if not above.any():
            break
        count += above
        term = term * lam / k
        cdf += term
    return count


def _after(opened: Ints, drift: DriftKnobs) -> Bools:
    if drift.after is None:
        return np.zeros(len(opened), dtype=bool)
    return opened >= _seconds(drift.after)


def _hand_over(groups: Objects, after: Bools, u: Floats, count: int) -> Objects:
    out = groups.copy()
    for new, old in _NEW_GROUPS[:count]:
        out[after & (groups == old) & (u < _TAKEOVER)] = new
    return out


def _times(seconds: Ints, fmt: str, missing: Bools | None = None) -> pd.Series:
    text = pd.Series(pd.to_datetime(seconds, unit="s").strftime(fmt), dtype="string")
    return text if missing is None else text.mask(missing)


def _text(values: Objects | list[str], missing: Bools | None = None) -> pd.Series:
    text = pd.Series(values, dtype="string")
    return text if missing is None else text.mask(missing)


class _Kinds(NamedTuple):
    """What a ticket is: an ordinary report, a known request (which one), or a vague one."""

    request: Ints  # index into _ALL_REQUESTS, -1 when the ticket is not a request
    vague: Bools

    @property
    def is_request(self) -> Bools:
        return self.request >= 0


_ALL_REQUESTS = tuple(r for c in _CATEGORIES for r in _REQUESTS[c.name][1])


def _ticket_kinds(rng: np.random.Generator, cat: Ints) -> _Kinds:
    """Per ticket of category `cat`: a request of that category (the first ones more common),
    a vague ticket, or an ordinary report."""
    n = len(cat)
    share = np.array([_REQUESTS[c.name][0] for c in _CATEGORIES])[cat]
    offsets = np.cumsum([0] + [len(_REQUESTS[c.name][1]) for c in _CATEGORIES])
    table, weights = _padded(
        [tuple(range(offsets[i], offsets[i + 1])) for i in range(len(offsets) - 1)]
    )
    which = table[cat, _pick(rng.random(n), _cumulative(weights), cat)].astype(np.int64)
    u = rng.random(n)
    return _Kinds(np.where(u < share, which, -1), (u >= share) & (u < share + _VAGUE_SHARE))


def _levels(x: Floats, cuts: tuple[float, float]) -> Ints:
    """0 (high) .. 2 (low) of a latent score, by its two cut points."""
    levels: Ints = np.where(x > cuts[0], 0, np.where(x > cuts[1], 1, 2))
    return levels


def _by_level(
    rng: np.random.Generator,
    values: tuple[str, ...],
    weights: tuple[tuple[float, ...], ...],
    level: Ints,
) -> Objects:
    """One of `values` per row, drawn with the weights of the row's level."""
    chosen: Objects = np.array(values, dtype=object)[
        _pick(rng.random(len(level)), _cumulative(np.array(weights, dtype=float)), level)
    ]
    return chosen


def _mid_sentence(text: str) -> str:
    """`text` lower-cased at its start to follow an opening, acronyms kept ("VPN", "PO")."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def _incident_texts(
    rng: np.random.Generator,
    cat: Ints,
    ci: Objects,
    novel: Bools,
    kinds: _Kinds,
    impact: Ints,
    urgency: Ints,
    vip: Bools,
) -> tuple[list[str], list[str], Bools]:
    n, k = len(cat), len(_CATEGORIES)
    words = np.array([c.words for c in _CATEGORIES], dtype=object)
    fresh = np.array([c.new_words for c in _CATEGORIES], dtype=object)
    # Callers describe symptoms, not causes: some texts carry another category's words.
    other = (cat + rng.integers(1, k, n)) % k
    first = rng.integers(0, 10, n)
    # shifted indices, so a text never repeats its first word ("login login problem")
    second, third = (first + rng.integers(1, 10, (2, n))) % 10
    a = words[np.where(rng.random(n) < 0.06, other, cat), first]
    b = words[np.where(rng.random(n) < 0.15, other, cat), second]
    b = np.where(novel, fresh[cat, rng.integers(0, fresh.shape[1], n)], b)
    c = words[cat, third]
    # How bad and how wide: the wording follows the impact and urgency the desk will set,
    # loosely (the same words turn up at every level, at other rates).
    g, h = (_by_level(rng, _GENERIC, _GENERIC_BY_URGENCY, urgency) for _ in range(2))
    scope = _by_level(rng, _SCOPES, _SCOPE_BY_IMPACT, impact)
    opening = _by_level(rng, _OPENINGS, _OPENING_BY_IMPACT, impact)
    closing = _by_level(rng, _CLOSINGS, _CLOSING_BY_URGENCY, urgency)
    template = rng.choice(len(_SHORT_TEMPLATES), n, p=_SHORT_WEIGHTS)
    phrasing = rng.integers(0, 3, n)
    vague = np.array(_VAGUE, dtype=object)[rng.integers(0, len(_VAGUE), n)]
    with_generic = rng.random(n) < 0.4
    flagged = vip & (rng.random(n) < _VIP_FLAGGED)
    short, long = [], []
    for i in range(n):
        if kinds.request[i] >= 0:
            request = _ALL_REQUESTS[kinds.request[i]]
            said = request.phrasings[phrasing[i]].format(ci=ci[i])
            head = f"{said} - {g[i]}" if with_generic[i] else said
            body = _mid_sentence(request.phrasings[(phrasing[i] + 1) % 3].format(ci=ci[i])) + "."
        elif kinds.vague[i]:
            head = f"{vague[i]} - {g[i]}" if with_generic[i] else vague[i]
            body = f"{vague[i]}, {g[i]}."
        else:
            head = _SHORT_TEMPLATES[template[i]].format(a=a[i], b=b[i], g=g[i], ci=ci[i])
            head = head.capitalize()
            body = f"{a[i]} {b[i]} {g[i]}. {c[i]} {h[i]} on {ci[i]}."
        short.append(f"{'VIP - ' if flagged[i] else ''}{scope[i]}{head}")
        long.append(f"{opening[i]} {body} {closing[i]}".strip())
    return short, long, rng.random(n) < 0.2


def _close_codes(u: Floats, cat: Ints, topic: Objects) -> Objects:
    """A close code per ticket, from its topic's mix if it has one, else its category's; one
    uniform per ticket whatever the mix, so the draws after it stay aligned."""
    weights = np.array([_CLOSE_CODE_MIX[c.name] for c in _CATEGORIES], dtype=float)[cat]
    for name, mix in _CLOSE_CODE_BY_TOPIC.items():
        weights[topic == name] = mix
    rows = np.arange(len(u))
    codes: Objects = np.array(_CLOSE_CODES, dtype=object)[_pick(u, _cumulative(weights), rows)]
    return codes


def _problem_of(
    u: Floats,
    opened: Ints,
    ci: Objects,
    subcategory: Objects,
    request: Bools,
    params: GeneratorSource,
) -> Ints:
    """Per ticket, the index in _PROBLEMS of the problem it is linked to, -1 if none. Bursts
    are placed by shares of the date range and each ticket decides by its own draw, so drift
    after a date leaves the links before it alone. Requests ask for something; nothing broke."""
    start = _seconds(params.start)
    span = _seconds(params.end) - start
    which = np.full(len(u), -1, dtype=np.int64)
    candidate = (u < _PROBLEM_LINKED) & ~request
    for k, (on_ci, on_subcategory, begins, _) in enumerate(_PROBLEMS):
        burst = start + begins * span
        during = (opened >= burst) & (opened < burst + _PROBLEM_BURST * span)
        which[candidate & during & (ci == on_ci) & (subcategory == on_subcategory)] = k
    return which


def _close_notes(codes: Objects, topic: Objects, workaround: Objects, pick: Ints) -> list[str]:
    """A resolution note per ticket: its close code's wording around a fix of its topic, or
    its problem's workaround. `pick`: two integers in [0, 12) per ticket choosing the fix and
    the wording; 12 is a multiple of 1 to 4, so `% len` picks evenly among as many."""
    notes = []
    for i, code in enumerate(codes):
        fixes = _FIXES.get(topic[i], _GENERIC_FIXES)
        fix = workaround[i] or fixes[pick[0, i] % len(fixes)]
        wordings = _CLOSE_NOTES[code]
        notes.append(wordings[pick[1, i] % len(wordings)].format(fix=fix, mid=_mid_sentence(fix)))
    return notes


def generate_incidents(params: GeneratorSource) -> pd.DataFrame:
    """A ServiceNow `incident` table export of `params.rows` incidents, all columns text."""
    rng = np.random.default_rng(params.seed)
    n, end = params.rows, _seconds(params.end)
    opened = np.sort(_opened_times(rng, n, params))
    after = _after(opened, params.drift)

    base = np.array([c.weight for c in _CATEGORIES])
    shifted = np.array([c.drifted_weight for c in _CATEGORIES])
    mixes = _cumulative(np.stack([base, base + params.drift.category_shift * (shifted - base)]))
    cat = _pick(rng.random(n), mixes, after.astype(np.int64))
    kinds = _ticket_kinds(rng, cat)
    known = np.maximum(kinds.request, 0)  # any request where there is none: masked below
    subs, sub_w = _padded([c.subcategories for c in _CATEGORIES])
    subcategory = subs[cat, _pick(rng.random(n), _cumulative(sub_w), cat)]
    service_names = list(_SERVICES)
    svc_table, svc_w = _padded(
        [tuple(service_names.index(s) for s in c.services) for c in _CATEGORIES]
    )
    service_idx = svc_table[cat, _pick(rng.random(n), _cumulative(svc_w), cat)].astype(np.int64)
    request_service = np.array([service_names.index(r.service) for r in _ALL_REQUESTS])[known]
    service_idx = np.where(kinds.is_request, request_service, service_idx)
    cis, ci_w = _padded([cis for _, cis in _SERVICES.values()])
    ci = cis[service_idx, _pick(rng.random(n), _cumulative(ci_w), service_idx)]

    # Routing: category owner or service owner, then noise (the Service Desk keeps some of
    # everything, a neighbouring group some more); ambiguous categories are noisier, and a
    # symptom says little of its cause, so a fifth of reports end elsewhere whatever their
    # words. Known requests go to their group, rarely elsewhere; vague tickets often stay at
    # the desk.
    owners = np.array([owner for owner, _ in _SERVICES.values()], dtype=object)
    ambiguity = np.array([c.ambiguity for c in _CATEGORIES])[cat]
    ambiguity = np.where(kinds.is_request, 0.0, np.where(kinds.vague, 1.0, ambiguity))
    cat_group = np.array([c.group for c in _CATEGORIES], dtype=object)[cat]
    by_service = rng.random(n) < np.array([c.by_service for c in _CATEGORIES])[cat]
    group = np.where(by_service, owners[service_idx], cat_group)
    group = np.where(
        kinds.is_request, np.array([r.group for r in _ALL_REQUESTS], dtype=object)[known], group
    )
    others, other_w = _padded([("Service Desk", *c.others) for c in _CATEGORIES])
    other_w[:, 0] = other_w[:, 1:].sum(axis=1)  # half of the noise lands on the Service Desk
    u = rng.random(n)
    noisy = np.where(kinds.is_request, u < _REQUEST_NOISE, u < 0.20 + 0.15 * ambiguity)
    group = np.where(noisy, others[cat, _pick(rng.random(n), _cumulative(other_w), cat)], group)
    group = np.where(kinds.vague & (rng.random(n) < _VAGUE_AT_DESK), "Service Desk", group)
    group = _hand_over(group, after, rng.random(n), params.drift.new_groups)

    # Zipf-like callers: a few (key users, shared mailboxes) open many tickets
    caller_p = np.arange(1, _CALLERS + 1) ** -0.7
    callers = rng.permutation(_CALLERS)[rng.choice(_CALLERS, n, p=caller_p / caller_p.sum())]
    vip = (rng.random(_CALLERS) < _VIP_SHARE)[callers]
    channel = _draw(rng, _CONTACT_TYPES, n)

    # Priority is ServiceNow's lookup of impact and urgency, which the desk sets from what it
    # hears at open: how many are hit (critical services hit many, a request one person), who
    # calls, how (whoever phones or walks in is in a hurry). Logistic noise keeps it a
    # judgement call rather than a rule.
    critical = np.isin(np.array(service_names, dtype=object)[service_idx], list(_CRITICAL_SERVICES))
    impact = _levels(1.2 * critical - 1.0 * kinds.is_request + rng.logistic(size=n), _IMPACT_CUTS)
    urgency = _levels(
        (0.6 * (impact == 0) + 0.3 * (impact == 1) + 1.5 * vip)
        + 0.6 * np.isin(channel, ("phone", "walk-in"))
        + np.where(kinds.is_request, np.array([r.urgency for r in _ALL_REQUESTS])[known], 0.0)
        + rng.logistic(size=n),
        _URGENCY_CUTS,
    )
    priority = impact + urgency  # ServiceNow's default lookup: impact + urgency - 1, 0-based

    reassignment = _poisson(rng.random(n), 0.2 + 1.0 * ambiguity + 0.8 * noisy)
    reopen = (rng.random(n)[:, None] < np.array([0.05, 0.008])).sum(axis=1)
    hours = np.array(_RESOLUTION_MEDIAN_H)[priority] * np.exp(0.9 * rng.standard_normal(n))
    hours *= 1 + 0.4 * reassignment + 1.5 * reopen
    resolved = opened + np.maximum(hours * 3600, 300).astype(np.int64)
    # ServiceNow auto-closes resolved incidents after 7 days unless the caller confirms first
    confirm = np.minimum(rng.exponential(24 * 3600, n), 7 * 86_400).astype(np.int64)
    closed = resolved + np.where(rng.random(n) < 0.3, confirm, 7 * 86_400)
    open_now, unclosed = resolved >= end, closed >= end
    made_sla = np.where(open_now, end, resolved) - opened <= np.array(_SLA_H)[priority] * 3600
    # What fixed a known request is the request's business; for other tickets the subcategory.
    topic = np.where(
        kinds.is_request,
        np.array([r.topic for r in _ALL_REQUESTS], dtype=object)[known],
        subcategory,
    )
    close_code = _close_codes(rng.random(n), cat, topic)
    state = np.where(open_now, "In Progress", np.where(unclosed, "Resolved", "Closed"))

    caller = np.array([f"Caller {i + 1}" for i in range(_CALLERS)], dtype=object)[callers]
    agents = np.array([f"Agent {i + 1}" for i in range(_AGENTS)], dtype=object)
    agent = agents[rng.integers(0, _AGENTS, n)]
    # the desk opens phone and walk-in tickets itself; other channels are opened by the caller
    opened_by = np.where(np.isin(channel, ("phone", "walk-in")), agent, caller)
    novel = after & (rng.random(n) < params.drift.new_vocabulary)
    short, long, no_description = _incident_texts(rng, cat, ci, novel, kinds, impact, urgency, vip)
    # Resolution draws come last: changing how tickets are resolved moves no column above.
    problem = _problem_of(rng.random(n), opened, ci, subcategory, kinds.is_request, params)
    linked = problem >= 0
    close_code = np.where(linked, "Known error", close_code)
    workaround = np.array([p[3] for p in _PROBLEMS], dtype=object)[problem]
    workaround[~linked] = None
    notes = _close_notes(close_code, topic, workaround, rng.integers(0, 12, (2, n)))
    solved = np.isin(close_code, ("Solution provided", "Workaround provided")) & ~open_now
    cited = solved & (rng.random(n) < _KNOWLEDGE_CITED)

    frame = pd.DataFrame(
        {
            "number": _text([f"INC{10_001 + i:07d}" for i in range(n)]),
            "opened_at": _times(opened, INCIDENT_DATE_FORMAT),
            "resolved_at": _times(resolved, INCIDENT_DATE_FORMAT, open_now),
            "closed_at": _times(closed, INCIDENT_DATE_FORMAT, unclosed),
            "short_description": _text(short),
            "description": _text(long, no_description),
            "caller_id": _text(caller),
            "opened_by": _text(opened_by),
            "contact_type": _text(channel),
            "location": _text(np.array(_LOCATIONS, dtype=object)[callers % len(_LOCATIONS)]),
            "cmdb_ci": _text(ci),
            "business_service": _text(np.array(service_names, dtype=object)[service_idx]),
            "category": _text(np.array([c.name for c in _CATEGORIES], dtype=object)[cat]),
            "subcategory": _text(subcategory),
            "impact": _text(np.array(_LEVELS, dtype=object)[impact]),
            "urgency": _text(np.array(_LEVELS, dtype=object)[urgency]),
            "priority": _text(np.array(_PRIORITIES, dtype=object)[priority]),
            "assignment_group": _text(group),
            "reassignment_count": pd.Series(reassignment).astype("string"),
            "reopen_count": pd.Series(reopen).astype("string"),
            "made_sla": _text(np.where(made_sla, "true", "false").astype(object)),
            "close_code": _text(close_code, open_now),
            "close_notes": _text(notes, open_now),
            "knowledge": _text(pd.Series(topic).map(_ARTICLES).to_numpy(dtype=object), ~cited),
            "problem_id": _text(np.array(_PROBLEM_IDS, dtype=object)[problem], ~linked),
            "state": _text(state.astype(object)),
        }
    )
    return _with_surges(frame, params) if params.surges.count else frame


class Surge(NamedTuple):
    service: str
    start: pd.Timestamp
    end: pd.Timestamp
    tickets: int


def surges(params: GeneratorSource) -> list[Surge]:
    """Where the surges of `params` are: the k-th starts at share (k + 0.5) / count of the
    date range, at an hour of the working day, on a service drawn by its own seed."""
    knobs = params.surges
    rng = np.random.default_rng([params.seed, 17])
    start = _seconds(params.start)
    span = _seconds(params.end) - start - int(knobs.hours * 3600) - 86_400
    services = list(_SERVICES)
    out = []
    for k in range(knobs.count):
        day = start + int((k + 0.5) / knobs.count * span) // 86_400 * 86_400
        begins = day + int(rng.integers(8, 17)) * 3600 + int(rng.integers(0, 3600))
        out.append(
            Surge(
                service=services[int(rng.integers(0, len(services)))],
                start=pd.Timestamp(begins, unit="s"),
                end=pd.Timestamp(begins + int(knobs.hours * 3600), unit="s"),
                tickets=knobs.tickets,
            )
        )
    return out


def _with_surges(frame: pd.DataFrame, params: GeneratorSource) -> pd.DataFrame:
    rng = np.random.default_rng([params.seed, 18])
    opened = pd.to_datetime(frame["opened_at"], format=INCIDENT_DATE_FORMAT)
    extra = []
    for surge in surges(params):
        of_service = np.flatnonzero((frame["business_service"] == surge.service).to_numpy())
        if not of_service.size:
            raise ConfigError(
                f"tickets.source.surges: no generated ticket of service {surge.service!r} to "
                f"copy into a surge; generate more rows than {params.rows}"
            )
        template = frame.iloc[[int(rng.choice(of_service))] * surge.tickets].copy()
        at = surge.start + pd.to_timedelta(
            np.sort(rng.uniform(0, (surge.end - surge.start).total_seconds(), surge.tickets)), "s"
        )
        shift = at - opened.iloc[template.index[0]]
        for column in ("opened_at", "resolved_at", "closed_at"):
            moved = pd.to_datetime(template[column], format=INCIDENT_DATE_FORMAT) + shift
            template[column] = moved.dt.strftime(INCIDENT_DATE_FORMAT).astype("string")
        callers = rng.integers(1, _CALLERS + 1, surge.tickets)
        template["caller_id"] = pd.array([f"Caller {c}" for c in callers], dtype="string")
        template["opened_by"] = template["caller_id"]
        extra.append(template)
    surged = pd.concat(extra, ignore_index=True)
    surged["number"] = pd.array([f"INC9{i:06d}" for i in range(len(surged))], dtype="string")
    # The desk attaches a surge's incidents to one parent (major) incident, as ServiceNow's
    # `parent_incident` does: the labelled windows early-warning detectors are judged on.
    parents = [f"INC8{k:06d}" for k, each in enumerate(extra) for _ in range(len(each))]
    surged["parent_incident"] = pd.array(parents, dtype="string")
    both = pd.concat([frame, surged], ignore_index=True)
    times = pd.to_datetime(both["opened_at"], format=INCIDENT_DATE_FORMAT)
    return both.iloc[np.argsort(times.to_numpy(), kind="stable")].reset_index(drop=True)


def _freeze_end(start: Ints, end: Ints) -> Ints:
    """When the year-end freeze a window [start, end) touches ends (seconds); 0 if none."""
    year = start.astype("datetime64[s]").astype("datetime64[Y]").astype(np.int64)  # since 1970
    (begin_month, begin_day), (end_month, end_day) = _FREEZE
    found = np.zeros(len(start), dtype=np.int64)
    for y in (year - 1, year):  # early January still sits in the freeze of the year before
        begins = _calendar(y, begin_month, begin_day)
        ends = _calendar(y + 1, end_month, end_day)
        found = np.where((start < ends) & (end > begins), ends, found)
    return found


def _calendar(years_since_1970: Ints, month: int, day: int) -> Ints:
    """Midnight starting `day` of `month` in each year, in seconds."""
    months = (years_since_1970 * 12 + month - 1).astype("datetime64[M]")
    seconds: Ints = (
        (months.astype("datetime64[D]") + (day - 1)).astype("datetime64[s]").astype(np.int64)
    )
    return seconds


def generate_changes(params: GeneratorSource) -> pd.DataFrame:
    """A ServiceNow `change_request` export of `params.rows` closed changes, all columns text."""
    if params.surges.count:
        raise ConfigError(
            "changes.source.surges: surges are bursts of incidents; set them on tickets"
        )
    rng = np.random.default_rng(params.seed + 1_000_003)  # not the incidents' stream
    n = params.rows
    opened = _opened_times(rng, n, params)
    kind = rng.choice(3, n, p=_TYPE_P)
    service_names = list(_SERVICES)
    service = rng.integers(0, len(service_names), n)
    cis, ci_w = _padded([cis for _, cis in _SERVICES.values()])
    ci = cis[service, _pick(rng.random(n), _cumulative(ci_w), service)]
    size = np.ceil(np.array(_SIZE_MEDIAN)[kind] * np.exp(0.9 * rng.standard_normal(n)))
    lead = np.array(_LEAD_MEDIAN_H)[kind] * 3600 * np.exp(0.7 * rng.standard_normal(n))
    start = opened + lead.astype(np.int64)
    # Planned work mostly goes into the 22:00 maintenance window; emergencies start when ready.
    nightly = start // 86_400 * 86_400 + 22 * 3600
    nightly += np.where(nightly < start, 86_400, 0)
    start = np.where((kind < 2) & (rng.random(n) < 0.5), nightly, start)
    start = -(-start // 900) * 900  # change calendars work in quarter hours
    duration_h = 0.75 * size**0.45 * np.exp(0.6 * rng.standard_normal(n))
    duration = np.maximum(np.round(duration_h * 4), 1).astype(np.int64) * 900

    # Bundling: some changes are booked into a window already planned on the same CI, which
    # is where conflicts come from. The window is picked among those starting after a
    # lead time typical of the change, so opened_at < planned_start still holds.
    order = np.argsort(start, kind="stable")
    low = np.searchsorted(start[order], opened + lead.astype(np.int64) // 2, side="right")
    high = np.searchsorted(start[order], opened + 2 * lead.astype(np.int64), side="right")
    host = order[np.minimum(low + (rng.random(n) * (high - low)).astype(np.int64), n - 1)]
    bundled = (kind < 2) & (rng.random(n) < _BUNDLED) & (high > low)
    offset = (rng.random(n) * duration[host] / 2 // 900 * 900).astype(np.int64)
    service, ci = np.where(bundled, service[host], service), np.where(bundled, ci[host], ci)
    start = np.where(bundled, start[host] + offset, start)
    # The freeze draws from its own stream, so the changes it does not touch keep their draws.
    # A bundle stays together when the freeze defers it: its changes share the host's draws.
    freeze_rng = np.random.default_rng(params.seed + 2_000_003)
    catch_up = freeze_rng.exponential(_FREEZE_CATCH_UP_DAYS, n).astype(np.int64) * 86_400
    excepted = freeze_rng.random(n) < _FREEZE_EXCEPTIONS
    catch_up, excepted = (np.where(bundled, x[host], x) for x in (catch_up, excepted))
    freeze_end = _freeze_end(start, start + duration)
    deferred = (freeze_end > 0) & (kind < 2) & ~excepted
    # re-planned on the weekday and at the hour it had, the team's usual slot
    day = freeze_end + catch_up
    day += (start // 86_400 - day // 86_400) % 7 * 86_400
    start = np.where(deferred, day + start % 86_400, start)
    in_freeze = _freeze_end(start, start + duration) > 0
    end = start + duration

    owners = np.array([owner for owner, _ in _SERVICES.values()], dtype=object)
    infra = np.array(_INFRA_GROUPS, dtype=object)[rng.integers(0, len(_INFRA_GROUPS), n)]
    group = np.where(rng.random(n) < 0.75, owners[service], infra)
    group = _hand_over(group, _after(opened, params.drift), rng.random(n), params.drift.new_groups)

    by_ci = pd.DataFrame({"ci": ci, "start": start, "end": end}).sort_values(["ci", "start"])
    earlier_end = by_ci.groupby("ci")["end"].cummax().groupby(by_ci["ci"]).shift()
    later_start = by_ci.groupby("ci")["start"].shift(-1)
    overlaps = ((by_ci["start"] < earlier_end) | (later_start < by_ci["end"])).sort_index()
    overlap = overlaps.to_numpy(dtype=bool)

    hour, weekday = start % 86_400 // 3600, (start // 86_400 + 3) % 7
    off_hours = (weekday >= 5) | (hour >= 20) | (hour < 6)
    squeezed = (size >= 8) & (duration_h < 0.75 * size**0.45)  # big change, short window
    risks = {**dict.fromkeys((new for new, _ in _NEW_GROUPS), _NEW_GROUP_RISK), **_GROUP_RISK}
    logit = (
        _FAILURE_INTERCEPT
        + 1.3 * (kind == 2)
        + 0.5 * np.log(size / 4)
        + 1.0 * np.isin(ci, list(_FRAGILE_CIS))
        + pd.Series(group).map(risks).fillna(0.0).to_numpy(dtype=float)
        + 0.8 * squeezed
        + 0.5 * off_hours
        + 1.0 * overlap
        + _FREEZE_RISK * in_freeze
        + 0.5 * rng.standard_normal(n)
    )
    failed = rng.random(n) < 1 / (1 + np.exp(-logit))
    outcome = np.where(rng.random(n) < 0.4, "unsuccessful", "successful with issues")
    close_code = np.where(failed, outcome, "successful").astype(object)
    delay_h = np.where(failed, 72.0, 20.0) * np.exp(0.8 * rng.standard_normal(n))
    closed = end + (delay_h * 3600).astype(np.int64)
    templates = np.array(_CHANGE_SUMMARIES, dtype=object)[kind, rng.integers(0, 5, n)]
    services = np.array(service_names, dtype=object)[service]
    summary = [t.format(ci=c, svc=s) for t, c, s in zip(templates, ci, services, strict=True)]

    frame = pd.DataFrame(
        {
            "opened_at": _times(opened, CHANGE_DATE_FORMAT),
            "planned_start": _times(start, CHANGE_DATE_FORMAT),
            "planned_end": _times(end, CHANGE_DATE_FORMAT),
            "closed_at": _times(closed, CHANGE_DATE_FORMAT),
            "cmdb_ci": _text(ci),
            "business_service": _text(services),
            "type": _text(np.array(_CHANGE_TYPES, dtype=object)[kind]),
            "assignment_group": _text(group),
            "size": pd.Series(size.astype(np.int64)).astype("string"),
            "short_description": _text(summary),
            "close_code": _text(close_code),
            "state": _text(np.full(n, "Closed", dtype=object)),
        }
    ).iloc[np.argsort(opened, kind="stable")]
    frame = frame.reset_index(drop=True)
    frame.insert(0, "number", _text([f"CHG{30_001 + i:07d}" for i in range(n)]))
    return frame
