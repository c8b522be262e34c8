"""Model cards: what a model is for and who owns it, what it was trained on, how well it does
against baselines, its limits. The card is also its registry version's description."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _pct(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.1%}"


def _intended_use(intended_use: str, owner: str | None) -> list[str]:
    """What the model is for and who answers for it (`models:` in params.yaml)."""
    return [
        "## Intended use",
        "",
        intended_use,
        "",
        f"Owner: {owner}."
        if owner
        else "Owner: none declared (set `owner` for this model under `models:` in params.yaml).",
        "",
    ]


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
    intended_use: str,
    owner: str | None,
    limits: list[str],
    candidates: dict[str, Any] | None = None,
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
            *_intended_use(intended_use, owner),
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
            f"Calibration ({metrics.get('calibration', 'temperature')}, chosen on validation):"
            f" expected calibration error {metrics['ece']:.3f} (raw scores:"
            f" {metrics['ece_uncalibrated']:.3f}).",
            "",
            *_candidate_rows(candidates),
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


def _candidate_rows(candidates: dict[str, Any] | None) -> list[str]:
    """How the model was chosen: every candidate's validation figures, the calibrator's."""
    if not candidates:
        return []
    metric = candidates["selection_metric"]
    rows = [
        f"| {name}{' (chosen)' if name == candidates['chosen'] else ''} |"
        f" {_number(found.get(metric, float('nan')), 4)} | {_number(found.get('macro_f1', float('nan')), 4)} |"
        for name, found in candidates["candidates"].items()
    ]
    eces = ", ".join(f"{k} {v:.4f}" for k, v in candidates["calibration_ece_cross_fitted"].items())
    text_c = (
        f" The text candidate's C was {candidates['text_c']} (most accurate on validation)."
        if "text_c" in candidates
        else ""
    )
    return [
        "## How it was chosen",
        "",
        f"Candidates fitted on the training split, judged on the validation split by {metric}:",
        "",
        f"| candidate | validation {metric} | validation macro-F1 |",
        "|---|---|---|",
        *rows,
        "",
        f"Calibrator: {candidates['calibration']} (cross-fitted validation ECE:"
        f" {eces or 'too few rows to judge'}).{text_c}",
        "",
    ]


def _band_rows(table: pd.DataFrame) -> list[str]:
    return [
        f"| {r.band} | {'-' if r.band == 'low' else _threshold(r.threshold)} | {r.changes:,} "
        f"({_pct(r.share_of_changes)}) | {r.failures:,} ({_pct(r.share_of_failures)}) | "
        f"{_pct(r.caught_cumulative)} | {_pct(r.failure_rate)} |"
        for r in table.itertuples()
    ]


def _number(value: float, digits: int) -> str:
    return "n/a" if pd.isna(value) else f"{value:.{digits}f}"


def _threshold(value: float) -> str:
    return "never reached" if value == float("inf") else f">= {value:.3f}"


def render_change_card(
    *,
    registered_model: str,
    data: dict[str, Any],
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, float]],
    band_targets: dict[str, str],
    bands_valid: pd.DataFrame,
    bands_test: pd.DataFrame,
    intended_use: str,
    owner: str | None,
    limits: list[str],
) -> str:
    def row(name: str, m: dict[str, float]) -> str:
        cells = [
            _number(m[k], digits)
            for k, digits in (("auc", 3), ("pr_auc", 3), ("brier", 4), ("ece", 3))
        ]
        return f"| {name} | {' | '.join(cells)} |"

    header = "| band | starts at probability | changes | failures | caught (this band and above) | failure rate |"
    return "\n".join(
        [
            f"# Model card: {registered_model}",
            "",
            "The probability that a change fails (`label_failed`: unsuccessful, or successful with"
            " issues), from what is known before it is implemented; with a risk band, the top"
            " reasons (LightGBM's per-change contributions, with their direction) and the"
            " conflicts with other planned work. Registered in MLflow with the alias"
            " `challenger`; the promotion gate decides `champion`.",
            "",
            *_intended_use(intended_use, owner),
            "## Data",
            "",
            f"- Source: {data['source']}",
            f"- Split: {data['split_method']}; train {data['train_rows']:,} changes"
            f" ({data['train_period']}), validation {data['valid_rows']:,}"
            f" ({data['valid_period']}), test {data['test_rows']:,} ({data['test_period']}).",
            f"- Failure rate: train {_pct(data['train_failure_rate'])}, validation"
            f" {_pct(data['valid_failure_rate'])}, test {_pct(data['test_failure_rate'])}.",
            f"- Features ({len(data['features'])}): {', '.join(data['features'])}.",
            f"- History features count an outcome only {data['delay_days']:g} days after its"
            " change (`change_risk.history.delay_days`): before that nobody knew it.",
            "",
            "## Quality on the test split",
            "",
            "| model | ROC AUC | PR-AUC | Brier | ECE |",
            "|---|---|---|---|---|",
            row("this model", metrics),
            *[row(f"baseline: {name}", m) for name, m in baselines.items()],
            "",
            "Calibration: Platt scaling fitted on the validation slice (never on test); expected"
            f" calibration error {metrics['ece']:.3f} (raw LightGBM scores:"
            f" {metrics['ece_uncalibrated']:.3f}). Mean predicted probability"
            f" {_pct(metrics['mean_probability'])} against an observed failure rate of"
            f" {_pct(metrics['failure_rate'])}.",
            "",
            "Conflicts on test (listed with each answer; also features): "
            f"{_pct(metrics.get('share_overlapping_other_work', float('nan')))} of changes overlap"
            " other planned work on the same CI or service, "
            f"{_pct(metrics.get('share_inside_blackout', float('nan')))} touch a blackout window,"
            f" {_pct(metrics.get('share_outside_business_hours', float('nan')))} start outside"
            " business hours.",
            "",
            "## Risk bands",
            "",
            "Thresholds learned on validation from `change_risk.bands` in params.yaml: "
            + "; ".join(f"{name}: {target}" for name, target in band_targets.items())
            + ". Below them all a change is `low`.",
            "",
            "On test (the figures a change manager plans review effort with):",
            "",
            header,
            "|---|---|---|---|---|---|",
            *_band_rows(bands_test),
            "",
            "On validation, where the thresholds were set (scores of the model before its refit"
            " on train + validation, so out of sample):",
            "",
            header,
            "|---|---|---|---|---|---|",
            *_band_rows(bands_valid),
            "",
            "## Known limits",
            "",
            *[f"- {limit}" for limit in limits],
            "",
        ]
    )


def render_similarity_card(
    *,
    registered_model: str,
    label: str,
    data: dict[str, Any],
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    selection: dict[str, Any],
    curve: pd.DataFrame,
    intended_use: str,
    owner: str | None,
    limits: list[str],
) -> str:
    k = metrics["k"]
    precision = f"precision@{k}"

    def row(name: str, m: dict[str, Any]) -> str:
        cells = [
            _number(m.get(key, float("nan")), 3) for key in ("accuracy", "macro_f1", precision)
        ]
        return f"| {name} | {' | '.join(cells)} |"

    metric = selection["selection_metric"]
    methods = [
        f"| {name}{' (chosen)' if name == selection['chosen'] else ''} |"
        f" {_number(found.get(metric, float('nan')), 4)} |"
        for name, found in selection["candidates"].items()
    ]
    columns = [c for c in curve.columns if c != "k"]
    curve_rows = [
        f"| {int(r['k'])} | " + " | ".join(_number(r[c], 3) for c in columns) + " |"
        for _, r in curve.iterrows()
    ]
    duplicates = (
        [
            f"Linked duplicates on test ({metrics['duplicate_queries']} tickets whose duplicate"
            f" is indexed): recall@1 {_number(metrics['duplicate recall@1'], 3)}, recall@5"
            f" {_number(metrics['duplicate recall@5'], 3)}, recall@10"
            f" {_number(metrics['duplicate recall@10'], 3)}, MRR"
            f" {_number(metrics['duplicate mrr'], 3)}.",
            "",
        ]
        if "duplicate_queries" in metrics
        else []
    )
    compared = ", ".join(data["fields"]) or "none"
    return "\n".join(
        [
            f"# Model card: {registered_model}",
            "",
            "For a new ticket: the most similar earlier tickets, each with its similarity, a"
            f" relevance probability and how it was resolved; and the `{label}` those neighbours"
            " suggest, with a calibrated probability and the runbook it points to. Registered in"
            " MLflow with its index inside the artifact, alias `challenger`; the promotion gate"
            " decides `champion`.",
            "",
            *_intended_use(intended_use, owner),
            "## Data",
            "",
            f"- Source: {data['source']}",
            f"- Split: train {data['train_rows']:,} tickets, validation {data['valid_rows']:,}"
            f" (method and vote chosen, calibrated), test {data['test_rows']:,} (labelled). The"
            f" served index holds train + validation: {data['indexed']:,} tickets.",
            f"- Compared by: {'the ticket text and ' if data['text'] else ''}the fields"
            f" {compared}. A ticket never sees itself or a later ticket.",
            "",
            "## How it was chosen",
            "",
            f"Retrieval methods judged on the validation tickets' neighbours by {metric}:",
            "",
            f"| method | validation {metric} |",
            "|---|---|",
            *methods,
            "",
            f"Vote: temperature {selection['vote_temperature']:g}, prior weight"
            f" {selection['vote_prior_weight']:g} (validation accuracy"
            f" {selection['vote_accuracy_on_validation']:.4f}); calibration"
            f" {selection['calibration']}.",
            "",
            "## Quality on the test split",
            "",
            f"| model | accuracy of the suggested `{label}` | macro-F1 | neighbours' {precision} |",
            "|---|---|---|---|",
            row("this model", metrics),
            *[row(f"baseline: {name}", m) for name, m in baselines.items()],
            "",
            f"Top-{metrics['top_k']} suggestions hold the right value for"
            f" {_pct(metrics['top_k_accuracy'])} of tickets. Calibration: expected calibration"
            f" error {metrics['ece']:.3f} (vote shares: {metrics['ece_uncalibrated']:.3f}).",
            "",
            f"Auto-suggest at a target precision of {metrics['target_precision']:.0%} (per-value"
            f" thresholds learned on validation): **{_pct(metrics['coverage'])} of test tickets"
            f" at {_pct(metrics['auto_routed_precision'])} precision**; the others get"
            " suggestions only.",
            "",
            f"Neighbour relevance (the probability shown with each neighbour that it shares the"
            f" ticket's `{label}`): mean {_pct(metrics['relevance_mean'])} against"
            f" {_pct(metrics[precision])} observed, ECE {_number(metrics['relevance_ece'], 3)}.",
            "",
            *duplicates,
            f"## Neighbours sharing the `{label}`, by depth",
            "",
            "| k | " + " | ".join(columns) + " |",
            "|---|" + "---|" * len(columns),
            *curve_rows,
            "",
            "## Known limits",
            "",
            *[f"- {limit}" for limit in limits],
            "",
        ]
    )


def render_detector_card(
    *,
    registered_model: str,
    label: str,
    data: dict[str, Any],
    model: dict[str, Any],
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    intended_use: str,
    owner: str | None,
    limits: list[str],
) -> str:
    """The card of an incident-volume detector (kind `detector`)."""

    def row(name: str, m: dict[str, Any]) -> str:
        return (
            f"| {name} | {_number(m['nab_standard'], 1)} | {_number(m['nab_low_fp'], 1)} |"
            f" {m['detected_windows']} of {m['windows']} | {_number(m['median_delay_hours'], 1)}"
            f" | {_number(m['false_alarms_per_day'], 3)} |"
        )

    return "\n".join(
        [
            f"# Model card: {registered_model}",
            "",
            f"Watches incident volume ({', '.join(model['by'])}, per {model['frequency']}) with"
            f" the `{model['method']}` detector and raises an alarm from score"
            f" {model['threshold']:.3f} ({model['threshold_basis']}). Registered in MLflow with"
            " every series' recent past inside the artifact, so the served version scores the"
            " next points where training stopped; alias `challenger`, the promotion gate"
            " decides `champion`.",
            "",
            *_intended_use(intended_use, owner),
            "## Data",
            "",
            f"- Source: {data['source']}",
            f"- Split: train {data['train_rows']:,} tickets (warms the detector), validation"
            f" {data['valid_rows']:,} (threshold chosen), test {data['test_rows']:,} (judged).",
            f"- Series watched: {data['series']} (values with at least {model['min_tickets']}"
            " tickets).",
            f"- Labelled windows: incidents sharing a `{label}` on one series, at least"
            f" {model['outage_min_tickets']}, from the first to the last.",
            "",
            "## Quality on the test split",
            "",
            "NAB's normalised score (0: never alarming, 100: every window at its first point and"
            " no false alarm) at the threshold chosen on validation; a false alarm is an alarm"
            " episode opened outside every labelled window.",
            "",
            "| detector | NAB standard | NAB low-FP | windows found | median delay (h) |"
            " false alarms per day |",
            "|---|---|---|---|---|---|",
            row("this model", metrics),
            *[row(f"baseline: {name}", m) for name, m in baselines.items()],
            "",
            "## Known limits",
            "",
            *[f"- {limit}" for limit in limits],
            "",
        ]
    )


def render_recurrence_card(
    *,
    registered_model: str,
    label: str,
    data: dict[str, Any],
    model: dict[str, Any],
    tried: list[dict[str, float]],
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    intended_use: str,
    owner: str | None,
    limits: list[str],
) -> str:
    """The card of a problem-candidate detector (kind `recurrence`)."""

    def row(name: str, m: dict[str, Any]) -> str:
        return (
            f"| {name} | {_number(m['pairwise_precision'], 2)} | {_number(m['pairwise_recall'], 2)}"
            f" | {_number(m['pairwise_f1'], 2)} | {m['problems_raised']} of {m['problems']} |"
            f" {_number(m['median_days_to_raise'], 1)} | {_number(m['candidates_per_month'], 1)} |"
        )

    return "\n".join(
        [
            f"# Model card: {registered_model}",
            "",
            f"Groups tickets and micro-records into recurring issues as they arrive (similarity"
            f" threshold {model['threshold']:g}, {model['threshold_basis']}; groups share"
            f" {', '.join(model['same']) or 'no field'} and close after {model['window_days']:g}"
            f" days without a record) and raises a group as a problem candidate by the rule"
            f" ({model['rule']}). Registered in MLflow with its text weights and the groups open"
            " when training stopped, so the served version places the next records where"
            " training left off; alias `challenger`, the promotion gate decides `champion`.",
            "",
            *_intended_use(intended_use, owner),
            "## Data",
            "",
            f"- Source: {data['source']}",
            f"- Split: train {data['train_rows']:,} tickets, validation {data['valid_rows']:,}"
            f" (threshold chosen), test {data['test_rows']:,} (judged), with"
            f" {data['micro_records']:,} micro-records over the same time.",
            f"- Ground truth: incidents linked to one `{label}`; a problem is judged in a period"
            " where two or more of its incidents are.",
            "",
            "## Threshold on validation",
            "",
            "| threshold | pairwise F1 | problems raised | candidates per month |",
            "|---|---|---|---|",
            *[
                f"| {t['threshold']:g} | {_number(t['pairwise_f1'], 3)} |"
                f" {t['problems_raised']} of {t['problems']} |"
                f" {_number(t['candidates_per_month'], 1)} |"
                for t in tried
            ],
            "",
            "## Quality on the test split",
            "",
            "The whole history is replayed day by day with what was known then; pairs are"
            " same-problem pairs among the test period's linked incidents; a problem counts as"
            " raised when a raised group holds two of its incidents, its delay from its first"
            " incident in the period.",
            "",
            "| grouping | pairwise precision | pairwise recall | pairwise F1 | problems raised |"
            " median days | candidates per month |",
            "|---|---|---|---|---|---|---|",
            row("this model", metrics),
            *[row(f"baseline: {name}", m) for name, m in baselines.items()],
            "",
            "## Known limits",
            "",
            *[f"- {limit}" for limit in limits],
            "",
        ]
    )
