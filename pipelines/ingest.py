"""DVC stage `ingest`: see dvc.yaml for its inputs and outputs."""

import sys

from itsm_ml.stages import ingest, stage_main

if __name__ == "__main__":
    sys.exit(stage_main("ingest", ingest, sys.argv[1:]))
