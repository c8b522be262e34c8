"""Problem candidates opened once as New problems with their incidents linked, and the
problem managers' decisions read back as accepted, rejected or pending."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from itsm_ml.config import ProblemWriteBackParams, parse_params
from itsm_ml.serving.problem_writeback import (
    open_problems,
    precision,
    problem_fields,
    read_decisions,
    track_precision,
)
from itsm_ml.serving.writeback import ServiceNowWriter
from tests.fakes.servicenow import FakeServiceNow

SETTINGS = ProblemWriteBackParams()


def candidate(
    ident: str, tickets: list[str], raised: str = "2025-03-04T00:00:00"
) -> dict[str, Any]:
    return {
        "id": ident, "raised_at": raised, "records": len(tickets) + 4, "tickets": len(tickets),
        "micro_records": 4, "callers": 6, "first_seen": "2025-02-20T08:00:00",
        "last_seen": "2025-03-03T17:00:00", "minutes_lost": 60.0, "services": {"VPN": 8},
        "cis": {"vpn-gw-02": 3}, "top_terms": ["809", "vpn", "error", "update"],
        "representatives": [{"id": "MR1", "source": "micro-record", "opened_at": "2025-02-20T08:00:00"}],
        "ticket_ids": tickets,
    }  # fmt: skip


def writer(fake: FakeServiceNow, table: str) -> ServiceNowWriter:
    return ServiceNowWriter(
        fake.url, (fake.user, fake.password), table=table, sleep=lambda _: None, random=lambda: 0.0
    )


def test_a_candidate_opens_one_new_problem_with_its_incidents_linked_however_often_run() -> None:
    with (
        FakeServiceNow(table="problem", number_prefix="PRB") as problems,
        FakeServiceNow(table="incident") as incidents,
    ):
        incidents.seed("a1", number="INC0001")
        incidents.seed("a2", number="INC0002")
        found = candidate("RI-0123456789", ["INC0001", "INC0002", "INC9999"])
        said: list[str] = []
        with writer(problems, "problem") as p, writer(incidents, "incident") as i:
            first = open_problems([found], p, i, SETTINGS, echo=said.append)
            again = open_problems([found], p, i, SETTINGS, echo=said.append)
        [problem] = problems.records()
        assert problem["state"] == "New" and problem["correlation_id"] == "RI-0123456789"
        assert problem["short_description"].startswith("Recurring: 809, vpn, error, update (VPN)")
        assert "3 incidents, 4 fixed outside the desk" in problem["description"]
        assert (first[0].status, again[0].status) == ("written", "already_written")
        assert first[0].problem == problem["number"]
        # Two incidents linked by the problem's number, once each; the unknown one counted.
        assert (first[0].linked, first[0].failed_links) == (2, 1)
        for sys_id in ("a1", "a2"):
            assert incidents.record(sys_id)["problem_id"] == problem["number"]
            assert len(incidents.journal(sys_id)) == 1


def test_decisions_are_read_back_and_give_the_precision_by_month() -> None:
    with FakeServiceNow(table="problem", number_prefix="PRB") as problems:
        problems.seed(
            "p1",
            number="PRB1",
            correlation_id="RI-a",
            correlation_display="itsm-ml",
            state="Root Cause Analysis",
            resolution_code="",
        )
        problems.seed(
            "p2",
            number="PRB2",
            correlation_id="RI-b",
            correlation_display="itsm-ml",
            state="Closed",
            resolution_code="Canceled",
        )
        problems.seed(
            "p3",
            number="PRB3",
            correlation_id="RI-c",
            correlation_display="itsm-ml",
            state="New",
            resolution_code="",
        )
        # An incident opened from an early warning carries the marker too: not a candidate.
        problems.seed("p4", number="INC7", correlation_id="EW-1", correlation_display="itsm-ml",
                      state="Closed", resolution_code="Canceled")  # fmt: skip
        with writer(problems, "problem") as p:
            decisions = read_decisions(p, SETTINGS)
    assert [(d["candidate"], d["decision"]) for d in decisions] == [
        ("RI-a", "accepted"),
        ("RI-b", "rejected"),
        ("RI-c", "pending"),
    ]
    raised = [candidate("RI-a", [], "2025-03-04"), candidate("RI-b", [], "2025-04-01"),
              candidate("RI-c", [], "2025-04-02")]  # fmt: skip
    summary = precision(decisions, raised)
    assert summary["precision"] == 0.5 and summary["pending"] == 1
    assert summary["by_month"]["2025-03"]["precision"] == 1.0
    assert summary["by_month"]["2025-04"] == {
        "accepted": 0, "rejected": 1, "pending": 1, "precision": 0.0,
    }  # fmt: skip


def test_the_fields_of_a_problem_say_how_to_accept_or_reject_it() -> None:
    fields = problem_fields(candidate("RI-x", ["INC1"]), SETTINGS)
    assert fields["state"] == "New"
    assert "closing it as Canceled or Duplicate" in fields["description"]
    assert len(fields["short_description"]) <= 160


def test_the_precision_is_a_point_of_history_on_the_version_serving_each_time_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itsm_ml.tracking import registry

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    models = {"issues": {"table": "tickets", "kind": "recurrence", "label": "problem_id"}}
    generator = {"source": {"kind": "generator"}}
    params = parse_params({"tickets": generator, "changes": generator, "models": models})
    client = registry.client(tmp_path)
    # Nothing registered yet: nothing to log on, and nothing fails.
    assert track_precision(tmp_path, params, {"precision": 0.5}, 0.7) is None
    run = client.create_run(registry.configure(tmp_path))
    client.create_registered_model("itsm-issues")
    version = client.create_model_version("itsm-issues", str(tmp_path), run.info.run_id)
    client.set_registered_model_alias("itsm-issues", registry.CHAMPION, version.version)
    first = {"precision": 0.5, "accepted": 1, "rejected": 1, "pending": 2}
    assert track_precision(tmp_path, params, first, 0.7) == "itsm-issues v1"
    later = {"precision": 0.75, "accepted": 3, "rejected": 1, "pending": 0}
    track_precision(tmp_path, params, later, 0.6)
    history = client.get_metric_history(run.info.run_id, "decisions precision")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.75)]
    tags = client.get_model_version("itsm-issues", "1").tags
    assert tags["decisions.precision"] == "0.75" and tags["decisions.threshold"] == "0.6"
    # A catalog without a recurrence model has no version to log on.
    no_model = parse_params({"tickets": generator, "changes": generator, "models": {}})
    assert track_precision(tmp_path, no_model, later, 0.6) is None
