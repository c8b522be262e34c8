"""A model's answer as the ITSM acts on it, the same for the service and the batch scorer.

Triage: either an auto-route decision (the label, because it clears the precision threshold
learned on validation) or suggestions to a person, the top-k with probabilities.
Change risk: probability of failure, its band, the top reasons and the conflicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

AUTO_ROUTE = "auto_route"
SUGGEST = "suggest"


AUTO_SUGGEST = "auto_suggest"


def is_triage(answer: pd.DataFrame) -> bool:
    return "auto_route" in answer


def is_resolution(answer: pd.DataFrame) -> bool:
    return "auto_suggest" in answer


def triage_table(answer: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """One flat row per ticket: decision, value (when auto-routed), probability,
    suggestion_1..k with probability_1..k, notes."""
    flat = _decided(answer, top_k, "auto_route", AUTO_ROUTE)
    flat["notes"] = answer["notes"].to_numpy()
    return pd.DataFrame(flat, index=answer.index)


def _decided(answer: pd.DataFrame, top_k: int, flag: str, applied: str) -> dict[str, Any]:
    """decision (`applied` where the answer's `flag` is set, else suggest), the value when
    applied, the probability, and suggestion_1..k with probability_1..k."""
    decision = np.where(answer[flag].to_numpy(bool), applied, SUGGEST)
    flat: dict[str, Any] = {
        "decision": decision,
        "value": answer["label"].where(decision == applied).astype("string").to_numpy(),
        "probability": answer["probability"].to_numpy(float),
    }
    suggestions = answer["suggestions"].tolist()
    probabilities = answer["suggestion_probabilities"].tolist()
    for k in range(top_k):
        flat[f"suggestion_{k + 1}"] = [s[k] if k < len(s) else None for s in suggestions]
        flat[f"probability_{k + 1}"] = [p[k] if k < len(p) else np.nan for p in probabilities]
    return flat


def change_risk_table(answer: pd.DataFrame) -> pd.DataFrame:
    """One flat row per change: probability, band, reasons and conflicts joined by "; "."""
    return pd.DataFrame(
        {
            "probability": answer["probability"].to_numpy(float),
            "band": answer["band"].to_numpy(),
            "reasons": ["; ".join(r) for r in answer["reasons"]],
            "conflicts": ["; ".join(c) for c in answer["conflicts"]],
        },
        index=answer.index,
    )


def resolution_table(answer: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """One flat row per ticket: decision, value, probability, suggestions, the runbook, and
    the neighbours' ids joined by "; " (best first)."""
    flat = _decided(answer, top_k, "auto_suggest", AUTO_SUGGEST)
    flat["runbook"] = answer["runbook"].to_numpy()
    flat["similar"] = ["; ".join(str(n["id"]) for n in row) for row in answer["neighbours"]]
    return pd.DataFrame(flat, index=answer.index)


def table(answer: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    if is_triage(answer):
        return triage_table(answer, top_k)
    if is_resolution(answer):
        return resolution_table(answer, top_k)
    return change_risk_table(answer)


def resolution_record(row: dict[str, Any]) -> dict[str, Any]:
    """One ticket's suggested resolution as the service returns it (a row of `respond`)."""
    auto = bool(row["auto_suggest"])
    return {
        "decision": AUTO_SUGGEST if auto else SUGGEST,
        "value": str(row["label"]) if auto else None,
        "probability": float(row["probability"]),
        "suggestions": [
            {"value": str(v), "probability": float(p)}
            for v, p in zip(row["suggestions"], row["suggestion_probabilities"], strict=True)
        ],
        "runbook": str(row["runbook"]) or None,
        "runbook_basis": str(row["runbook_basis"]) or None,
    }


def triage_record(row: dict[str, Any]) -> dict[str, Any]:
    """One ticket's answer as the service returns it (a row of `respond`)."""
    auto = bool(row["auto_route"])
    return {
        "decision": AUTO_ROUTE if auto else SUGGEST,
        "value": str(row["label"]) if auto else None,
        "probability": float(row["probability"]),
        "suggestions": [
            {"value": str(v), "probability": float(p)}
            for v, p in zip(row["suggestions"], row["suggestion_probabilities"], strict=True)
        ],
        "notes": str(row["notes"]) or None,
    }


def change_risk_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "probability": float(row["probability"]),
        "band": str(row["band"]),
        "reasons": [str(r) for r in row["reasons"]],
        "conflicts": [str(c) for c in row["conflicts"]],
    }
