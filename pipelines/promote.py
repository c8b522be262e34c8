"""DVC stage `promote`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.drift_stages import MODELS
from itsm_ml.promotion_stages import stage
from itsm_ml.stages import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("promote", stage, sys.argv[1:], item="model", choices=MODELS))
