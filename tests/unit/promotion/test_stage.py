"""The promote stage's wiring around the gate: reports, windows, refusals that are not errors."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from itsm_ml.config import parse_params
from itsm_ml.errors import ItsmMlError, NothingToPromote
from itsm_ml.monitoring.stage import monitored
from itsm_ml.promotion import stage as promotion_stages
from itsm_ml.promotion.gate import Check, Decision
from itsm_ml.promotion.history import NOT_APPLIED, NOT_LEDGERED

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


class FakeRegistry:
    """What the gate's wiring asks MLflow about aliases, held in memory."""

    def __init__(self, champion: str | None) -> None:
        self.champion = champion

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException

        if alias != "champion" or self.champion is None:
            raise MlflowException(f"no alias {alias} on {name}")
        return SimpleNamespace(version=self.champion)


def passed(challenger: str, champion: str | None, reason: str | None = None) -> dict[str, Any]:
    check = Check("beats champion", reason is None, "figures")
    made = Decision("itsm-routing", challenger, champion, (check,), forced_reason=reason)
    return {"event": "decision", "actor": "ops@desk", **made.to_dict()}


def test_a_second_promotion_waits_then_names_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(promotion_stages, "LOCK_WAIT_SECONDS", 0.3)
    lock = tmp_path / ".promotion-itsm-routing.lock"
    with promotion_stages.model_lock(tmp_path, "itsm-routing") as held:
        assert held == lock and lock.read_text() == f"{os.getpid()}\n"
        with (
            pytest.raises(ItsmMlError) as refused,
            promotion_stages.model_lock(tmp_path, "itsm-routing"),
        ):
            pytest.fail("two holders of one model's lock")
        # Another model is not held up.
        with promotion_stages.model_lock(tmp_path, "itsm-category"):
            pass
    assert str(refused.value) == (
        f"another promotion of itsm-routing is running (pid {os.getpid()}, lock file {lock}); "
        "try again when it ends"
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"waiting up to 0.3 s for another promotion of itsm-routing to end "
        f"(pid {os.getpid()}, lock file {lock})"
    ]
    # Released: the next run takes it at once (a wait of 0 would fail otherwise).
    monkeypatch.setattr(promotion_stages, "LOCK_WAIT_SECONDS", 0)
    with promotion_stages.model_lock(tmp_path, "itsm-routing"):
        pass
    assert lock.read_text() == ""


def test_a_waiting_promotion_goes_on_once_the_holder_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promotion_stages, "LOCK_WAIT_SECONDS", 30)
    waiting, order = threading.Event(), []

    class Announced(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            waiting.set()

    def first() -> None:
        with promotion_stages.model_lock(tmp_path, "itsm-routing"):
            order.append("first holds")
            holding.set()
            waiting.wait(30)  # until the second says it waits
            order.append("first ends")

    holding = threading.Event()
    handler = Announced()
    promotion_stages.log.addHandler(handler)
    try:
        thread = threading.Thread(target=first)
        thread.start()
        assert holding.wait(30)
        with promotion_stages.model_lock(tmp_path, "itsm-routing"):
            order.append("second holds")
        thread.join(30)
    finally:
        promotion_stages.log.removeHandler(handler)
    assert order == ["first holds", "first ends", "second holds"]


@pytest.mark.parametrize("run", ["promote", "rollback"])
def test_promote_and_rollback_take_the_models_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: str
) -> None:
    monkeypatch.setattr(promotion_stages, "LOCK_WAIT_SECONDS", 0)
    monkeypatch.setattr(promotion_stages.registry, "client", lambda root: FakeRegistry("1"))
    with (
        promotion_stages.model_lock(tmp_path, "itsm-routing"),
        pytest.raises(ItsmMlError, match="another promotion of itsm-routing is running"),
    ):
        getattr(promotion_stages, run)(PARAMS, "routing", tmp_path)
    assert not (tmp_path / "promotion-ledger.jsonl").exists()


def test_a_move_applied_but_not_ledgered_is_recorded_by_the_next_run(tmp_path: Path) -> None:
    """Killed between moving the alias (to v2) and writing "alias moved": the ledger's last
    intent is the passed decision, and the registry says the move happened."""
    book = promotion_stages.ledger(tmp_path)
    book.append(passed("2", "1"))
    written = promotion_stages._reconcile(FakeRegistry("2"), book, "itsm-routing")
    assert written is not None
    assert {k: written[k] for k in ("event", "model", "alias", "version", "previous")} == {
        "event": "alias moved",
        "model": "itsm-routing",
        "alias": "champion",
        "version": "2",
        "previous": "1",
    }
    assert "applied, its line lost" in written["reconciled"]
    assert promotion_stages._reconcile(FakeRegistry("2"), book, "itsm-routing") is None
    assert len(book.entries("itsm-routing")) == 2


def test_a_move_that_never_happened_is_left_to_read_not_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = promotion_stages.ledger(tmp_path)
    book.append(passed("2", "1"))
    assert promotion_stages._reconcile(FakeRegistry("1"), book, "itsm-routing") is None
    assert promotion_stages._reconcile(FakeRegistry(None), book, "itsm-routing") is None
    assert len(book.entries("itsm-routing")) == 1
    monkeypatch.setattr(promotion_stages.registry, "client", lambda root: FakeRegistry("1"))
    [row] = promotion_stages.history_rows(PARAMS, "routing", tmp_path)
    assert row.outcome == f"passed, {NOT_APPLIED}"
    monkeypatch.setattr(promotion_stages.registry, "client", lambda root: FakeRegistry("2"))
    [row] = promotion_stages.history_rows(PARAMS, "routing", tmp_path)
    assert row.outcome == f"passed, {NOT_LEDGERED}"


def test_forced_moves_and_rollbacks_are_reconciled_with_what_they_said(tmp_path: Path) -> None:
    book = promotion_stages.ledger(tmp_path)
    book.append(passed("3", "2", reason="CAB-42 approved"))
    forced = promotion_stages._reconcile(FakeRegistry("3"), book, "itsm-routing")
    assert forced is not None and (forced["forced"], forced["reason"]) == (True, "CAB-42 approved")
    book.append({"event": "rollback", "actor": "ops@desk", "model": "itsm-routing",
                 "from": "3", "to": "2"})  # fmt: skip
    back = promotion_stages._reconcile(FakeRegistry("2"), book, "itsm-routing")
    assert back is not None and (back["version"], back["previous"]) == ("2", "3")
    assert "forced" not in back


def test_history_reads_the_registry_only_for_an_unrecorded_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_registry(root: Path) -> None:
        raise AssertionError("history read the registry with nothing to tell apart")

    monkeypatch.setattr(promotion_stages.registry, "client", no_registry)
    book = promotion_stages.ledger(tmp_path)
    book.append(passed("2", "1"))
    book.append({"event": "alias moved", "actor": "ops@desk", "model": "itsm-routing",
                 "alias": "champion", "version": "2", "previous": "1"})  # fmt: skip
    rows = promotion_stages.history_rows(PARAMS, "routing", tmp_path)
    assert [(r.event, r.outcome) for r in rows] == [
        ("decision", "passed"),
        ("alias moved", "champion moved"),
    ]
