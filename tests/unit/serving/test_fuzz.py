"""Schemathesis, from the service's own OpenAPI schema: no generated request gets a 5xx.

A short run with a fixed seed keeps the suite fast; `make bench` runs a longer one against
champions trained on the real ServiceNow log.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from itsm_ml.catalog import catalog
from itsm_ml.config import Params
from itsm_ml.early_warning.model import DetectorModel
from itsm_ml.knowledge.model import SimilarityModel
from itsm_ml.serving.app import build_service, create_app
from itsm_ml.serving.champions import Champions
from tests.unit.serving.conftest import FakeRegistry, with_detector, with_similarity


@pytest.fixture
def live_url(
    project: Path,
    params: Params,
    registry_with_routing: FakeRegistry,
    similarity_model: SimilarityModel,
    detector: DetectorModel,
) -> Iterator[str]:
    registry = with_detector(with_similarity(registry_with_routing, similarity_model), detector)
    champions = Champions(
        [entry.registered_model for entry in catalog(params)],
        resolve=registry.resolve,
        load=registry.load,
    )
    champions.refresh()
    app = create_app(build_service(params, project, champions=champions), poll=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_no_generated_request_gets_a_server_error(
    live_url: str, tokens: dict[str, str], tmp_path: Path
) -> None:
    assert httpx.get(f"{live_url}/readyz").status_code == 200
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis), "run", f"{live_url}/openapi.json",
        "--checks", "not_a_server_error",
        "--header", f"Authorization: Bearer {tokens['admin']}",
        "--max-examples", "30", "--seed", "1", "--workers", "1",
        "--suppress-health-check", "all",
        "--generation-database", "none",
    ]  # fmt: skip
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:]
