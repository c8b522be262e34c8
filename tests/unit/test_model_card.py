"""Model cards say what a model is for, who owns it and its limits, from the catalog."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from itsm_ml.catalog import catalog
from itsm_ml.change_risk.evaluation import band_table
from itsm_ml.config import parse_params
from itsm_ml.model_card import render_card, render_change_card

DATA = {
    "source": "built-in generator",
    "split_method": "time-ordered",
    "train_rows": 700,
    "valid_rows": 150,
    "test_rows": 150,
    "train_period": "2025-01-01 to 2025-07-01",
    "valid_period": "2025-07-01 to 2025-08-15",
    "test_period": "2025-08-15 to 2025-09-30",
}


def triage_card(**use: Any) -> str:
    per_class = pd.DataFrame(
        {
            "class": ["Network", "Desktop"],
            "support": [90, 60],
            "precision": [0.9, 0.7],
            "recall": [0.8, 0.75],
            "f1": [0.85, 0.72],
        }
    )
    coverage = pd.DataFrame(
        {
            "class": ["Network", "Desktop"],
            "threshold": [0.8, float("inf")],
            "coverage": [0.6, 0.0],
            "precision": [0.93, float("nan")],
        }
    )
    metrics = {
        "accuracy": 0.8,
        "macro_f1": 0.78,
        "classes": 2,
        "temperature": 0.9,
        "ece": 0.03,
        "ece_uncalibrated": 0.1,
        "target_precision": 0.9,
        "coverage": 0.36,
        "auto_routed_precision": 0.93,
        "top_k": 3,
    }
    return render_card(
        target="routing",
        registered_model="itsm-routing",
        label="label_assignment_group",
        data={**DATA, "features": ["caller", "text"]},
        metrics=metrics,
        baselines={"majority class": {"accuracy": 0.6, "macro_f1": 0.37}},
        per_class=per_class,
        coverage_per_class=coverage,
        **use,
    )


def change_card(**use: Any) -> str:
    rng = np.random.default_rng(0)
    probability = rng.uniform(size=200)
    failed = rng.uniform(size=200) < probability
    thresholds = {"high": 0.7, "medium": 0.4}
    bands = np.select([probability >= 0.7, probability >= 0.4], ["high", "medium"], "low")
    table = band_table(probability, failed, bands, thresholds)
    quality = {"auc": 0.75, "pr_auc": 0.5, "brier": 0.2, "ece": 0.04}
    return render_change_card(
        registered_model="itsm-change-risk",
        data={
            **DATA,
            "train_failure_rate": 0.1,
            "valid_failure_rate": 0.12,
            "test_failure_rate": 0.11,
            "features": ["size"],
            "delay_days": 30,
        },
        metrics={**quality, "ece_uncalibrated": 0.1, "mean_probability": 0.5, "failure_rate": 0.5},
        baselines={"size alone": quality},
        band_targets={"high": "precision 50%", "medium": "recall 80%"},
        bands_valid=table,
        bands_test=table,
        **use,
    )


def test_a_card_states_intended_use_owner_and_limits_from_the_catalog() -> None:
    params = parse_params(
        {
            "tickets": {"source": {"kind": "generator"}},
            "changes": {"source": {"kind": "generator"}},
            "models": {
                "routing": {
                    "table": "tickets",
                    "kind": "multiclass",
                    "label": "assignment_group",
                    "owner": "service-desk-analytics",
                    "intended_use": "Suggests an assignment group at ticket open.",
                    "limits": ["Not for security incidents: they go to the SOC queue."],
                },
                "change-risk": {"table": "changes", "kind": "binary", "label": "failed"},
            },
        }
    )
    found = catalog(params)
    routing, risk = found.get("routing"), found.get("change-risk")
    card = triage_card(
        intended_use=routing.intended_use,
        owner=routing.owner,
        limits=[*routing.limits, "Classes that appear after training are unknown."],
    )
    use = card.index("## Intended use")
    assert card.index("# Model card: itsm-routing") < use < card.index("## Data")
    assert "Suggests an assignment group at ticket open." in card
    assert "Owner: service-desk-analytics." in card
    limits = card[card.index("## Known limits") :]
    assert limits.index("- Not for security incidents") < limits.index("- Classes that appear")

    card = change_card(intended_use=risk.intended_use, owner=risk.owner, limits=[*risk.limits])
    assert card.index("## Intended use") < card.index("## Data")
    assert "It approves or rejects nothing." in card  # the family's default use
    assert "Owner: none declared (set `owner` for this model under `models:`" in card
    assert f"- {risk.limits[0]}" in card[card.index("## Known limits") :]


def test_a_card_says_how_its_model_was_chosen_on_validation() -> None:
    use = {"intended_use": "Suggests a group.", "owner": "desk", "limits": []}
    chosen = {
        "chosen": "blend",
        "selection_metric": "accuracy",
        "candidates": {
            "logistic": {"accuracy": 0.7012, "macro_f1": 0.5},
            "booster": {"accuracy": 0.6871, "macro_f1": 0.48},
            "blend": {"accuracy": 0.7105, "macro_f1": 0.52},
        },
        "calibration": "temperature",
        "calibration_ece_cross_fitted": {"none": 0.041, "temperature": 0.012},
    }
    card = triage_card(**use, candidates=chosen)
    assert "## How it was chosen" in card
    assert "| blend (chosen) | 0.7105 | 0.5200 |" in card and "| logistic | 0.7012 |" in card
    assert "Calibrator: temperature (cross-fitted validation ECE: none 0.0410, temperature" in card
    assert "## How it was chosen" not in triage_card(**use)  # older cards: no section
