"""The last good state of a project, as bytes: what a failed run must leave as it was."""

from __future__ import annotations

from pathlib import Path


def last_good_state(root: Path) -> dict[str, bytes]:
    """Every file of the validated tables, the splits and the models, by relative path."""
    folders = [root / "data/interim", root / "data/processed", root / "models"]
    return {
        str(path.relative_to(root)): path.read_bytes()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
