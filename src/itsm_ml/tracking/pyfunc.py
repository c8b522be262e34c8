"""The MLflow face of a model: raw canonical records in, the ITSM's answer out.

One wrapper for every model of the project: each has `respond(frame) -> frame` (triage:
label, probability, auto-route, suggestions; change risk: probability, band, reasons,
conflicts), so the served answer is exactly the one the evaluation measured.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

MODEL_ARTIFACT = "model"


class RespondingPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Loads the fitted model (joblib) and answers with its `respond` method."""

    def load_context(self, context: Any) -> None:
        import joblib

        self.model = joblib.load(context.artifacts[MODEL_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.respond(frame.reset_index(drop=True))
