"""Bearer-token checks for the service: 401 without a valid token, 403 without the scope.

The token store is re-read only when its file changes (modification time and size), so a
revocation takes effect on the next request without a disk read on every request.
"""

from __future__ import annotations

import threading
from pathlib import Path

from itsm_ml.serving.tokens import TokenRecord, TokenStore


class CachedTokens:
    def __init__(self, path: Path) -> None:
        self._store = TokenStore(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_id: dict[str, TokenRecord] = {}

    def _current(self) -> dict[str, TokenRecord]:
        try:
            stat = self._store.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            return {}
        with self._lock:
            if stamp != self._stamp:
                self._by_id = {r.id: r for r in self._store.records()}
                self._stamp = stamp
            return self._by_id

    def verify(self, token: str) -> TokenRecord | None:
        """The active record of a presented token, or None (same rules as TokenStore.verify)."""
        return self._store.verify(token, records=self._current())


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
