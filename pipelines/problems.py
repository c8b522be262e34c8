"""DVC stage `problems`: see dvc.yaml for its inputs and outputs."""

import sys

import _venv  # noqa: F401  (re-runs the script in the project's environment when needed)

from itsm_ml.problems.stage import problems
from itsm_ml.runner import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("problems", problems, sys.argv[1:], item="over", choices=("history",)))
