"""Bearer tokens for the scoring service: scoped, stored only as hashes, revocable.

A token reads `itsm_<id>_<secret>`: the id finds its record, the secret (32 random bytes) is
checked against the stored SHA-256 in constant time. A fast hash is enough because the
secret is random, not a password a person chose; the plain token is shown once, at creation,
and never stored or logged. The store is a JSON file beside the tracking store, written
atomically and readable by its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from itsm_ml import io
from itsm_ml.errors import ItsmMlError

SCOPES = (
    "score:tickets",
    "score:changes",
    "score:metrics",
    "write:micro-records",
    "models:read",
    "admin",
)
STORE_NAME = "tokens.json"
_PREFIX = "itsm"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    hash: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """`admin` holds every scope."""
        return self.active and (scope in self.scopes or "admin" in self.scopes)


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[TokenRecord]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [TokenRecord(**{**r, "scopes": tuple(r["scopes"])}) for r in raw["tokens"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ItsmMlError(f"{self.path}: not a token store ({exc})") from exc

    def create(self, name: str, scopes: list[str]) -> tuple[TokenRecord, str]:
        """A new token; returns its record and the plain token, which is not kept."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ItsmMlError(f"token scopes must be among {list(SCOPES)}; got {unknown or 'none'}")
        if not name.strip():
            raise ItsmMlError("a token needs a name saying who or what uses it")
        records = self.records()
        taken = {r.id for r in records}
        token_id = secrets.token_hex(4)
        while token_id in taken:
            token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        record = TokenRecord(
            id=token_id,
            name=name.strip(),
            scopes=tuple(dict.fromkeys(scopes)),
            created_at=_now(),
            hash=_digest(secret),
        )
        self._write([*records, record])
        return record, f"{_PREFIX}_{token_id}_{secret}"

    def revoke(self, token_id: str) -> TokenRecord:
        records = self.records()
        found = next((r for r in records if r.id == token_id), None)
        if found is None:
            raise ItsmMlError(f"no token with id {token_id!r} in {self.path}")
        if not found.active:
            return found
        revoked = TokenRecord(**{**asdict(found), "revoked_at": _now()})
        self._write([revoked if r.id == token_id else r for r in records])
        return revoked

    def verify(
        self, token: str, records: Mapping[str, TokenRecord] | None = None
    ) -> TokenRecord | None:
        """The active record a presented token belongs to, or None.

        `records` (by id) spares reading the store, for a caller that caches it."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != _PREFIX or not token_id or not secret:
            return None
        by_id = {r.id: r for r in self.records()} if records is None else records
        found = by_id.get(token_id)
        if found is None or not found.active:
            return None
        return found if hmac.compare_digest(found.hash, _digest(secret)) else None

    def _write(self, records: list[TokenRecord]) -> None:
        # 0600 from the temporary file's first byte: never readable by others, not even for
        # the moment between a rename and a chmod.
        io.write_json({"tokens": [asdict(r) for r in records]}, self.path, mode=0o600)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
