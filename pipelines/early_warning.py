"""DVC stage `early-warning`: see dvc.yaml for its inputs and outputs."""

import sys

import _venv  # noqa: F401  (re-runs the script in the project's environment when needed)

from itsm_ml.early_warning.stage import early_warning
from itsm_ml.runner import stage_main

if __name__ == "__main__":
    sys.exit(
        stage_main("early-warning", early_warning, sys.argv[1:], item="over", choices=("history",))
    )
