"""Stage scripts started by a `python` that lacks the project, as `.venv/bin/dvc repro` does
when the environment is not on PATH: pipelines/_venv.py re-runs the script with
<project root>/.venv/bin/python, or prints the fix and exits 1.

How the tests control both interpreters, whatever the machine has at the project root:

- pipelines/ is copied into a fake project root, so the `.venv` the bootstrap looks for is
  the fake root's, which each test makes (or leaves out).
- The interpreter lacking itsm_ml is the base interpreter the test environment was made from
  (`sys._base_executable`, else /usr/bin/python3), checked to fail `import itsm_ml`: it is the
  `python` a shell finds when the venv is not activated. `-I -S` on the venv's own interpreter
  would not do: -I also drops the script's folder from sys.path (so `import _venv` fails),
  and its sys.prefix is the venv's, which the bootstrap rightly refuses to re-run.
- The fake root's `.venv` is a symlink to the environment running the tests (`sys.prefix`).
  A symlink to sys.executable alone would not be a venv: Python finds pyvenv.cfg beside the
  path it was started by, so `.venv/bin/python` must sit in a folder holding pyvenv.cfg.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HINT = "run 'make run' or 'uv run dvc repro', or activate .venv"


def clean_env() -> dict[str, str]:
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "ITSM_ML_VENV_RERUN"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def lacks_itsm_ml(python: str) -> bool:
    probe = [python, "-c", "import itsm_ml"]
    return subprocess.run(probe, env=clean_env(), capture_output=True).returncode != 0


@pytest.fixture(scope="module")
def bare_python() -> str:
    """An interpreter that cannot import itsm_ml."""
    for candidate in (getattr(sys, "_base_executable", ""), "/usr/bin/python3"):
        if candidate and Path(candidate).exists() and lacks_itsm_ml(candidate):
            return candidate
    pytest.skip("no interpreter without itsm_ml on this machine")


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "pipelines", tmp_path / "pipelines", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def run_script(python: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "pipelines/split.py", "--help"],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_reruns_the_script_with_the_projects_venv(bare_python: str, fake_root: Path) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment")
    (fake_root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    result = run_script(bare_python, fake_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pipelines/split.py")


def test_names_the_fix_without_a_venv(bare_python: str, fake_root: Path) -> None:
    result = run_script(bare_python, fake_root)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"pipelines/split.py: cannot import itsm_ml with {bare_python}; {HINT}\n"
    )


def test_runs_the_venv_once_only(bare_python: str, fake_root: Path) -> None:
    """A .venv whose python lacks itsm_ml too (not synced): one re-run, then the fix."""
    (fake_root / ".venv" / "bin").mkdir(parents=True)
    (fake_root / ".venv" / "bin" / "python").symlink_to(bare_python)
    result = run_script(bare_python, fake_root)
    assert result.returncode == 1
    assert result.stderr.endswith(f"; {HINT}\n") and result.stderr.count("\n") == 1


def test_changes_nothing_when_itsm_ml_imports(fake_root: Path) -> None:
    (fake_root / ".venv").mkdir()  # no interpreter there: a re-run would fail
    result = run_script(sys.executable, fake_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: pipelines/split.py")
