"""DVC stage `drift` of one model of the catalog: see dvc.yaml for its inputs and outputs."""

import sys

import _venv  # noqa: F401  (re-runs the script in the project's environment when needed)

from itsm_ml.monitoring.stage import drift
from itsm_ml.runner import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("drift", drift, sys.argv[1:], item="model", choices=None))
