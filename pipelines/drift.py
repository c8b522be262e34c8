"""DVC stage `drift`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.drift_stages import MODELS, drift
from itsm_ml.stages import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("drift", drift, sys.argv[1:], item="model", choices=MODELS))
