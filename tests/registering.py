"""Registering a fitted model in the test's MLflow store, as the training stages do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from itsm_ml.tracking import registry

SRC = Path(__file__).parents[1] / "src" / "itsm_ml"


def register(
    model: Any, root: Path, name: str, example: pd.DataFrame, *, times: int = 1
) -> list[str]:
    """Log `model` as `times` new versions of `name` (no params, metrics or inputs);
    returns the version numbers. MLFLOW_TRACKING_URI must already point under `root`."""
    joblib.dump(model, root / "m.joblib")
    registry.configure(root)
    return [
        registry.log_and_register(
            model=model,
            model_path=root / "m.joblib",
            registered_model=name,
            params={},
            metrics={},
            tags={},
            artifacts=[],
            inputs={},
            input_example=example,
            code_path=SRC,
        ).version
        for _ in range(times)
    ]
