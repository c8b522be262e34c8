"""The catalog: models declared in params.yaml, checked once, looked up by name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.catalog import INTENDED_USE, LIMITS, ModelLayout, catalog
from itsm_ml.config import Params, load_params, parse_params
from itsm_ml.errors import ConfigError

ROOT = Path(__file__).parents[2]
GENERATOR = {"kind": "generator"}


def params(models: dict[str, object] | None = None, **extra: object) -> Params:
    raw: dict[str, object] = {"tickets": {"source": GENERATOR}, "changes": {"source": GENERATOR}}
    if models is not None:
        raw["models"] = models
    return parse_params({**raw, **extra})


def test_the_project_catalog_names_every_model_with_its_table_and_label() -> None:
    found = catalog(load_params(ROOT / "params.yaml"))
    assert found.names == [
        "routing",
        "category",
        "priority",
        "ticket-similarity",
        "incident-surges",
        "recurring-issues",
        "change-risk",
    ]
    surges = found.get("incident-surges")
    assert (surges.table, surges.label, surges.family, surges.metric) == (
        "tickets",
        "label_parent_incident",
        "early_warning",
        "nab_standard",
    )
    assert list(surges.metrics) == ["nab_standard", "nab_low_fp", "false_alarms_per_day"]
    issues = found.get("recurring-issues")
    assert (issues.kind, issues.label, issues.family, issues.metric) == (
        "recurrence",
        "label_problem_id",
        "problems",
        "problems_raised_share",
    )
    similar = found.get("ticket-similarity")
    assert (similar.table, similar.kind, similar.family, similar.metric) == (
        "tickets",
        "similarity",
        "knowledge",
        "accuracy",
    )
    risk = found.get("change-risk")
    assert (risk.table, risk.kind, risk.label, risk.family) == (
        "changes",
        "binary",
        "label_failed",
        "change_risk",
    )
    assert found.get("routing").registered_model == "itsm-routing"
    assert found.get("itsm-routing") is found.get("routing")  # by registered name too


def test_registered_names_carry_the_project_prefix_unless_given() -> None:
    found = catalog(
        params(
            {
                "sla": {"table": "tickets", "kind": "binary", "label": "made_sla"},
                "team": {
                    "table": "tickets",
                    "kind": "multiclass",
                    "label": "label_assignment_group",
                    "registered_model": "team-router",
                },
            },
            project="acme-desk",
        )
    )
    assert found.get("sla").registered_model == "acme-desk-sla"
    assert found.get("sla").label == "label_made_sla"
    assert found.get("team-router").name == "team"


def test_default_features_are_every_mapped_column_but_ids_times_labels_and_text() -> None:
    entry = catalog(params({"x": {"table": "tickets", "kind": "binary", "label": "flag"}})).get("x")
    when = pd.Series(pd.to_datetime(["2025-01-01"]))
    frame = pd.DataFrame(
        {
            "ticket_id": ["t1"],
            "opened_at": when,
            "closed_at": when,
            "text": ["vpn down"],
            "team": ["a"],
            "site": ["b"],
            "size": [3.0],
            "due": when,  # a timestamp the source mapped that the schema does not know
            "label_flag": ["yes"],
            "label_other": ["x"],
            "_source_row": [1],
        }
    )
    assert entry.feature_columns(frame) == ["team", "site", "size"]
    declared = catalog(
        params({"x": {"table": "tickets", "kind": "binary", "label": "flag", "features": ["site"]}})
    ).get("x")
    assert declared.feature_columns(frame) == ["site"]


def test_keep_at_open_is_the_column_named_like_the_label_when_present() -> None:
    entry = catalog(params()).get("routing")
    assert entry.keep_at_open(pd.DataFrame(columns=["assignment_group"])) == "assignment_group"
    assert entry.keep_at_open(pd.DataFrame(columns=["caller"])) is None


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"x": {"table": "changes", "kind": "multiclass", "label": "failed"}}, r"models\.x\.kind"),
        (
            {"x": {"table": "changes", "kind": "binary", "label": "rolled_back"}},
            r"models\.x\.label: 'rolled_back' on the changes table; expected 'failed'",
        ),
        (
            {"x": {"table": "changes", "kind": "similarity", "label": "failed"}},
            r"models\.x\.kind: 'similarity' on the changes table; expected the tickets table",
        ),
        (
            {"x": {"table": "changes", "kind": "detector", "label": "failed"}},
            r"models\.x\.kind: 'detector' on the changes table; expected the tickets table",
        ),
        (
            {"x": {"table": "tickets", "kind": "detector", "label": "p", "metric": "ece"}},
            r"models\.x\.metric: 'ece'; expected one of nab_standard, nab_low_fp for a model",
        ),
        (
            {"x": {"table": "changes", "kind": "recurrence", "label": "failed"}},
            r"models\.x\.kind: 'recurrence' on the changes table; expected the tickets table",
        ),
        (
            {"x": {"table": "tickets", "kind": "recurrence", "label": "p", "metric": "ece"}},
            r"models\.x\.metric: 'ece'; expected one of problems_raised_share, pairwise_f1 for",
        ),
        (
            {"x": {"table": "tickets", "kind": "similarity", "label": "f", "metric": "ece"}},
            r"models\.x\.metric: 'ece'; expected one of accuracy, macro_f1",
        ),
        (
            {"x": {"table": "changes", "kind": "binary", "label": "failed", "metric": "ece"}},
            r"models\.x\.metric: 'ece'; expected one of auc for a model",
        ),
        (
            {"x": {"table": "tickets", "kind": "multiclass", "label": "f", "metric": "auc"}},
            r"models\.x\.metric: 'auc'; expected one of accuracy, macro_f1 for a model of",
        ),
        (
            {"x": {"table": "tickets", "kind": "binary", "label": "f", "metric": "brier"}},
            r"models\.x\.metric: 'brier'; expected one of auc, pr_auc, accuracy, macro_f1",
        ),
    ],
)
def test_what_the_schema_cannot_check_names_the_params_key(
    models: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        catalog(params(models))


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"x": {"table": "tickets", "kind": "ternary", "label": "f"}}, r"models\.x\.kind"),
        ({"x": {"table": "incidents", "kind": "binary", "label": "f"}}, r"models\.x\.table"),
        (
            {"x": {"table": "tickets", "kind": "binary", "label": "f", "features": ["label_f"]}},
            "known only at close",
        ),
        ({"Bad Name": {"table": "tickets", "kind": "binary", "label": "f"}}, "model names"),
        ({"x": {"table": "tickets", "kind": "binary"}}, r"models\.x\.label"),
    ],
)
def test_the_schema_names_the_params_key(models: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        params(models)


def test_owner_use_and_limits_are_carried_or_default_to_the_family() -> None:
    declared = {
        "owner": "service-desk-analytics",
        "intended_use": "Suggests an assignment group at ticket open.",
        "limits": ["Not for security incidents."],
    }
    found = catalog(
        params(
            {
                "team": {"table": "tickets", "kind": "multiclass", "label": "assignment_group"},
                "routing": {
                    "table": "tickets",
                    "kind": "multiclass",
                    "label": "assignment_group",
                    **declared,
                },
                "risk": {"table": "changes", "kind": "binary", "label": "failed", "limits": []},
            }
        )
    )
    routing = found.get("routing")
    assert (routing.owner, routing.intended_use, routing.limits) == (
        "service-desk-analytics",
        "Suggests an assignment group at ticket open.",
        ("Not for security incidents.",),
    )
    team = found.get("team")
    assert team.owner is None
    assert team.intended_use == INTENDED_USE["triage"].format(label="assignment_group")
    assert "`assignment_group` when it is opened" in team.intended_use
    assert team.limits == LIMITS["triage"]
    risk = found.get("risk")
    assert risk.intended_use == INTENDED_USE["change_risk"]
    assert risk.limits == ()  # [] states no limit beyond those the evaluation finds


def test_the_project_catalog_names_an_owner_and_a_use_for_every_model() -> None:
    for entry in catalog(load_params(ROOT / "params.yaml")):
        assert entry.owner and entry.intended_use, entry.name
        assert entry.intended_use not in INTENDED_USE.values(), entry.name


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("owner", "", r"models\.x\.owner"),
        ("intended_use", "", r"models\.x\.intended_use"),
        ("limits", "one sentence, not a list", r"models\.x\.limits"),
        ("owners", "typo", r"models\.x\.owners"),
    ],
)
def test_card_fields_are_checked_naming_the_key(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        params({"x": {"table": "tickets", "kind": "binary", "label": "f", field: value}})


def test_an_unknown_model_lists_the_catalog() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown model 'sla': params.yaml `models` declares routing, category"
    ):
        catalog(params()).get("sla")


def test_each_model_has_its_own_files(tmp_path: Path) -> None:
    layout = ModelLayout(tmp_path, "change-risk")
    assert layout.model == tmp_path / "models" / "change-risk.joblib"
    assert layout.metrics.parent == layout.reports == tmp_path / "reports/models/change-risk"
    assert layout.card == tmp_path / "reports/model_cards/change-risk.md"


def test_check_lists_the_labels_an_export_has_and_what_to_declare() -> None:
    from itsm_ml.catalog import labels_found, skipped_models

    frame = pd.DataFrame(
        {
            "label_assignment_group": pd.array(["a", "b", "c", None], dtype="string"),
            "label_made_sla": pd.array([True, False, True, None], dtype="boolean"),
            "label_reassignment_count": pd.array([0, 1, 2, 3], dtype="Int64"),
            "label_one_value": pd.array(["x"] * 4, dtype="string"),
            # what fixed a ticket and what it links to: shown with answers, not classes
            "label_resolution_notes": pd.array(["reset", "reboot", "swap", None], dtype="string"),
            "label_problem_id": pd.array(["PRB1", "PRB2", None, None], dtype="string"),
            "team": pd.array(["a", "b", "c", "d"], dtype="string"),
        }
    )
    known = catalog(params())
    found = {f.column: f for f in labels_found("tickets", frame, known)}
    assert set(found) == {"label_assignment_group", "label_made_sla"}
    assert (found["label_assignment_group"].kind, found["label_assignment_group"].model) == (
        "multiclass",
        "routing",
    )
    assert found["label_made_sla"].declaration("tickets") == (
        "  made-sla: {table: tickets, kind: binary, label: made_sla}"
    )
    skipped = skipped_models("tickets", frame, known)
    assert [(e.name, "no `" + e.label + "` column" in why) for e, why in skipped] == [
        ("category", True),
        ("priority", True),
    ]


def test_what_makes_a_label_unlearnable() -> None:
    from itsm_ml.catalog import nothing_to_learn

    entry = catalog(params({"x": {"table": "tickets", "kind": "binary", "label": "x"}})).get("x")
    assert "no `label_x` column" in str(nothing_to_learn(entry, pd.DataFrame({"a": [1]})))
    empty = pd.DataFrame({"label_x": pd.array([None, None], dtype="string")})
    assert "is empty in the training split" in str(nothing_to_learn(entry, empty))
    single = pd.DataFrame({"label_x": ["a", "a", None]})
    assert "one value only" in str(nothing_to_learn(entry, single))
    assert nothing_to_learn(entry, pd.DataFrame({"label_x": ["a", "b"]})) is None
    # A detector's label links the incidents of one outage: one outage is enough.
    detector = catalog(params({"d": {"table": "tickets", "kind": "detector", "label": "x"}}))
    assert nothing_to_learn(detector.get("d"), single) is None
    assert "is empty in the training split" in str(nothing_to_learn(detector.get("d"), empty))
    # A recurrence model learns from no label: validation's and test's links judge it.
    recurrence = catalog(params({"r": {"table": "tickets", "kind": "recurrence", "label": "x"}}))
    assert nothing_to_learn(recurrence.get("r"), empty) is None
    assert "no `label_x` column" in str(
        nothing_to_learn(recurrence.get("r"), pd.DataFrame({"a": [1]}))
    )


def test_a_binary_model_of_a_label_with_more_values_is_a_declaration_error() -> None:
    from itsm_ml.catalog import check_kind

    declared = catalog(
        params(
            {
                "x": {"table": "tickets", "kind": "binary", "label": "x"},
                "y": {"table": "tickets", "kind": "multiclass", "label": "x"},
            }
        )
    )
    three = pd.DataFrame({"label_x": ["a", "b", "c", None]})
    with pytest.raises(ConfigError, match=r"models\.x\.kind: 'binary', but `label_x` has 3"):
        check_kind(declared.get("x"), three)
    check_kind(declared.get("y"), three)
    check_kind(declared.get("x"), three.iloc[:2])
