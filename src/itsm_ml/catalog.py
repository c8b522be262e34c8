"""The catalog: every model the project trains, evaluates, watches, gates and serves.

Models are data, not code. `models:` in params.yaml declares each one (its table, label,
kind and features); the DVC stages, the CLI, drift, the gate, the service and batch scoring
ask this module and dispatch on the entry's *family* (which code knows its table) and *kind*
(what it predicts), never on its name. Adding a target is a params edit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from itsm_ml import io
from itsm_ml.config import Params
from itsm_ml.errors import ConfigError, ItsmMlError
from itsm_ml.schemas import CHANGES, LABEL_PREFIX, is_label, is_metadata, schema_for

Family = Literal["triage", "change_risk", "knowledge", "early_warning", "problems"]
# Which code learns from which table: triage classifies tickets at open (text and fields),
# change risk scores changes before they run (their own metrics, history and conflicts).
FAMILY_OF_TABLE: dict[str, Family] = {"tickets": "triage", "changes": "change_risk"}
# A kind that is a family of its own, whatever the table: knowledge retrieval finds the most
# similar earlier tickets and suggests the resolution they had.
# A detector watches incident volume for surges: early warning, judged on labelled windows.
# A recurrence model groups tickets and micro-records into recurring issues and raises problem
# candidates, judged on the problems the desk linked incidents to.
FAMILY_OF_KIND: dict[str, Family] = {
    "similarity": "knowledge",
    "detector": "early_warning",
    "recurrence": "problems",
}


def family_of(table: str, kind: str) -> Family:
    return FAMILY_OF_KIND.get(kind) or FAMILY_OF_TABLE[table]


# The gate's metrics per family, primary first; True when higher is better. Knowledge is
# judged on the resolution its neighbours suggest (top-1 accuracy of the label), the figure
# the gate can measure on any labelled window from the served answer alone.
METRICS: dict[Family, dict[str, bool]] = {
    "triage": {"accuracy": True, "macro_f1": True, "ece": False},
    "change_risk": {"auc": True, "brier": False, "ece": False},
    "knowledge": {"accuracy": True, "macro_f1": True, "ece": False},
    # NAB's normalised score of the labelled windows (standard, then low-false-positive
    # profile) at the threshold chosen on validation, and the over-alerting users hate most.
    "early_warning": {"nab_standard": True, "nab_low_fp": True, "false_alarms_per_day": False},
    # The share of the period's problems a candidate raised (what problem management is
    # for), same-problem pairs among the linked incidents grouped together (as F1: a grouping
    # by one broad key puts every pair together and raises nothing), and the review load.
    "problems": {"problems_raised_share": True, "pairwise_f1": True, "candidates_per_month": False},
}
# A yes/no label of tickets (SLA breached, reopened) is judged as a risk score is: how well its
# probability ranks, then how right it is; accuracy alone rewards the majority class.
BINARY_TICKET_METRICS: dict[str, bool] = {
    "auc": True,
    "pr_auc": True,
    "accuracy": True,
    "macro_f1": True,
    "brier": False,
    "ece": False,
}


def metrics_of(family: Family, kind: str) -> dict[str, bool]:
    """The gate's metrics of a model, primary (default) first; True when higher is better."""
    return BINARY_TICKET_METRICS if family == "triage" and kind == "binary" else METRICS[family]


# What change risk learns: the changes table's outcome, which every change source maps.
CHANGE_OUTCOME = next(c.name for c in CHANGES.columns if c.core and is_label(c.name))
# What a model is for and the limits a person must know, when params.yaml does not say
# (`intended_use`, `limits`); stated on its card and in its registry description.
INTENDED_USE: dict[Family, str] = {
    "triage": "Suggests a ticket's `{label}` when it is opened; sets it automatically only in"
    " classes whose threshold reaches the target precision (`triage.target_precision`), and"
    " offers the top suggestions for a person to choose otherwise.",
    "change_risk": "Estimates, before a change is implemented, the probability that it fails,"
    " with a risk band, the reasons and the conflicts with other planned work, so that change"
    " managers and the CAB spend review effort where the risk is. It approves or rejects"
    " nothing.",
    "early_warning": "Watches incident volume per series for surges and opens an early warning"
    " (with its evidence, owner and runbook) while an outage is starting; its threshold is the"
    " one that scored best on validation's labelled windows (`{label}`). It fixes nothing.",
    "problems": "Groups tickets and micro-records (fixes made outside the desk) into recurring"
    " issues as they arrive and raises a group as a problem candidate when the recurrence rule"
    " (`problems.rule`) holds, with its evidence, for a problem manager to accept or reject;"
    " its grouping threshold is the one that raised most of validation's `{label}` problems. It"
    " opens, links or closes no problem by itself unless `itsm-ml problems --write-back` is"
    " run, and then only as New.",
    "knowledge": "Shows the agent (or a self-service chat) the most similar earlier tickets with"
    " how they were resolved, and suggests a `{label}` with a calibrated probability (and the"
    " runbook it points to); the suggestion is marked for automatic use only in values whose"
    " threshold reaches the target precision. Running a runbook stays with the ITSM.",
}
LIMITS: dict[Family, tuple[str, ...]] = {
    "triage": (
        "Learned from how past tickets were closed: it repeats the desk's habits, mistakes"
        " included, and knows no reorganisation made after its training data.",
        "A value it sets automatically takes effect unchecked: a mistake shows only when"
        " someone changes it later, so watch those changes once it is switched on.",
    ),
    "change_risk": (
        "A risk estimate to plan review effort, not an approval: a low band exempts no change"
        " from the change process.",
        "It knows only the failures the export records as such; failures never recorded are"
        " invisible to it.",
    ),
    "knowledge": (
        "It finds what the desk wrote down: tickets closed without notes, or with notes that"
        " do not say what fixed them, are neighbours without an answer.",
        "Similarity scores rank neighbours for one ticket; they are not probabilities and do"
        " not compare across tickets. The suggestion's probability is the calibrated one.",
        "Tickets resolved after its training are not in its index until it is retrained.",
    ),
    "problems": (
        "It is judged on the problems the desk recorded: a recurring issue nobody linked to a"
        " problem counts against its precision, and one recorded in no ticket is not judged.",
        "It cannot tell a surge of one outage (many incidents, one cause, already handled as a"
        " major incident) from a problem; both recur.",
        "Its first judgements come after three rule windows of history (`problems.rule`), the"
        " time it needs to know what is usual.",
    ),
    "early_warning": (
        "It sees how many incidents arrive, not why: a surge of a planned migration or of a"
        " mass e-mail alarms like an outage does.",
        "It is judged on the windows the desk labelled (incidents attached to one parent);"
        " outages the desk never linked count as false alarms against it.",
        "A series needs about four weeks of history before it is judged at all.",
    ),
}


@dataclass(frozen=True)
class CatalogEntry:
    """One model as every stage sees it."""

    name: str
    table: str
    kind: str
    label: str
    registered_model: str
    metric: str
    features: tuple[str, ...] | None
    at_open: str | None
    owner: str | None = None
    intended_use: str = ""
    limits: tuple[str, ...] = ()

    @property
    def family(self) -> Family:
        return family_of(self.table, self.kind)

    @property
    def metrics(self) -> dict[str, bool]:
        """The gate's metrics with this entry's primary metric first."""
        found = metrics_of(self.family, self.kind)
        return {self.metric: found[self.metric], **found}

    def feature_columns(self, frame: pd.DataFrame) -> list[str]:
        """The declared features present in `frame`; by default every column the source
        mapped except ids, times, labels, metadata and the text (which models take apart)."""
        if self.features is not None:
            return [c for c in self.features if c in frame]
        schema = schema_for(self.table)
        # Time enters the models through the split and the history features, never raw.
        return [
            c
            for c in frame.columns
            if c not in (schema.id_column, schema.text_column)
            and not pd.api.types.is_datetime64_any_dtype(frame[c])
            and not is_label(c)
            and not is_metadata(c)
        ]

    def keep_at_open(self, frame: pd.DataFrame) -> str | None:
        """The column holding the label's value as set at open (the keep-at-open baseline)."""
        column = self.at_open or self.label.removeprefix(LABEL_PREFIX)
        return column if column in frame else None


@dataclass(frozen=True)
class ModelLayout:
    """Where one model's files live under the project root, whatever its family."""

    root: Path
    name: str

    @property
    def model(self) -> Path:
        return self.root / "models" / f"{self.name}.joblib"

    @property
    def reports(self) -> Path:
        return self.root / "reports" / "models" / self.name

    @property
    def train_summary(self) -> Path:
        return self.reports / "train.json"

    @property
    def evaluation(self) -> Path:
        """Figures and tables of the evaluation on test: one folder, whatever the family."""
        return self.reports / "evaluation"

    @property
    def metrics(self) -> Path:
        """The few figures `dvc exp show` and `dvc metrics` compare: primary metric, best
        baseline, and whether the model was skipped."""
        return self.reports / "metrics.json"

    @property
    def gate(self) -> Path:
        """The gate's last word on this model, one value `dvc exp show` can compare."""
        return self.reports / "gate.json"

    @property
    def registered(self) -> Path:
        return self.reports / "registered.json"

    @property
    def card(self) -> Path:
        return self.root / "reports" / "model_cards" / f"{self.name}.md"


class Catalog:
    """The models of params.yaml, by name, in the order declared."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self._entries = {e.name: e for e in entries}

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> CatalogEntry:
        """An entry by its name in params.yaml or by its registered name."""
        if name in self._entries:
            return self._entries[name]
        for entry in self._entries.values():
            if entry.registered_model == name:
                return entry
        known = ", ".join(self.names) or "none"
        raise ConfigError(
            f"unknown model {name!r}: params.yaml `models` declares {known}"
            " (use a name from there, or its registered name)"
        )

    def of_table(self, table: str) -> list[CatalogEntry]:
        return [e for e in self._entries.values() if e.table == table]

    def of_family(self, family: Family) -> list[CatalogEntry]:
        return [e for e in self._entries.values() if e.family == family]


def catalog(params: Params) -> Catalog:
    """The catalog of `params`; what the schema alone cannot check is checked here, naming
    the params key and what it expects."""
    entries = []
    for name, spec in params.models.items():
        label = spec.label if spec.label.startswith(LABEL_PREFIX) else LABEL_PREFIX + spec.label
        family = family_of(spec.table, spec.kind)
        if family in ("knowledge", "early_warning", "problems") and spec.table != "tickets":
            raise ConfigError(
                f"models.{name}.kind: {spec.kind!r} on the {spec.table} table; expected the"
                " tickets table"
            )
        if family == "change_risk" and spec.kind != "binary":
            raise ConfigError(
                f"models.{name}.kind: {spec.kind!r} on the changes table; expected 'binary'"
                " (change risk predicts whether a change fails)"
            )
        if family == "change_risk" and label != CHANGE_OUTCOME:
            raise ConfigError(
                f"models.{name}.label: {spec.label!r} on the changes table; expected"
                f" {CHANGE_OUTCOME.removeprefix(LABEL_PREFIX)!r}, the outcome every change"
                " source maps (change_csv: its `outcome` column)"
            )
        # A primary metric decides "better": only those where higher is better qualify.
        primaries = [m for m, higher in metrics_of(family, spec.kind).items() if higher]
        if spec.metric is not None and spec.metric not in primaries:
            raise ConfigError(
                f"models.{name}.metric: {spec.metric!r}; expected one of"
                f" {', '.join(primaries)} for a model of the {spec.table} table"
            )
        entries.append(
            CatalogEntry(
                name=name,
                table=spec.table,
                kind=spec.kind,
                label=label,
                registered_model=spec.registered_model or f"{params.project}-{name}",
                metric=spec.metric or next(iter(metrics_of(family, spec.kind))),
                features=spec.features,
                at_open=spec.at_open,
                owner=spec.owner,
                intended_use=spec.intended_use
                or INTENDED_USE[family].format(label=label.removeprefix(LABEL_PREFIX)),
                limits=LIMITS[family] if spec.limits is None else spec.limits,
            )
        )
    return Catalog(entries)


@dataclass(frozen=True)
class Skipped:
    """Stands in a model's file when its table has nothing to learn it from (the label is
    absent or empty in this export): later stages see it and skip that model, saying why,
    so one export need not carry every label the catalog declares."""

    model: str
    reason: str

    def summary(self) -> str:
        return f"skipped: {self.reason}"


def fit_and_save(entry: CatalogEntry, root: Path, estimator: Any, fit: Callable[[], Any]) -> float:
    """Run `fit`; a fitting error becomes one naming the model's params key. The fitted
    estimator is saved atomically to the model's file; returns the seconds the fit took."""
    import joblib

    started = time.perf_counter()
    try:
        fit()
    except ValueError as exc:
        raise ItsmMlError(
            f"model {entry.name} (models.{entry.name} in params.yaml): {exc}"
        ) from exc
    seconds = time.perf_counter() - started
    with io.atomic_path(ModelLayout(root, entry.name).model) as tmp:
        joblib.dump(estimator, tmp)
    return seconds


def write_registered(registered: Any, layout: ModelLayout) -> None:
    """Which registry version an evaluation registered (read by drift and the gate). No run
    id: it differs on every machine, and this file is tracked in git."""
    io.write_json(
        {
            "name": registered.name,
            "version": registered.version,
            "model_uri": registered.model_uri,
        },
        layout.registered,
    )


def write_headline(
    layout: ModelLayout,
    entry: CatalogEntry,
    metrics: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
) -> None:
    """The figures compared across experiments: the primary metric beside the best baseline
    on the same rows. Everything else stays in the evaluation folder and in MLflow."""
    metric = entry.metric
    best = best_baseline(metric, baselines)
    io.write_json(
        {"skipped": False, metric: metrics[metric], f"best baseline {metric}": best},
        layout.metrics,
    )


def best_baseline(metric: str, baselines: dict[str, dict[str, Any]]) -> float:
    """The best baseline's `metric` (higher is better: primaries only), NaN without one."""
    return max(
        (b[metric] for b in baselines.values() if metric in b and b[metric] == b[metric]),
        default=float("nan"),
    )


def write_skipped(layout: ModelLayout, reason: str) -> None:
    io.write_json({"skipped": True, "reason": reason}, layout.metrics)


@dataclass(frozen=True)
class LabelFound:
    """A label column of an export, and the model the catalog has for it (if any)."""

    column: str
    classes: int
    kind: str
    model: str | None

    def declaration(self, table: str) -> str:
        """The line to add under `models:` in params.yaml to learn this label."""
        name = self.column.removeprefix(LABEL_PREFIX).replace("_", "-")
        label = self.column.removeprefix(LABEL_PREFIX)
        return f"  {name}: {{table: {table}, kind: {self.kind}, label: {label}}}"


def labels_found(table: str, frame: pd.DataFrame, known: Catalog) -> list[LabelFound]:
    """Every text or yes/no label of `frame` with two values or more; counts (integer labels
    such as reassignments) and references (resolution notes, problem ids) are left out: they
    are not classes to route by."""
    declared = {e.label: e.name for e in known.of_table(table)}
    references = set(schema_for(table).reference_columns)
    found = []
    for column in frame.columns:
        values = frame[column]
        counts = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if not is_label(column) or counts or column in references:
            continue
        classes = int(values.dropna().astype(str).nunique())
        if classes >= 2:
            kind = "binary" if classes == 2 else "multiclass"
            found.append(LabelFound(column, classes, kind, declared.get(column)))
    return found


def nothing_to_learn(entry: CatalogEntry, frame: pd.DataFrame) -> str | None:
    """Why `frame` cannot train `entry`, or None when it can."""
    where = f"models.{entry.name}.label in params.yaml"
    if entry.label not in frame:
        return (
            f"the {entry.table} table has no `{entry.label}` column ({where});"
            " map that label in the source, or remove the model"
        )
    # A recurrence model learns from no label: validation's problem links choose its
    # threshold and test's judge it (`problems.training.nothing_to_judge`).
    if entry.family == "problems":
        return None
    known = frame[entry.label].dropna()
    if known.empty:
        return f"`{entry.label}` is empty in the training split ({where})"
    # A detector's label links the incidents of one outage: one outage is enough to judge by.
    if entry.family != "early_warning" and known.astype(str).nunique() < 2:
        return f"`{entry.label}` has one value only in the training split ({known.iloc[0]!r})"
    return None


def check_kind(entry: CatalogEntry, frame: pd.DataFrame) -> None:
    """A binary model whose label has more than two values is a declaration error."""
    values = frame[entry.label].dropna().astype(str).nunique()
    if entry.kind == "binary" and values > 2:
        raise ConfigError(
            f"models.{entry.name}.kind: 'binary', but `{entry.label}` has {values} values in"
            " the training split; expected 'multiclass'"
        )


def skipped_models(
    table: str, frame: pd.DataFrame, known: Catalog
) -> list[tuple[CatalogEntry, str]]:
    """Models of the catalog that this export cannot train, each with why."""
    found = ((e, nothing_to_learn(e, frame)) for e in known.of_table(table))
    return [(entry, reason) for entry, reason in found if reason is not None]
