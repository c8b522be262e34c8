"""What a stage did, as one typed object: a line for the `dvc repro` log and its figures.

Every stage function returns one (or a `Skipped`), so the runner prints `summary()` without
knowing which stage ran, and callers read `figures` by the names the stage documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageResult:
    line: str
    figures: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return self.line

    def to_dict(self) -> dict[str, Any]:
        return dict(self.figures)
