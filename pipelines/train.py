"""DVC stage `train` of one model of the catalog: see dvc.yaml for its inputs and outputs."""

import sys

import _venv  # noqa: F401  (re-runs the script in the project's environment when needed)

from itsm_ml.runner import stage_main
from itsm_ml.training import train

if __name__ == "__main__":
    sys.exit(stage_main("train", train, sys.argv[1:], item="model", choices=None))
