"""Evidently's default data drift preset on the windows our detector judges, for comparison.

Evidently (0.7) picks a test per column from the reference size: above 1,000 reference rows,
Wasserstein distance (normed, threshold 0.1) for numeric columns, Jensen-Shannon distance
(0.1) for categorical ones and a domain classifier (ROC AUC 0.55) for text; at or below it,
KS / chi-square / z tests (p < 0.05). The preset calls the dataset drifted when at least half
of the columns drifted (`drift_share=0.5`); both that verdict and "any column drifted" are
reported, since a monitor that pages on any column is what most users set up.

Only the benchmark imports this module: Evidently is in the `bench` dependency group.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's telemetry switch (its UI only)

_P_VALUE_TESTS = ("p_value", "K-S", "chi-square", "Z-test", "Anderson", "Fisher", "Cramer")


@dataclass
class PresetVerdicts:
    """Per window: the preset's dataset verdict and whether any column drifted."""

    dataset: list[bool] = field(default_factory=list)
    any_column: list[bool] = field(default_factory=list)
    columns: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


class EvidentlyPreset:
    """`DataDriftPreset()` with its defaults, the reference fixed once."""

    def __init__(
        self,
        reference: pd.DataFrame,
        *,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        text: str | None = None,
    ) -> None:
        from evidently import DataDefinition, Dataset

        # Evidently raises on a column that is empty in a window; a column present in under
        # 1% of the reference (ServiceNow's `ci`) is left out for it (we judge its missing share).
        present = reference.notna().mean()
        self.skipped = [c for c in [*numeric, *categorical, text] if c and present[c] < 0.01]
        numeric = [c for c in numeric if c not in self.skipped]
        categorical = [c for c in categorical if c not in self.skipped]
        text = text if text not in self.skipped else None
        self.columns = [*numeric, *categorical, *([text] if text else [])]
        self.definition = DataDefinition(
            numerical_columns=list(numeric),
            categorical_columns=list(categorical),
            text_columns=[text] if text else [],
        )
        self.reference = Dataset.from_pandas(
            _plain(reference, self.columns), data_definition=self.definition
        )

    def judge(self, windows: Sequence[pd.DataFrame]) -> PresetVerdicts:
        import time

        from evidently import Dataset, Report
        from evidently.presets import DataDriftPreset

        found = PresetVerdicts()
        started = time.perf_counter()
        for window in windows:
            current = Dataset.from_pandas(
                _plain(window, self.columns), data_definition=self.definition
            )
            metrics = Report([DataDriftPreset()]).run(current, self.reference).dict()["metrics"]
            count = next(m for m in metrics if m["metric_name"].startswith("DriftedColumnsCount"))
            drifted = [
                m["config"]["column"]
                for m in metrics
                if m["config"]["type"].endswith("ValueDrift") and _drifted(m)
            ]
            found.dataset.append(count["value"]["share"] >= count["config"]["drift_share"])
            found.any_column.append(count["value"]["count"] > 0)
            found.columns.update(drifted)
        found.seconds = time.perf_counter() - started
        return found


def _drifted(metric: dict[str, object]) -> bool:
    """Distances drift at or above their threshold; p-values below it."""
    config = metric["config"]
    assert isinstance(config, dict)
    value, threshold = float(metric["value"]), float(config["threshold"])  # type: ignore[arg-type]
    if any(name in str(config["method"]) for name in _P_VALUE_TESTS):
        return value < threshold
    return value >= threshold


def _plain(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Plain numpy dtypes: Evidently trips on pandas' nullable strings and `pd.NA`."""
    plain = pd.DataFrame(index=range(len(frame)))
    for column in columns:
        values = frame[column].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            plain[column] = pd.to_numeric(values, errors="coerce").astype(float)
        else:
            plain[column] = values.astype(object).where(values.notna(), None)
    return plain
