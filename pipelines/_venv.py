"""Run a stage script with the project's environment, or say how to get it.

DVC stages run `python pipelines/<stage>.py`. Started as `.venv/bin/dvc repro`, with the
environment not on PATH, `python` is the system interpreter, which has none of the project's
packages. Every stage script imports this module first (pipelines/ is sys.path[0] when one
runs): when `itsm_ml` cannot be imported, it runs the same script again with
<project root>/.venv/bin/python, once; without that interpreter it prints one line naming the
fix and exits 1. When `itsm_ml` imports, it does nothing.

Standard library only, and old syntax: it runs on whatever `python` happens to be.
"""

import importlib.util
import os
import sys
from pathlib import Path

HINT = "run 'make run' or 'uv run dvc repro', or activate .venv"
# Set on the re-run: if .venv/bin/python cannot import itsm_ml either, stop there.
_RERUN = "ITSM_ML_VENV_RERUN"


def _ensure_environment() -> None:
    if importlib.util.find_spec("itsm_ml") is not None:
        os.environ.pop(_RERUN, None)  # the stage's own subprocesses start afresh
        return
    venv = Path(__file__).resolve().parent.parent / ".venv"
    python = venv / "bin" / "python"
    running_it = Path(sys.prefix).resolve() == venv.resolve()
    if python.exists() and not running_it and not os.environ.get(_RERUN):
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(python, [str(python), *sys.argv], {**os.environ, _RERUN: "1"})
    print(f"{sys.argv[0]}: cannot import itsm_ml with {sys.executable}; {HINT}", file=sys.stderr)
    sys.exit(1)


_ensure_environment()
