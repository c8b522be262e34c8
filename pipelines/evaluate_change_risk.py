"""DVC stage `evaluate_change_risk`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.change_risk_stages import evaluate
from itsm_ml.stages import stage_main

if __name__ == "__main__":
    sys.exit(
        stage_main(
            "evaluate_change_risk", evaluate, sys.argv[1:], item="model", choices=("change-risk",)
        )
    )
