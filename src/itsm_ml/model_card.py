"""Model cards: what a model was trained on, how well it does against baselines, its limits."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def render_card(
    *,
    target: str,
    registered_model: str,
    label: str,
    data: dict[str, Any],
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, float]],
    per_class: pd.DataFrame,
    coverage_per_class: pd.DataFrame,
    limits: list[str],
) -> str:
    rows = [f"| this model | {metrics['accuracy']:.3f} | {metrics['macro_f1']:.3f} |"]
    rows += [
        f"| baseline: {name} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} |"
        for name, m in baselines.items()
    ]
    classes = per_class.head(15).merge(
        coverage_per_class.rename(columns={"precision": "routed_precision"}),
        on="class",
        how="left",
    )
    class_rows = [
        f"| {r['class']} | {r['support']} | {r['precision']:.2f} | {r['recall']:.2f} | "
        f"{'never' if pd.isna(r.get('threshold')) or r.get('threshold') == float('inf') else format(r['threshold'], '.2f')} | "
        f"{_pct(r.get('coverage', float('nan')))} | {_pct(r.get('routed_precision', float('nan')))} |"
        for _, r in classes.iterrows()
    ]
    return "\n".join(
        [
            f"# Model card: {registered_model} ({target})",
            "",
            f"Predicts `{label}` (the value when the ticket closed) from what is known when it is",
            "opened. Registered in MLflow with the alias `challenger`; the promotion gate decides",
            "`champion`.",
            "",
            "## Data",
            "",
            f"- Source: {data['source']}",
            f"- Split: {data['split_method']}; train {data['train_rows']:,} rows"
            f" ({data['train_period']}), validation {data['valid_rows']:,} ({data['valid_period']}),"
            f" test {data['test_rows']:,} ({data['test_period']}).",
            f"- Classes: {metrics['classes']} in training; rows without a label are left out.",
            f"- Features: {', '.join(data['features'])}.",
            "",
            "## Quality on the test split",
            "",
            "| model | accuracy | macro-F1 |",
            "|---|---|---|",
            *rows,
            "",
            f"Calibration (temperature {metrics['temperature']:.2f}, fitted on validation): expected"
            f" calibration error {metrics['ece']:.3f} (raw scores: {metrics['ece_uncalibrated']:.3f}).",
            "",
            f"Auto-routing at a target precision of {metrics['target_precision']:.0%} (per-class"
            f" thresholds learned on validation): **{_pct(metrics['coverage'])} of test tickets"
            f" auto-routed at {_pct(metrics['auto_routed_precision'])} precision**; the others get"
            f" the top-{metrics['top_k']} suggestions.",
            "",
            "## Largest classes",
            "",
            "| class | test support | precision | recall | threshold | auto-routed | routed precision |",
            "|---|---|---|---|---|---|---|",
            *class_rows,
            "",
            "## Known limits",
            "",
            *[f"- {limit}" for limit in limits],
            "",
        ]
    )
