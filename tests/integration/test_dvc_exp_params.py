"""`dvc exp run -S key=value` for real, in a throw-away copy of the project.

DVC rewrites params.yaml with its own YAML dumper before it runs a stage: "18:00" loses its
quotes and PyYAML then reads 1080 (tests/unit/test_config.py replays that rewrite key by key).
Here the whole thing runs once: the copy is a git repository with one commit (`dvc exp` needs
one), DVC sets a key and runs the first stage, which loads the rewritten params.yaml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from itsm_ml.config import load_params, parse_params

ROOT = Path(__file__).parents[2]


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "false"}
    for who in ("AUTHOR", "COMMITTER"):  # git and DVC's experiment commits need someone
        env.setdefault(f"GIT_{who}_NAME", "test")
        env.setdefault(f"GIT_{who}_EMAIL", "test@example.com")
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_dvc_exp_run_set_param_keeps_the_settings(tmp_path: Path) -> None:
    # The project as it stands, files not yet committed included (ignored ones left out).
    files = run(ROOT, "git", "ls-files", "--cached", "--others", "--exclude-standard").stdout
    for name in files.splitlines():
        if name.startswith(("reports/", "notebooks/", "dvc.lock")) or not (ROOT / name).exists():
            continue
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, "git", "add", "-A")
    committed = run(tmp_path, "git", "-c", "commit.gpgsign=false", "commit", "-qm", "copy")
    assert committed.returncode == 0, committed.stderr

    exp = run(tmp_path, "dvc", "exp", "run", "-S", "tickets.source.rows=300", "ingest@tickets")

    assert exp.returncode == 0, exp.stdout[-2000:] + exp.stderr[-2000:]
    rewritten = (tmp_path / "params.yaml").read_text()
    assert rewritten != (ROOT / "params.yaml").read_text()  # DVC did rewrite the file
    expected = yaml.safe_load((ROOT / "params.yaml").read_text())
    expected["tickets"]["source"]["rows"] = 300
    assert load_params(tmp_path / "params.yaml") == parse_params(expected)
