"""The MLflow face of a triage model: raw canonical tickets in, the ITSM's answer out."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

MODEL_ARTIFACT = "triage_model"


class TriagePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Loads the fitted TriageModel and answers with `TriageModel.respond`."""

    def load_context(self, context: Any) -> None:
        import joblib

        self.model = joblib.load(context.artifacts[MODEL_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.respond(frame.reset_index(drop=True))
