"""The corpus of broken exports, each through `itsm-ml check` and the pipeline's own stage
scripts: the expected exit code and cause, and the last good state left byte-identical.

A project holds a last good state (the valid export ingested, validated and split, and a
model file); each case then points the tickets source at its file and runs the stages as
DVC runs them (`stage_main`, exit codes included). A rejected export must exit 5 at ingest
or validation (`itsm-ml retrain` reads that as "new data rejected") and leave
`data/interim`, `data/processed` and `models/` as they were. DVC itself on a few of these
cases, with the registry and the ledger: tests/integration/test_pipeline.py.
"""

from __future__ import annotations

import bz2
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from itsm_ml.cli import app
from itsm_ml.data.stage import ingest, split, validate
from itsm_ml.runner import EXIT_DATA_REJECTED, stage_main
from tests.conftest import BROKEN
from tests.state import last_good_state

VALID = (BROKEN / "valid.csv").read_bytes()
SERVICENOW = {"kind": "servicenow_audit_log"}


@dataclass(frozen=True)
class Case:
    """One broken export: what `check` must answer, and whether the pipeline refuses it."""

    name: str
    make: Callable[[Path], Path]  # writes the export under the folder given, returns it
    check_code: int
    cause: str  # a phrase of the one-line cause `check` prints
    rejected: bool  # ingest or validation refuses it: exit 5, nothing replaced
    source: dict[str, str] | None = None  # default: ticket_csv mapped by mapping.yaml
    params: Path = BROKEN / "params.yaml"
    # Label rules sized for a 20-row file (ten periods of two rows, values seen twice).
    labels: dict[str, int] | None = None

    def params_file(self, folder: Path, path: Path | None = None) -> Path:
        """Its params, with the label rules it needs and, given `path`, its source."""
        params = yaml.safe_load(self.params.read_text())
        if self.labels:
            params["tickets"]["validation"]["labels"] = self.labels
        if path is not None:
            params["tickets"]["source"] = _source(self, path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        return folder / "params.yaml"


def corpus_file(name: str) -> Callable[[Path], Path]:
    return lambda folder: BROKEN / name


def written(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name

    return make


def _semicolons() -> bytes:
    return VALID.replace(b",", b";")


def _long_caller() -> bytes:
    lines = VALID.decode().splitlines(keepends=True)
    cells = lines[3].split(",")
    cells[3] = "x" * 2_000_000
    lines[3] = ",".join(cells)
    return "".join(lines).encode()


GZIPPED = gzip.compress(VALID * 40)
CORRUPT = bytearray(GZIPPED)
CORRUPT[-8] ^= 0xFF  # the content's CRC

CASES = [
    Case("empty.csv", corpus_file("empty.csv"), 1, "file is empty (0 bytes)", True),
    Case("missing_column.csv", corpus_file("missing_column.csv"), 1, "missing required column 'group'", True),
    Case("renamed_column.csv", corpus_file("renamed_column.csv"), 1, "(did you mean 'Assignment Group'?)", True),
    Case("not_utf8.csv", corpus_file("not_utf8.csv"), 1, "not valid utf-8 on line 8", True),
    Case("truncated.csv", corpus_file("truncated.csv"), 1, "looks truncated", True),
    Case("not_csv.png", corpus_file("not_csv.png"), 1, "not a CSV file, it is a PNG image", True),
    Case("not_csv.json", corpus_file("not_csv.json"), 1, "not a CSV file, it looks like JSON", True),
    Case("cut_short.csv.gz", written("cut_short.csv.gz", GZIPPED[: len(GZIPPED) // 2]), 1, "the gzip stream is cut short", True),
    Case("corrupt.csv.gz", written("corrupt.csv.gz", bytes(CORRUPT)), 1, "the gzip stream is corrupt", True),
    Case("semicolons.csv", written("semicolons.csv", _semicolons()), 1, "the file is ';'-separated", True),
    Case("zstd.csv.zst", written("zstd.csv.zst", b"\x28\xb5\x2f\xfd" + bytes(40)), 1, "zstd-compressed", True),
    Case("header_only.csv", corpus_file("header_only.csv"), 1, "row count between 1 and", True),
    Case("all_empty_text.csv", corpus_file("all_empty_text.csv"), 1, "text not all empty", True),
    Case("mixed_date_formats.csv", corpus_file("mixed_date_formats.csv"), 1, "above the limit of 10.00%", True),
    Case("labels_all_missing.csv", corpus_file("labels_all_missing.csv"), 1, "label_assignment_group", True),
    Case("labels_only_late.csv", corpus_file("labels_only_late.csv"), 1, "label_assignment_group", True),
    Case("labels_missing_early.csv", corpus_file("labels_missing_early.csv"), 1, "each tenth of the time range", True, labels={"min_period_rows": 2}),
    Case(
        "servicenow_reused_number.csv",
        corpus_file("servicenow_reused_number.csv"),
        1,
        "one opened_at per id",
        True,
        SERVICENOW,
        BROKEN / "servicenow_params.yaml",
    ),
    # Accepted: bad rows quarantined within the limit, formulas escaped, warnings shown.
    Case("valid.csv", corpus_file("valid.csv"), 0, "VALID", False),
    Case("plain_named.csv.gz", written("plain_named.csv.gz", VALID), 0, "VALID", False),
    Case("bzip2_named.csv", written("bzip2_named.csv", bz2.compress(VALID)), 0, "VALID", False),
    Case("unparseable_dates.csv", corpus_file("unparseable_dates.csv"), 0, "value parses as a timestamp", False),
    Case("closed_before_opened.csv", corpus_file("closed_before_opened.csv"), 0, "not closed before opened", False),
    Case("future_dates.csv", corpus_file("future_dates.csv"), 0, "not in the future", False),
    Case("duplicate_ids.csv", corpus_file("duplicate_ids.csv"), 0, "id unique", False),
    Case("null_ids.csv", corpus_file("null_ids.csv"), 0, "id not null", False),
    Case("unknown_labels.csv", corpus_file("unknown_labels.csv"), 0, "value in the configured vocabulary", False),
    Case("formulas.csv", corpus_file("formulas.csv"), 0, "not formula-like", False),
    Case("formula_in_feature.csv", corpus_file("formula_in_feature.csv"), 0, "not formula-like", False),
    Case("labels_new_group.csv", corpus_file("labels_new_group.csv"), 0, "warning (does not fail the table)", False, labels={"min_count": 2}),
    Case("long_caller.csv", written("long_caller.csv", _long_caller()), 0, "characters", False),
    Case(
        "servicenow_negative_counts.csv",
        corpus_file("servicenow_negative_counts.csv"),
        0,
        "not negative",
        False,
        SERVICENOW,
        BROKEN / "servicenow_params.yaml",
    ),
]  # fmt: skip


def _source(case: Case, path: Path) -> dict[str, object]:
    if case.source is not None:
        return {**case.source, "path": str(path)}
    mapping = yaml.safe_load((BROKEN / "mapping.yaml").read_text())
    return {"kind": "ticket_csv", "path": str(path), **mapping}


def _check(case: Case, path: Path, reports: Path) -> tuple[int, str]:
    kind = str(_source(case, path)["kind"])
    mapping = ["--mapping", str(BROKEN / "mapping.yaml")] if kind == "ticket_csv" else []
    params = case.params_file(reports)
    result = CliRunner().invoke(
        app,
        ["check", str(path), "--source", kind, *mapping, "--params", str(params), "--report-dir", str(reports)],
    )  # fmt: skip
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_check_answers_with_the_expected_code_and_cause(case: Case, tmp_path: Path) -> None:
    code, output = _check(case, case.make(tmp_path), tmp_path / "reports")
    assert code == case.check_code, output
    assert case.cause in output, output
    assert "Traceback" not in output and "Aborted" not in output


# ------------------------------------------------------------------ the pipeline's stages


def _stages(root: Path, params: Path) -> int:
    """ingest, validate and split of tickets as DVC runs them; the first non-zero exit."""
    for name, action in (("ingest", ingest), ("validate", validate), ("split", split)):
        code = stage_main(name, action, ["--table", "tickets", "--params", str(params)])  # type: ignore[arg-type]
        if code:
            return code
    return 0


@pytest.fixture(scope="module")
def good_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project after a good run on the valid export (and a model trained on it)."""
    root = tmp_path_factory.mktemp("project")
    valid = next(c for c in CASES if c.name == "valid.csv")
    assert _stages(root, valid.params_file(root, BROKEN / "valid.csv")) == 0
    (root / "models").mkdir()
    (root / "models/routing.joblib").write_bytes(b"the last good model")
    return root


@pytest.mark.parametrize("case", [c for c in CASES if c.rejected], ids=lambda c: c.name)
def test_a_rejected_export_exits_5_and_leaves_thelast_good_state(
    case: Case, good_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = last_good_state(good_project)
    params = case.params_file(good_project, case.make(tmp_path))

    code = _stages(good_project, params)

    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_DATA_REJECTED, err
    assert "REJECTED:" in err and "Traceback" not in err
    assert last_good_state(good_project) == before
