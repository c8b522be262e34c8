"""DVC stage `train_change_risk`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.change_risk_stages import train
from itsm_ml.stages import stage_main

if __name__ == "__main__":
    sys.exit(
        stage_main("train_change_risk", train, sys.argv[1:], item="model", choices=("change-risk",))
    )
