"""DVC stage `profile`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.stages import profile, stage_main

if __name__ == "__main__":
    sys.exit(stage_main("profile", profile, sys.argv[1:]))
