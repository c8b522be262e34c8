"""The audit trail of the service: one JSON line per scored record, appended, rotated by size.

A line says who asked (token id, never the token), what (endpoint, record number), which
model version answered, what it decided and how long the request took. Ticket text and
field values other than the decision are never written: the audit log must be safe to hand
to an auditor. Rotation renames whole files (`scoring.jsonl.1`, ...); no line is rewritten.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The stdlib handler rotates safely under threads; it is used directly, not through
        # a logger, so no logging configuration elsewhere can route lines away or add text.
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._lock = threading.Lock()
        self.path = path

    def write(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append entries as JSON lines in one write (a batch is not interleaved with others)."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = "\n".join(json.dumps({"time": at, **e}, separators=(",", ":")) for e in entries)
        if not text:
            return
        record = logging.LogRecord("audit", logging.INFO, "", 0, text, None, None)
        with self._lock:
            self._handler.handle(record)

    def close(self) -> None:
        self._handler.close()
