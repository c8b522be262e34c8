"""The promote stage's wiring around the gate: reports, windows, refusals that are not errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from itsm_ml.config import parse_params
from itsm_ml.errors import ItsmMlError, NothingToPromote
from itsm_ml.monitoring.stage import monitored
from itsm_ml.promotion import stage as promotion_stages

PARAMS = parse_params({"tickets": {"source": {"kind": "generator"}},
                       "changes": {"source": {"kind": "generator"}}})  # fmt: skip


def test_a_challenger_already_champion_is_reported_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def already(*args: object, **kwargs: object) -> None:
        raise NothingToPromote("ticket-routing v3 already is the champion")

    monkeypatch.setattr(promotion_stages, "promote", already)
    outcome = promotion_stages.stage(PARAMS, "routing", tmp_path)
    assert outcome.figures["promotion"] is None
    written = json.loads((tmp_path / "reports/promotion/routing.json").read_text())
    assert written["note"] == "ticket-routing v3 already is the champion"


def test_the_window_must_be_a_labelled_canonical_parquet(tmp_path: Path) -> None:
    target = monitored(PARAMS, "change-risk", tmp_path)
    with pytest.raises(ItsmMlError, match=r"as a canonical \.parquet table"):
        promotion_stages._window(target, tmp_path, tmp_path / "recent.csv")
    unlabelled = tmp_path / "recent.parquet"
    pd.DataFrame(
        {"change_id": ["c1"], "label_failed": pd.array([None], dtype="boolean")}
    ).to_parquet(unlabelled)
    with pytest.raises(ItsmMlError, match="no labelled record to judge by"):
        promotion_stages._window(target, tmp_path, unlabelled)
    pd.DataFrame({"change_id": ["c1"]}).to_parquet(unlabelled)
    with pytest.raises(ItsmMlError, match="no `label_failed` column"):
        promotion_stages._window(target, tmp_path, unlabelled)


def test_models_are_named_as_registered() -> None:
    assert promotion_stages.registered_name(PARAMS, "routing") == "itsm-routing"
    assert promotion_stages.registered_name(PARAMS, "change-risk") == "itsm-change-risk"
    assert promotion_stages.registered_name(PARAMS, "itsm-routing") == "itsm-routing"
    with pytest.raises(ItsmMlError, match="unknown model 'sla'"):
        promotion_stages.registered_name(PARAMS, "sla")
