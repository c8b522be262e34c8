"""DVC stage `split`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.stages import split, stage_main

if __name__ == "__main__":
    sys.exit(stage_main("split", split, sys.argv[1:]))
