"""The problem candidates as a static page a problem manager reads offline (inline CSS, the
weekly chart embedded), one card per candidate with its evidence."""

from __future__ import annotations

import base64
import html
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
.card{border:1px solid #ccc;border-radius:6px;padding:.8em 1.2em;margin:1em 0}
.card.active{border-left:6px solid #c0392b}.card.raised{border-left:6px solid #999}
.muted{color:#666}.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 .4em;
margin:0 .2em .2em 0}table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;
vertical-align:top;border-bottom:1px solid #eee}.micro{color:#8e44ad}
"""


def render_html(summary: dict[str, Any], candidates: list[dict[str, Any]], chart: bytes) -> str:
    esc = html.escape
    cards = [_card(c) for c in candidates]
    picture = base64.b64encode(chart).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Problem candidates</title>
<style>{_CSS}</style></head><body>
<h1>Problem candidates</h1>
<p>{summary["records"]:,} records ({summary["tickets"]:,} tickets,
{summary["micro_records"]:,} micro-records) from {esc(str(summary["first"]))} to
{esc(str(summary["now"]))}, in {summary["groups"]:,} groups; the rule ({esc(summary["rule"])})
raised {summary["raised"]} of them, {summary["active"]} still recurring now, about
{summary["raised_per_month"]:.1f} a month to review.</p>
<img alt="candidates raised per week" src="data:image/png;base64,{picture}">
{"".join(cards) or "<p>No group has met the rule.</p>"}
</body></html>
"""


def _card(candidate: dict[str, Any]) -> str:
    esc = html.escape
    state = "active" if candidate["active"] else "raised"
    tags = "".join(f'<span class="tag">{esc(t)}</span>' for t in candidate["top_terms"])
    places = ", ".join(
        f"{esc(k)} ({v})" for k, v in {**candidate["services"], **candidate["cis"]}.items()
    )
    rows = "".join(
        f'<tr><td class="{"micro" if r["source"] != "ticket" else ""}">{esc(r["id"])}<br>'
        f"<small>{esc(r['source'])} &middot; {esc(str(r['opened_at']))}</small></td>"
        f"<td>{esc(r['text'] or '')}</td><td>{esc(r['resolution'] or '')}</td></tr>"
        for r in candidate["representatives"]
    )
    linked = ", ".join(candidate["linked_problems"]) or "none"
    return f"""<div class="card {state}"><h2>{esc(candidate["id"])}
<small class="muted">{"recurring now" if candidate["active"] else "raised earlier"}</small></h2>
<p>Raised {esc(str(candidate["raised_at"]))} with {candidate["records_when_raised"]} records from
{candidate["callers_when_raised"]} callers &middot; now {candidate["records"]} records
({candidate["tickets"]} tickets, <span class="micro">{candidate["micro_records"]} fixed outside
the desk, {candidate["micro_share"]:.0%}</span>) from {candidate["callers"]} callers, first
{esc(str(candidate["first_seen"]))}, last {esc(str(candidate["last_seen"]))},
{candidate["minutes_lost"]:,.0f} minutes lost &middot; linked problems: {esc(linked)}</p>
<p>{places}</p><p>{tags}</p>
<table><tr><th>record</th><th>what was met</th><th>what fixed it</th></tr>{rows}</table></div>
"""
