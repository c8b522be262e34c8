"""The package reads like the pipeline: no package imports one that comes later in the flow."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "itsm_ml"
# The flow; packages on one level (triage, change risk) do not import each other either.
FLOW = {
    "data": 1,
    "tracking": 2,
    "triage": 3,
    "change_risk": 3,
    "early_warning": 3,
    "knowledge": 4,  # its stage reuses triage's
    "problems": 5,  # groups on the knowledge model's text vectors
    "monitoring": 6,  # watches every family's models, the recurrence model's too
    "promotion": 7,
    "serving": 8,
}
# Core modules import nothing above them; top-level wiring (cli, training, experiments,
# run_summary) may import anything.
CORE = {
    "config", "schemas", "errors", "io", "catalog", "evaluation", "model_card", "telemetry",
    "results", "runner", "calibration", "__init__", "__version__",
}  # fmt: skip
IMPORT = re.compile(r"^\s*from (itsm_ml[\w.]*) import ([\w, ()]+)|^\s*import (itsm_ml[\w.]*)", re.M)


def level(module: str) -> int | None:
    """0 for core, the flow's rank for a capability package, None for top-level wiring."""
    head = module.split(".")[1] if "." in module else "config"
    if head in FLOW:
        return FLOW[head]
    return 0 if head in CORE else None


def imports(path: Path) -> list[str]:
    found = []
    for match in IMPORT.finditer(path.read_text()):
        base, names, plain = match.groups()
        if plain:
            found.append(plain)
        elif base == "itsm_ml":  # `from itsm_ml import io, training`
            parts = (n.split(" as ")[0].strip() for n in names.strip("()").split(","))
            found += [f"itsm_ml.{name}" for name in parts if name]
        else:
            found.append(base)
    return found


def test_no_module_imports_a_later_step_of_the_flow() -> None:
    offending = []
    for path in SRC.rglob("*.py"):
        module = "itsm_ml." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        mine = level(module)
        if mine is None:
            continue
        for imported in imports(path):
            theirs = level(imported)
            same_level_sibling = (
                theirs == mine and mine > 0 and imported.split(".")[1] != module.split(".")[1]
            )
            if theirs is None or theirs > mine or same_level_sibling:
                offending.append(f"{module} imports {imported}")
    assert offending == []
