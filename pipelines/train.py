"""DVC stage `train` of a triage target: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.stages import stage_main
from itsm_ml.triage_stages import train

if __name__ == "__main__":
    sys.exit(stage_main("train", train, sys.argv[1:], item="target", choices=None))
