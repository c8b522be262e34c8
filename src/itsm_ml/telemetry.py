"""Telemetry off for every tool of the stack, whoever starts the process."""

from __future__ import annotations

import os

_OFF = {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def disable() -> None:
    """Called by entry points (CLI, stage scripts) and before GX loads, never at import."""
    for name, value in _OFF.items():
        os.environ.setdefault(name, value)
