"""Batch scoring of export files: order, chunking, failures, both kinds, both engines."""

from __future__ import annotations

import gzip
import math
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from itsm_ml.catalog import catalog
from itsm_ml.change_risk.stage import build_scorer, split_features
from itsm_ml.config import (
    ChangeRiskModelParams,
    ChangeRiskParams,
    GeneratorSource,
    Params,
    parse_params,
)
from itsm_ml.data.sources import load_table
from itsm_ml.data.sources.generator import generate_changes, generate_incidents
from itsm_ml.data.sources.servicenow import change_requests_to_canonical, incidents_to_canonical
from itsm_ml.data.split import ordered_cut, time_split
from itsm_ml.errors import ConfigError, ItsmMlError, SourceError
from itsm_ml.serving import answers
from itsm_ml.serving.batch_scoring import (
    resolve_model,
    score_file,
    score_file_dask,
)
from itsm_ml.triage.model import TriageModel
from tests.registering import register

EXPORT_ROWS = 300


def _generator(rows: int, seed: int, start: date, end: date) -> GeneratorSource:
    return GeneratorSource(kind="generator", rows=rows, seed=seed, start=start, end=end)


@pytest.fixture(scope="module")
def triage_model() -> TriageModel:
    tickets = load_table("tickets", _generator(1500, 3, date(2025, 1, 1), date(2025, 4, 1)))
    split = time_split(tickets, "opened_at", 0.25, 0.05)
    model = TriageModel(
        categorical=["caller", "channel", "location", "ci", "service"],
        min_category_count=5,
        min_class_support=10,
        n_jobs=1,
    )
    target = "label_assignment_group"
    return model.fit(split.train, split.train[target], split.valid, split.valid[target])


def _incident_export(rows: int = EXPORT_ROWS, seed: int = 9) -> pd.DataFrame:
    """Open incidents as ServiceNow exports them (field names, text), with the awkward cells
    real exports have: quoted newlines, commas, quotes, and empty fields."""
    incidents = generate_incidents(_generator(rows, seed, date(2025, 4, 1), date(2025, 5, 1)))
    incidents = incidents.drop(columns=["resolved_at", "closed_at", "close_code", "made_sla"])
    if rows < 10:
        return incidents
    incidents.loc[5, "description"] = 'First line, with a comma\nsecond line "quoted"\n'
    incidents.loc[6, "short_description"] = "=cmd|' /C calc'!A0"
    incidents.loc[7, ["short_description", "description", "caller_id"]] = pd.NA
    return incidents


def _default_params() -> Params:
    """Params with every default, so the catalog is the default one (itsm-routing, ...)."""
    return parse_params(
        {"tickets": {"source": {"kind": "generator"}}, "changes": {"source": {"kind": "generator"}}}
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(_incident_export(), tmp_path_factory.mktemp("export") / "incidents.csv")


def _score(model: Any, source: Path, target: Path, **options: Any) -> Any:
    options = {"top_k": 3, "progress": False, **options}
    return score_file(
        model,
        kind=options.pop("kind", "tickets"),
        input_path=source,
        output_path=target,
        model_name=options.pop("model_name", "itsm-routing"),
        version=options.pop("version", "4"),
        **options,
    )


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_every_record_gets_the_models_answer_in_input_order(
    triage_model: TriageModel, export: Path, tmp_path: Path
) -> None:
    summary = _score(triage_model, export, tmp_path / "out.csv", chunk_rows=64)
    scored = _read(tmp_path / "out.csv")
    records = pd.read_csv(export, dtype=str, keep_default_na=False, na_values=[""])
    expected = answers.table(triage_model.respond(incidents_to_canonical(records)), 3)

    assert (summary.rows, summary.chunks) == (EXPORT_ROWS, math.ceil(EXPORT_ROWS / 64))
    assert list(scored.columns[:4]) == ["number", "model", "version", "decision"]
    assert scored.number.tolist() == records.number.tolist()
    assert set(scored.model) == {"itsm-routing"} and set(scored.version) == {"4"}
    assert scored.decision.tolist() == expected.decision.tolist()
    assert scored.value.tolist() == expected.value.fillna("").tolist()
    assert scored.suggestion_2.tolist() == expected.suggestion_2.fillna("").tolist()
    assert scored.notes.tolist() == expected.notes.tolist()
    assert np.allclose(scored.probability.astype(float), expected.probability, atol=1e-6)
    assert summary.counts == expected.decision.value_counts().sort_index().to_dict()
    assert "no caller" in scored.notes[7] and "no text" in scored.notes[7]


def test_an_export_gets_the_suggested_resolution_runbook_and_similar_tickets(
    export: Path, tmp_path: Path
) -> None:
    from itsm_ml.knowledge.model import SimilarityModel

    history = load_table("tickets", _generator(1500, 3, date(2025, 1, 1), date(2025, 4, 1)))
    split = time_split(history, "opened_at", 0.25, 0.05)
    model = SimilarityModel(
        label="label_closed_code",
        fields=["ci", "service"],
        methods=["bm25"],
        runbooks={"service": {"VPN": "RB-VPN"}},
    ).fit(split.train, split.valid)
    _score(model, export, tmp_path / "out.csv", model_name="itsm-ticket-similarity")
    scored = _read(tmp_path / "out.csv")
    records = pd.read_csv(export, dtype=str, keep_default_na=False, na_values=[""])
    expected = model.respond(incidents_to_canonical(records))

    assert list(scored.columns[:4]) == ["number", "model", "version", "decision"]
    assert set(scored.decision) <= {"auto_suggest", "suggest"}
    assert scored.suggestion_1.tolist() == expected.label.tolist()
    assert scored.runbook.tolist() == expected.runbook.tolist()
    assert (scored.runbook[records.business_service == "VPN"] == "RB-VPN").all()
    first = [row[0]["id"] for row in expected.neighbours]
    assert [s.split("; ")[0] for s in scored.similar] == first
    assert all(len(s.split("; ")) == 5 for s in scored.similar)


def test_the_chunk_size_does_not_change_a_byte(
    triage_model: TriageModel, export: Path, tmp_path: Path
) -> None:
    _score(triage_model, export, tmp_path / "small.csv", chunk_rows=37)
    _score(triage_model, export, tmp_path / "one.csv", chunk_rows=10_000)
    assert (tmp_path / "small.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


def test_a_gzipped_export_gives_the_same_output(
    triage_model: TriageModel, export: Path, tmp_path: Path
) -> None:
    packed = tmp_path / "incidents.csv.gz"
    packed.write_bytes(gzip.compress(export.read_bytes()))
    _score(triage_model, packed, tmp_path / "from-gz.csv", chunk_rows=100)
    _score(triage_model, export, tmp_path / "from-csv.csv", chunk_rows=100)
    assert (tmp_path / "from-gz.csv").read_bytes() == (tmp_path / "from-csv.csv").read_bytes()


def test_an_export_without_numbers_is_scored_with_an_empty_number(
    triage_model: TriageModel, tmp_path: Path
) -> None:
    source = _write(_incident_export(20).drop(columns="number"), tmp_path / "no-number.csv")
    _score(triage_model, source, tmp_path / "out.csv")
    scored = _read(tmp_path / "out.csv")
    assert len(scored) == 20 and (scored.number == "").all()


def test_formula_like_cells_from_the_export_are_escaped_in_the_output(
    triage_model: TriageModel, tmp_path: Path
) -> None:
    # The number is copied from the export as it is: a spreadsheet would run it.
    incidents = _incident_export(20)
    incidents.loc[0, "number"] = '=HYPERLINK("http://evil.example","INC1")'
    incidents.loc[1, "number"] = "@SUM(A1:A9)"
    source = _write(incidents, tmp_path / "formulas.csv")
    _score(triage_model, source, tmp_path / "out.csv")
    scored = _read(tmp_path / "out.csv")
    assert scored.number[0] == "'" + incidents.number[0]
    assert scored.number[1] == "'@SUM(A1:A9)"
    assert scored.number[2:].tolist() == incidents.number[2:].tolist()


class _BreaksOnSecondChunk:
    def __init__(self, model: Any) -> None:
        self.model, self.calls = model, 0
        self.categorical_, self.uses_text_ = model.categorical_, model.uses_text_

    def respond(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("model failed on the second chunk")
        return self.model.respond(frame)


def test_a_failure_mid_file_leaves_no_output_and_no_temporary_file(
    triage_model: TriageModel, export: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "suggestions.csv"
    with pytest.raises(RuntimeError, match="second chunk"):
        _score(_BreaksOnSecondChunk(triage_model), export, target, chunk_rows=50)
    assert list(target.parent.iterdir()) == []

    target.write_text("the previous run's output\n")
    with pytest.raises(RuntimeError, match="second chunk"):
        _score(_BreaksOnSecondChunk(triage_model), export, target, chunk_rows=50)
    assert list(target.parent.iterdir()) == [target]
    assert target.read_text() == "the previous run's output\n"


def test_an_export_with_none_of_the_fields_is_refused_naming_file_and_fields(
    triage_model: TriageModel, tmp_path: Path
) -> None:
    source = tmp_path / "wrong.csv"
    source.write_text("id;summary;team\n1;printer jam;desk\n")
    with pytest.raises(SourceError) as raised:
        _score(triage_model, source, tmp_path / "out.csv")
    message = str(raised.value)
    assert str(source) in message
    assert "short_description" in message and "caller_id" in message
    assert "'id;summary;team'" in message
    assert not (tmp_path / "out.csv").exists()

    labels = tmp_path / "labels.csv"
    labels.write_text("Number,Short description,Location\nINC1,printer jam,Paris\n")
    with pytest.raises(SourceError, match=r"display labels .*'Short description' -> "):
        _score(triage_model, labels, tmp_path / "out.csv")


def test_empty_exports_are_refused(triage_model: TriageModel, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match=r"empty\.csv: file is empty"):
        _score(triage_model, empty, tmp_path / "out.csv")
    header_only = tmp_path / "header.csv"
    header_only.write_text("number,short_description,caller_id\n")
    with pytest.raises(SourceError, match=r"header\.csv: has a header but no records"):
        _score(triage_model, header_only, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_undecodable_bytes_deep_in_the_file_are_reported_with_their_line(
    triage_model: TriageModel, tmp_path: Path
) -> None:
    source = tmp_path / "latin.csv"
    good = "".join(f"INC{i:07d},printer jam on floor {i % 7}\n" for i in range(12_000))
    tail = "INC9999999,caf\xe9 machine broken\n".encode("latin-1")
    source.write_bytes(b"number,short_description\n" + good.encode() + tail)
    with pytest.raises(
        SourceError, match=r"latin\.csv: bytes that are not valid utf-8 on line 12002"
    ):
        _score(triage_model, source, tmp_path / "out.csv", chunk_rows=5000)
    assert list(tmp_path.iterdir()) == [source]


def test_bad_options_are_refused(triage_model: TriageModel, export: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown kind 'problems'"):
        _score(triage_model, export, tmp_path / "out.csv", kind="problems")
    with pytest.raises(ConfigError, match="overwrite the input"):
        _score(triage_model, export, export)


# ----------------------------------------------------------------------------- change risk


@pytest.fixture(scope="module")
def change_scorer() -> Any:
    changes = load_table("changes", _generator(2500, 4, date(2025, 1, 1), date(2025, 9, 1)))
    train, valid = ordered_cut(changes, "opened_at", 0.8)
    params = ChangeRiskParams(
        n_jobs=1, model=ChangeRiskModelParams(n_estimators=60, refit_factor=0)
    )
    entry = catalog(_default_params()).get("change-risk")
    numeric, categorical = split_features(train, entry.feature_columns(train))
    assert numeric == ["size"]  # read as a number from the export below
    return build_scorer(params, numeric, categorical).fit(train, valid)


def _change_export(rows: int) -> pd.DataFrame:
    """Change requests as ServiceNow names them (start_date / end_date), without outcomes."""
    changes = generate_changes(_generator(rows, 11, date(2025, 9, 1), date(2025, 10, 1)))
    changes = changes.rename(columns={"planned_start": "start_date", "planned_end": "end_date"})
    return changes.drop(columns=["close_code", "closed_at", "state"])


def test_changes_are_scored_as_one_calendar_whatever_the_chunk_size(
    change_scorer: Any, tmp_path: Path
) -> None:
    source = _write(_change_export(400), tmp_path / "changes.csv")
    # No `numeric` option, as `itsm-ml score` passes none: the model's featurizer names the
    # measures it reads as numbers.
    options = {"kind": "changes", "model_name": "itsm-change-risk"}
    summary = _score(change_scorer, source, tmp_path / "a.csv", chunk_rows=7, **options)
    _score(change_scorer, source, tmp_path / "b.csv", chunk_rows=10_000, **options)
    scored = _read(tmp_path / "a.csv")
    records = pd.read_csv(source, dtype=str, keep_default_na=False, na_values=[""])
    expected = answers.table(
        change_scorer.respond(change_requests_to_canonical(records, numeric=("size",))), 3
    )

    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert summary.chunks == 1 and summary.rows == 400
    assert list(scored.columns) == [
        "number", "model", "version", "probability", "band", "reasons", "conflicts"
    ]  # fmt: skip
    assert scored.number.tolist() == records.number.tolist()
    assert scored.band.tolist() == expected.band.tolist()
    assert scored.conflicts.tolist() == expected.conflicts.tolist()
    assert (scored.conflicts.str.contains("overlaps CHG")).sum() > 20
    assert summary.counts == expected.band.value_counts().sort_index().to_dict()


# ----------------------------------------------------------------------------- dask


@pytest.mark.slow
def test_the_dask_engine_writes_the_same_bytes(
    triage_model: TriageModel, change_scorer: Any, export: Path, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    _score(triage_model, export, tmp_path / "local.csv", chunk_rows=100)
    summary = score_file_dask(
        triage_model,
        kind="tickets",
        input_path=export,
        output_path=tmp_path / "dask.csv",
        model_name="itsm-routing",
        version="4",
        chunk_rows=100,
        progress=False,
    )
    assert summary.chunks == 3 and summary.engine == "dask"
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()

    changes = _write(_change_export(150), tmp_path / "changes.csv")
    options: dict[str, Any] = {"kind": "changes", "model_name": "itsm-change-risk", "version": "2"}
    _score(change_scorer, changes, tmp_path / "local-changes.csv", **options)
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        score_file_dask(
            change_scorer,
            input_path=changes,
            output_path=tmp_path / "dask-changes.csv",
            scheduler=cluster.scheduler_address,
            progress=False,
            **options,
        )
    local = (tmp_path / "local-changes.csv").read_bytes()
    assert (tmp_path / "dask-changes.csv").read_bytes() == local


def test_an_unreachable_scheduler_is_a_clear_error(
    triage_model: TriageModel, export: Path, tmp_path: Path
) -> None:
    import dask

    unreachable = r"cannot reach the Dask scheduler at 'tcp://127\.0\.0\.1:9'"
    timeouts = {"distributed.comm.timeouts.connect": "1s"}
    with dask.config.set(timeouts), pytest.raises(ConfigError, match=unreachable):
        score_file_dask(
            triage_model,
            kind="tickets",
            input_path=export,
            output_path=tmp_path / "out.csv",
            model_name="itsm-routing",
            version="1",
            scheduler="tcp://127.0.0.1:9",
            progress=False,
        )
    assert not (tmp_path / "out.csv").exists()


# ----------------------------------------------------------------------------- resolving


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    return tmp_path


def test_the_champion_is_resolved_from_the_registry(
    triage_model: TriageModel, tracking: Path
) -> None:
    import mlflow

    params = _default_params()
    with pytest.raises(ConfigError) as unknown:
        resolve_model(params, tracking, "itsm-routeing")
    assert str(unknown.value) == (
        "unknown model 'itsm-routeing': params.yaml `models` declares routing, category,"
        " priority, change-risk (use a name from there, or its registered name);"
        " `itsm-ml score --model` takes one of them"
    )

    example = incidents_to_canonical(_incident_export(3))[["text", "caller", "ci"]]
    register(triage_model, tracking, "itsm-routing", example)
    with pytest.raises(ItsmMlError, match=r"no `champion`.*itsm-ml promote routing"):
        resolve_model(params, tracking, "itsm-routing")
    with pytest.raises(ItsmMlError, match="cannot load itsm-routing version 7"):
        resolve_model(params, tracking, "routing", version="7")

    mlflow.MlflowClient().set_registered_model_alias("itsm-routing", "champion", "1")
    for name in ("itsm-routing", "routing"):
        found = resolve_model(params, tracking, name)
        assert (found.kind, found.version, found.name) == ("tickets", "1", "itsm-routing")
        answer = found.model.respond(example)
        assert answer.label.tolist() == triage_model.respond(example).label.tolist()


def test_the_score_command_writes_what_score_file_writes(
    triage_model: TriageModel, tracking: Path, export: Path
) -> None:
    import mlflow
    from typer.testing import CliRunner

    from itsm_ml.cli import app

    example = incidents_to_canonical(_incident_export(3))[["text", "caller", "ci"]]
    register(triage_model, tracking, "itsm-routing", example)
    mlflow.MlflowClient().set_registered_model_alias("itsm-routing", "champion", "1")
    (tracking / "params.yaml").write_text(
        "tickets: {source: {kind: generator}}\nchanges: {source: {kind: generator}}\n"
    )
    out = tracking / "suggestions.csv"
    args = ["score", "--model", "routing", "--input", str(export), "--output", str(out)]
    result = CliRunner().invoke(app, [*args, "--params", str(tracking / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert "scored by itsm-routing v1" in result.output
    expected = _score(triage_model, export, tracking / "expected.csv", version="1")
    assert out.read_bytes() == Path(expected.output).read_bytes()
    usage = CliRunner().invoke(
        app, [*args, "--scheduler", "tcp://x:1", "--params", str(tracking / "params.yaml")]
    )
    assert usage.exit_code == 2


def test_a_detector_is_not_scored_record_by_record(tmp_path: Path) -> None:
    params = parse_params(
        {
            "tickets": {"source": {"kind": "generator"}},
            "changes": {"source": {"kind": "generator"}},
            "models": {"surges": {"table": "tickets", "kind": "detector", "label": "parent"}},
        }
    )
    with pytest.raises(ConfigError, match=r"surges is a detector: .*POST /v1/anomaly"):
        resolve_model(params, tmp_path, "surges")


def test_a_recurrence_model_is_not_scored_in_chunks(tmp_path: Path) -> None:
    params = parse_params(
        {
            "tickets": {"source": {"kind": "generator"}},
            "changes": {"source": {"kind": "generator"}},
            "models": {"issues": {"table": "tickets", "kind": "recurrence", "label": "problem"}},
        }
    )
    with pytest.raises(ConfigError, match=r"issues groups records .* use `itsm-ml problems`"):
        resolve_model(params, tmp_path, "issues")
