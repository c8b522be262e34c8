"""DVC stage `split`: see dvc.yaml for its inputs and outputs."""

import sys

import _venv  # noqa: F401  (re-runs the script in the project's environment when needed)

from itsm_ml.data.stage import split
from itsm_ml.runner import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("split", split, sys.argv[1:]))
