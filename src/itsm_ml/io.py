"""Reading and writing project files, never half-written.

Every writer goes through `atomic_path`: the content lands under a temporary name in the
target folder and is renamed into place only once complete.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from itsm_ml.errors import ItsmMlError

# Spreadsheets evaluate cells starting with these; OWASP's advice is to prefix a quote.
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@contextmanager
def atomic_path(target: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` on success only.

    `mode` (e.g. 0o600 for secrets): the temporary file has exactly this mode from its
    creation, before any byte is written, whatever the umask, and keeps it under its final
    name (the caller writes into the file it is given, rather than replacing it). Without
    it, the file ends readable as the umask allows, like any other output.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if mode is None:
            # mkstemp creates files readable by the owner only; outputs are shared artefacts.
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o666 & ~umask)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_tables(frames: dict[Path, pd.DataFrame]) -> None:
    """Several tables that only make sense together (a split): all are written under
    temporary names first, then renamed, so a failure leaves the previous set whole."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        for path, frame in frames.items():
            frame.to_parquet(stack.enter_context(atomic_path(path)), index=False)


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ItsmMlError(f"{path} not found; run the stage that writes it first (dvc repro)")
    return pd.read_parquet(path)


def _strict_json(value: Any) -> Any:
    """NaN and infinity are not JSON; other readers choke on them: write null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    return value


def write_json(payload: Any, path: Path, *, mode: int | None = None) -> None:
    """`mode`: as `atomic_path` takes it (0o600 for a file only its owner may read)."""
    text = json.dumps(_strict_json(payload), indent=2, default=str, allow_nan=False)
    with atomic_path(path, mode) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")


def write_text(content: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(content, encoding="utf-8")


def escape_formula(value: object) -> object:
    """Make a cell inert for spreadsheets: a leading quote stops formula evaluation."""
    if isinstance(value, str) and value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells are inert in a spreadsheet (see `escape_formula`)."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or isinstance(safe[column].dtype, pd.StringDtype):
            safe[column] = safe[column].map(escape_formula, na_action="ignore")
    return safe


def write_csv_for_humans(frame: pd.DataFrame, path: Path) -> None:
    """CSV meant to be opened in a spreadsheet: text cells are escaped against formulas."""
    safe = escape_formulas(frame)
    with atomic_path(path) as tmp:
        safe.to_csv(tmp, index=False)


def figure_png(figure: Any) -> bytes:
    """A matplotlib figure as the PNG bytes `save_figure` writes; the figure stays open."""
    from io import BytesIO

    buffer = BytesIO()
    figure.savefig(buffer, dpi=90, format="png")
    return buffer.getvalue()


def save_figure(figure: Any, path: Path) -> None:
    """A matplotlib figure as PNG, written atomically, and closed (figures pile up in memory)."""
    import matplotlib.pyplot as plt

    png = figure_png(figure)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    plt.close(figure)
