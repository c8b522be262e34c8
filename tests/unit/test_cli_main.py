"""The console script's last line of defence: one actionable sentence, never a traceback or
click's bare `Aborted!`."""

from __future__ import annotations

import sys

import pytest

from itsm_ml import cli, run_summary
from itsm_ml.errors import ItsmMlError


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["itsm-ml", *args])
    with pytest.raises(SystemExit) as leaving:
        cli.main()
    return int(leaving.value.code or 0)


@pytest.mark.parametrize("error", [EOFError("stream ended"), KeyError("weights"), ValueError("")])
def test_an_unexpected_error_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    monkeypatch.delenv("ITSM_ML_DEBUG", raising=False)

    def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(run_summary, "summarise", failing)
    code = _run(monkeypatch, "summary")
    err = capsys.readouterr().err
    assert code == cli.EXIT_INVALID
    assert f"unexpected {type(error).__name__}" in err and "ITSM_ML_DEBUG=1" in err
    assert "Traceback" not in err and "Aborted" not in err


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITSM_ML_DEBUG", "1")

    def failing(*args: object, **kwargs: object) -> None:
        raise KeyError("weights")

    monkeypatch.setattr(run_summary, "summarise", failing)
    monkeypatch.setattr(sys, "argv", ["itsm-ml", "summary"])
    with pytest.raises(KeyError):
        cli.main()


def test_our_own_errors_and_usage_errors_keep_their_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refusing(*args: object, **kwargs: object) -> None:
        raise ItsmMlError("the store is read-only: point MLFLOW_TRACKING_URI elsewhere")

    monkeypatch.setattr(run_summary, "summarise", refusing)
    assert _run(monkeypatch, "summary") == cli.EXIT_INVALID
    assert "error: the store is read-only" in capsys.readouterr().err
    assert _run(monkeypatch, "no-such-command") == cli.EXIT_USAGE
    assert "No such command" in capsys.readouterr().err
    assert _run(monkeypatch, "--help") == cli.EXIT_VALID
