"""`itsm-ml experiments` reads `dvc exp show --json` and keeps what decides."""

from __future__ import annotations

from typing import Any

from itsm_ml.catalog import catalog
from itsm_ml.config import parse_params
from itsm_ml.experiments import experiment_rows

PARAMS = parse_params(
    {
        "tickets": {"source": {"kind": "generator"}},
        "changes": {"source": {"kind": "generator"}},
        "models": {
            "routing": {"table": "tickets", "kind": "multiclass", "label": "assignment_group"},
            "sla": {"table": "tickets", "kind": "binary", "label": "made_sla"},
        },
    }
)


def revision(precision: float, accuracy: float, gate: str) -> dict[str, Any]:
    return {
        "timestamp": "2026-12-01T10:00:00",
        "params": {"params.yaml": {"data": {"triage": {"target_precision": precision}}}},
        "metrics": {
            "reports/models/routing/metrics.json": {
                "data": {
                    "skipped": False,
                    "accuracy": accuracy,
                    "best baseline accuracy": 0.5,
                }
            },
            "reports/models/routing/gate.json": {"data": {"gate": gate}},
            "reports/models/sla/metrics.json": {"data": {"skipped": True, "reason": "no label"}},
            "reports/validation/tickets.metrics.json": {"data": {"passed": True, "rows": 9}},
        },
    }


def test_each_experiment_shows_its_changed_params_and_each_models_figures() -> None:
    shown = [
        {"rev": "workspace", "name": None, "data": revision(0.9, 0.70, "promoted")},
        {
            "rev": "a" * 40,
            "name": "main",
            "data": revision(0.9, 0.70, "promoted"),
            "experiments": [
                {
                    "name": "lower-bar",
                    "revs": [{"rev": "b" * 40, "data": revision(0.8, 0.71, "refused")}],
                }
            ],
        },
    ]
    rows = experiment_rows(shown, catalog(PARAMS))
    assert [r.name for r in rows] == ["workspace", "main", "lower-bar"]
    assert rows[0].changed == {} and rows[1].changed == {}
    assert rows[2].changed == {"triage.target_precision": 0.8}
    assert rows[2].models["routing"] == {
        "metric": "accuracy",
        "value": 0.71,
        "baseline": 0.5,
        "gate": "refused",
    }
    assert rows[2].models["sla"]["gate"] == "skipped" and rows[2].models["sla"]["value"] is None
