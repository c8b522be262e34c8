"""The registered form of a model (MLflow pyfunc) against the bare model, on the same batch in
one run: the overhead of the wrapper, and the latency of one record at a time."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).parents[1]


def pyfunc_against_bare(
    model: Any,
    batch: pd.DataFrame,
    *,
    single_calls: int,
    also: dict[str, Callable[[pd.DataFrame], object]] | None = None,
) -> dict[str, float]:
    """Medians of 3 interleaved runs of `model.respond` and of the pyfunc saved as the registry
    logs it (same signature, every input optional), plus any `also` callables on the batch;
    then p50/p99 of `single_calls` one-record calls through the pyfunc."""
    import joblib
    import mlflow

    from itsm_ml.tracking.pyfunc import MODEL_ARTIFACT, RespondingPyfunc
    from itsm_ml.tracking.registry import input_schema, pip_requirements

    extra = also or {}
    with tempfile.TemporaryDirectory() as tmp:
        joblib.dump(model, Path(tmp) / "m.joblib")
        signature = mlflow.models.infer_signature(batch.head(3), model.respond(batch.head(3)))
        signature.inputs = input_schema(batch)
        mlflow.pyfunc.save_model(
            str(Path(tmp) / "pyfunc"),
            python_model=RespondingPyfunc(),
            artifacts={MODEL_ARTIFACT: str(Path(tmp) / "m.joblib")},
            code_paths=[str(ROOT / "src" / "itsm_ml")],
            signature=signature,
            input_example=batch.head(3),
            pip_requirements=pip_requirements(),
        )
        loaded = mlflow.pyfunc.load_model(str(Path(tmp) / "pyfunc"))
        runs: dict[str, list[float]] = {"bare_s": [], "pyfunc_s": [], **{k: [] for k in extra}}
        calls: dict[str, Callable[[pd.DataFrame], object]] = {
            "bare_s": model.respond,
            "pyfunc_s": loaded.predict,
            **extra,
        }
        for _ in range(3):
            for name, call in calls.items():
                started = time.perf_counter()
                call(batch)
                runs[name].append(time.perf_counter() - started)
        single = []
        for i in range(single_calls):
            started = time.perf_counter()
            loaded.predict(batch.iloc[[i]])
            single.append(time.perf_counter() - started)
    return {
        "rows": len(batch),
        **{name: float(np.median(times)) for name, times in runs.items()},
        "p50_ms": float(np.percentile(single, 50) * 1000),
        "p99_ms": float(np.percentile(single, 99) * 1000),
    }
