"""The log `POST /v1/micro-records` appends to: one JSON line per fix made outside the desk,
in the names the `assistant_export` source reads by default, so pointing
`micro_records.source` at it brings those fixes into problem candidates with no mapping.

A record is logged once per id: the ids already in the log are read when the service starts
and kept, so an assistant retrying a request it is unsure about does not count twice. Lines
are appended whole under one lock and flushed; no line is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC
from pathlib import Path

from itsm_ml.errors import ItsmMlError
from itsm_ml.serving.api import MicroRecord, MicroRecordsLogged


class MicroRecordLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._ids: set[str] | None = None  # read on first use: a service may never take one

    def _known(self) -> set[str]:
        if self._ids is None:
            self._ids = set()
            if self.path.exists():
                with self.path.open(encoding="utf-8") as lines:
                    for number, line in enumerate(lines, start=1):
                        if not line.strip():
                            continue
                        try:
                            self._ids.add(str(json.loads(line)["id"]))
                        except (ValueError, KeyError, TypeError) as exc:
                            raise ItsmMlError(
                                f"{self.path}: line {number} is not a micro-record ({exc});"
                                " the log is appended to only by this service"
                            ) from exc
        return self._ids

    def append(self, records: list[MicroRecord]) -> MicroRecordsLogged:
        rows = [_row(r) for r in records]
        with self._lock:
            known = self._known()
            fresh: list[dict[str, object]] = []
            seen: set[str] = set()
            for row in rows:
                ident = str(row["id"])
                if ident in known or ident in seen:
                    continue
                seen.add(ident)
                fresh.append(row)
            if fresh:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh)
                with self.path.open("a", encoding="utf-8") as log:
                    log.write(text)
                    log.flush()
                known.update(seen)
        return MicroRecordsLogged(
            logged=len(fresh), duplicates=len(rows) - len(fresh), ids=[r["id"] for r in rows]
        )


def _row(record: MicroRecord) -> dict[str, object]:
    moment = record.timestamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    stamp = moment.isoformat(timespec="seconds")
    ident = (
        record.id
        or "mr-"
        + hashlib.sha256(
            "\x1f".join([stamp, record.user or "", record.symptom]).encode()
        ).hexdigest()[:16]
    )
    return {"id": ident, "timestamp": stamp, **record.model_dump(exclude={"id", "timestamp"})}
