"""Shared fixtures: the real public datasets and small generated tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
BROKEN = DATA / "broken"


@pytest.fixture(scope="session")
def datasets() -> Path:
    """Folder of the public datasets; tests using it are marked real_data.

    Outside CI they skip when ITSM_ML_DATASETS is unset (a contributor may not have the
    files); in CI, where .ci/run sets it, a missing folder is a failure, never a skip.
    """
    raw = os.environ.get("ITSM_ML_DATASETS")
    if not raw:
        if os.environ.get("CI"):
            pytest.fail("ITSM_ML_DATASETS is unset in CI; .ci/run must set it")
        pytest.skip(
            "ITSM_ML_DATASETS is unset: this test reads the public datasets "
            "(ServiceNow log, ticket-assignment, endava, jit-changes, NAB); .ci/run sets it"
        )
    path = Path(raw)
    if not path.is_dir():
        pytest.fail(f"ITSM_ML_DATASETS={raw} is not a folder")
    return path


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _tracking_uri_restored() -> Iterator[None]:
    # mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI in os.environ: a test that
    # points MLflow at its own throw-away store would leak it into every later test and into
    # the notebook kernels nbmake starts, which then register into a store being deleted.
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
