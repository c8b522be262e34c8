"""DVC stage `validate`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.stages import stage_main, validate

if __name__ == "__main__":
    sys.exit(stage_main("validate", validate, sys.argv[1:]))
