"""Scoped bearer tokens: shown once, stored as hashes, checked by scope, revocable."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from itsm_ml.cli import app
from itsm_ml.errors import ItsmMlError
from itsm_ml.serving.tokens import TokenStore

runner = CliRunner()


def test_a_token_is_stored_only_as_a_hash_and_verifies(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    record, token = store.create("servicenow prod", ["score:tickets"])
    text = (tmp_path / "tokens.json").read_text()
    secret = token.split("_", 2)[2]
    assert secret not in text and record.hash in text
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert store.verify(token) == record
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify("Bearer nonsense") is None and store.verify("itsm__") is None


def test_the_store_is_owner_only_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a umask that lets everyone read, each temporary file of the atomic write is 0600
    before its first byte and when renamed into place; a store an older version left 0644
    becomes 0600 with the next write."""
    path = tmp_path / "tokens.json"
    path.write_text('{"tokens": []}\n')
    path.chmod(0o644)
    seen: list[tuple[str, str, int, int]] = []

    def mode(file: Any) -> tuple[int, int]:
        found = Path(file).stat()
        return stat.S_IMODE(found.st_mode), found.st_size

    real_write_text, real_replace = Path.write_text, os.replace

    def write_text(self: Path, *args: Any, **kwargs: Any) -> int:
        seen.append(("write", self.name, *mode(self)))
        return real_write_text(self, *args, **kwargs)

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        seen.append(("rename", Path(src).name, *mode(src)))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    monkeypatch.setattr(os, "replace", replace)
    umask = os.umask(0)
    try:
        store = TokenStore(path)
        record, _ = store.create("desk", ["score:tickets"])
        store.revoke(record.id)
    finally:
        os.umask(umask)
    assert [(step, name.startswith(".tokens.json.")) for step, name, *_ in seen] == [
        ("write", True), ("rename", True)
    ] * 2  # fmt: skip
    assert [(m, size) for step, _, m, size in seen if step == "write"] == [(0o600, 0)] * 2
    assert [m for step, _, m, _ in seen if step == "rename"] == [0o600] * 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.records()[0].revoked_at is not None


def test_scopes_are_checked_and_admin_holds_them_all(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    tickets, _ = store.create("desk", ["score:tickets"])
    admin, _ = store.create("ops", ["admin"])
    assert tickets.allows("score:tickets") and not tickets.allows("score:changes")
    assert admin.allows("score:changes") and admin.allows("models:read")
    with pytest.raises(ItsmMlError, match=r"among .*got \['score:everything'\]"):
        store.create("x", ["score:everything"])
    with pytest.raises(ItsmMlError, match="needs a name"):
        store.create(" ", ["admin"])


def test_a_revoked_token_no_longer_verifies(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    record, token = store.create("jira", ["score:changes"])
    revoked = store.revoke(record.id)
    assert revoked.revoked_at is not None and not revoked.allows("score:changes")
    assert store.verify(token) is None
    assert store.revoke(record.id) == revoked  # twice: no change
    with pytest.raises(ItsmMlError, match="no token with id 'nope'"):
        store.revoke("nope")


def test_a_damaged_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").write_text("{not json")
    with pytest.raises(ItsmMlError, match=r"tokens\.json: not a token store"):
        TokenStore(tmp_path / "tokens.json").records()


def test_the_token_commands_show_the_secret_once(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        "tickets: {source: {kind: generator}}\nchanges: {source: {kind: generator}}\n"
    )
    params = ["--params", str(tmp_path / "params.yaml")]
    created = runner.invoke(
        app, ["token", "create", "--name", "desk", "--scope", "score:tickets", *params]
    )
    assert created.exit_code == 0, created.output
    token = next(w for w in created.output.split() if w.startswith("itsm_"))
    token_id = token.split("_")[1]
    listed = runner.invoke(app, ["token", "list", *params], terminal_width=200)
    assert listed.exit_code == 0 and token_id in listed.output and token not in listed.output
    assert runner.invoke(app, ["token", "revoke", token_id, *params]).exit_code == 0
    stored = json.loads((tmp_path / "tokens.json").read_text())["tokens"][0]
    assert stored["revoked_at"] is not None
    bad = runner.invoke(app, ["token", "create", "--name", "x", "--scope", "everything", *params])
    assert bad.exit_code == 2 and "among" in bad.output
