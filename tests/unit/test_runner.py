"""Stage scripts: one line of outcome, and an exit code that tells rejected data apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from itsm_ml.errors import ConfigError, ItsmMlError, SourceError, ValidationFailed
from itsm_ml.runner import EXIT_DATA_REJECTED, REJECTED, stage_main

PARAMS = Path(__file__).parents[2] / "params.yaml"


def _stage(error: Exception | None) -> object:
    def action(params: object, table: str, root: Path) -> str:
        if error is not None:
            raise error
        return "done"

    return action


@pytest.mark.parametrize(
    ("error", "code", "word"),
    [
        (SourceError("export.csv.gz: the gzip stream is cut short"), EXIT_DATA_REJECTED, REJECTED),
        (
            ValidationFailed("table tickets: rule 'label complete' failed"),
            EXIT_DATA_REJECTED,
            REJECTED,
        ),
        (ConfigError("models.routing.kind: 'binary'"), 1, "FAILED"),
        (ItsmMlError("no labelled record in the test split"), 1, "FAILED"),
    ],
)
def test_rejected_data_and_other_failures_exit_apart(
    capsys: pytest.CaptureFixture[str], error: Exception, code: int, word: str
) -> None:
    found = stage_main("validate", _stage(error), ["--table", "tickets", "--params", str(PARAMS)])  # type: ignore[arg-type]
    assert found == code
    err = capsys.readouterr().err
    assert err.startswith(f"[validate tickets] {word}: {error}")
    assert err.count("\n") == 1, "one line"


def test_a_stage_that_succeeds_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert stage_main("split", _stage(None), ["--table", "tickets", "--params", str(PARAMS)]) == 0  # type: ignore[arg-type]
    assert capsys.readouterr().out.startswith("[split tickets] done (")
