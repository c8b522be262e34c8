"""The `ticket-similarity` model: an index of past tickets, the retrieval method validation
chose, and the resolution suggestion learned from the neighbours.

Fitting indexes the training tickets, then asks each candidate method for the neighbours of
the validation tickets and keeps the one whose neighbours are most relevant: the duplicates
the export links (`label_duplicate_of`) where it has enough of them, otherwise neighbours
that share the ticket's resolution (the catalog entry's label). The served index is then
rebuilt on training and validation tickets together, so the newest resolutions count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from itsm_ml.errors import ItsmMlError
from itsm_ml.knowledge.evaluation import label_precision_at, ranks_of, recall_at
from itsm_ml.knowledge.relevance import fit_relevance
from itsm_ml.knowledge.resolution import ResolutionSuggester, Suggestions
from itsm_ml.knowledge.retrieval import METHODS, Neighbours, TicketIndex

DUPLICATE_OF = "label_duplicate_of"
# Fewer validation tickets whose duplicate is indexed: relevance falls back to the label.
MIN_DUPLICATE_QUERIES = 10
# Neighbours the vote reads, and candidate settings of the vote (chosen on validation).
VOTE_NEIGHBOURS = 50
TEMPERATURES = (0.3, 1.0, 3.0)
PRIOR_WEIGHTS = (1.0, 5.0, 20.0)
# The runbook key that reads the suggested resolution instead of a column of the ticket.
SUGGESTION = "suggestion"


class SimilarityModel(BaseEstimator):  # type: ignore[misc]
    def __init__(
        self,
        label: str,
        id_column: str = "ticket_id",
        text_column: str = "text",
        time_column: str | None = "opened_at",
        fields: Sequence[str] = (),
        boost: Mapping[str, float] | None = None,
        filter: Sequence[str] = (),
        methods: Sequence[str] = tuple(METHODS),
        returned: Sequence[str] = (),
        runbooks: Mapping[str, Mapping[str, str]] | None = None,
        k: int = 5,
        max_query_terms: int = 64,
        exact_up_to: int = 100_000,
        candidates: int = 500,
        engine: str = "memory",
        postgres_dsn_env: str = "ITSM_ML_KNOWLEDGE_DSN",
        postgres_table: str = "itsm_ml_tickets",
        target_precision: float = 0.9,
        threshold_z: float = 1.0,
        min_class_support: int = 30,
        top: int = 3,
        seed: int = 0,
    ) -> None:
        self.label = label
        self.id_column = id_column
        self.text_column = text_column
        self.time_column = time_column
        self.fields = fields
        self.boost = boost
        self.filter = filter
        self.methods = methods
        self.returned = returned
        self.runbooks = runbooks
        self.k = k
        self.max_query_terms = max_query_terms
        self.exact_up_to = exact_up_to
        self.candidates = candidates
        self.engine = engine
        self.postgres_dsn_env = postgres_dsn_env
        self.postgres_table = postgres_table
        self.target_precision = target_precision
        self.threshold_z = threshold_z
        self.min_class_support = min_class_support
        self.top = top
        self.seed = seed

    def index_for(self, method: str, tickets: pd.DataFrame) -> TicketIndex:
        """An index of `tickets` by another method with this model's settings (evaluation
        compares the chosen method with plain BM25 over the same tickets)."""
        return self._index(method).fit(tickets.reset_index(drop=True))

    def _index(self, method: str) -> TicketIndex:
        return TicketIndex(
            method=method,
            text_column=self.text_column,
            time_column=self.time_column,
            fields=self.fields,
            boost=self.boost,
            filter=self.filter,
            max_query_terms=self.max_query_terms,
            exact_up_to=self.exact_up_to,
            candidates=self.candidates,
            seed=self.seed,
        )

    def _served_index(self) -> Any:
        """The index answering once fitted: the chosen method in memory, or the engine."""
        if self.engine == "memory":
            return self._index(self.method_)
        if self.engine != "postgres":
            raise ItsmMlError(f"knowledge engine {self.engine!r}; expected memory or postgres")
        from itsm_ml.knowledge.postgres import PostgresIndex

        return PostgresIndex(
            dsn_env=self.postgres_dsn_env,
            table=self.postgres_table,
            versioned=True,
            text_column=self.text_column,
            time_column=self.time_column,
            boost=self.boost,
            filter=self.filter,
            max_query_terms=self.max_query_terms,
            seed=self.seed,
        )

    def _suggester(self, prior_weight: float) -> ResolutionSuggester:
        return ResolutionSuggester(
            prior_weight=prior_weight,
            top=self.top,
            target_precision=self.target_precision,
            threshold_z=self.threshold_z,
            min_class_support=self.min_class_support,
            seed=self.seed,
        )

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> SimilarityModel:
        unknown = sorted(set(self.methods) - set(METHODS))
        if unknown or not self.methods:
            raise ItsmMlError(
                f"retrieval methods {unknown or '[]'}; expected some of {list(METHODS)}"
            )
        if self.label not in train:
            raise ItsmMlError(f"no `{self.label}` column in the training tickets")
        indexed = train.reset_index(drop=True)
        queries = valid.reset_index(drop=True)
        self.selection_: dict[str, dict[str, float]] = {}
        neighbours: dict[str, Neighbours] = {}
        for method in self.methods:
            index = self._index(method).fit(indexed)
            if not index.signals_:  # no text for a text method, no fields for `fields`
                continue
            neighbours[method] = index.search(queries, VOTE_NEIGHBOURS)
            self.selection_[method] = self._relevance(neighbours[method], indexed, queries)
        if not self.selection_:
            raise ItsmMlError(
                f"no ticket text in `{self.text_column}` and no field among {list(self.fields)}"
                f" to compare tickets by (methods tried: {list(self.methods)})"
            )
        self.relevance_metric_ = next(iter(next(iter(self.selection_.values()))))
        self.method_ = max(
            self.selection_,
            key=lambda m: (self.selection_[m][self.relevance_metric_], -self.methods.index(m)),
        )
        suggester = self._fit_suggester(neighbours[self.method_], indexed, queries)
        self.relevance_ = fit_relevance(
            neighbours[self.method_], _labels(indexed[self.label]), _labels(queries[self.label])
        )
        # Serve from everything known: validation tickets are the newest resolutions.
        served = pd.concat([indexed, queries], ignore_index=True)
        self.index_ = self._served_index().fit(served)
        self.suggester_: ResolutionSuggester = suggester.with_labels(served[self.label])
        self.returned_ = [c for c in dict.fromkeys([self.label, *self.returned]) if c in served]
        self.records_ = (
            served[[self.id_column, *self.returned_]].astype("string").reset_index(drop=True)
        )
        if self.time_column and self.time_column in served:
            self.records_[self.time_column] = served[self.time_column].to_numpy()
        # What drift and the gate read, as they read a triage model's.
        self.classes_ = self.suggester_.classes_
        self.thresholds_ = self.suggester_.thresholds_
        self.calibrator_ = self.suggester_.calibrator_
        self.text_column_ = self.text_column if self.index_.has_text_ else None
        self.categorical_ = list(self.index_.fields_)
        return self

    @property
    def uses_text_(self) -> bool:
        return self.text_column_ is not None

    def _relevance(
        self, neighbours: Neighbours, indexed: pd.DataFrame, queries: pd.DataFrame
    ) -> dict[str, float]:
        """How relevant the neighbours of validation tickets are; the first figure decides."""
        out: dict[str, float] = {}
        if DUPLICATE_OF in queries:
            position = {v: i for i, v in enumerate(indexed[self.id_column].astype(str))}
            partners = [
                position.get(str(v), -1) if v == v and v is not None else -1
                for v in queries[DUPLICATE_OF]
            ]
            asked = np.flatnonzero(np.asarray(partners) >= 0)
            if len(asked) >= MIN_DUPLICATE_QUERIES:
                found = Neighbours(neighbours.positions[asked], neighbours.scores[asked])
                ranks = ranks_of(found, [partners[i] for i in asked])
                out.update({f"duplicate {k}": v for k, v in recall_at(ranks).items()})
        labels = indexed[self.label].astype("string").to_numpy(dtype=object, na_value=None)
        own = queries[self.label].astype("string").to_numpy(dtype=object, na_value=None)
        out[f"precision@{self.k}"] = label_precision_at(neighbours, labels, own, self.k)
        if "duplicate recall@10" in out:
            out = {"duplicate recall@10": out.pop("duplicate recall@10"), **out}
        return out

    def _fit_suggester(
        self, neighbours: Neighbours, indexed: pd.DataFrame, queries: pd.DataFrame
    ) -> ResolutionSuggester:
        """The vote's temperature and prior weight with the best validation accuracy, then
        its calibration and auto-suggest thresholds on the same tickets."""
        truth = queries[self.label].astype("string")
        known = truth.notna().to_numpy()
        best: tuple[float, float, float] | None = None
        for temperature in TEMPERATURES:
            for prior_weight in PRIOR_WEIGHTS:
                suggester = self._suggester(prior_weight).fit(indexed[self.label])
                softened = _softened(neighbours, temperature)
                predicted = suggester.classes_[suggester.logits(softened).argmax(axis=1)]
                accuracy = (
                    float(np.mean(predicted[known] == truth[known].to_numpy()))
                    if known.any()
                    else 0.0
                )
                if best is None or accuracy > best[0]:
                    best = (accuracy, temperature, prior_weight)
        assert best is not None
        self.vote_accuracy_, self.temperature_, prior_weight = best
        suggester = self._suggester(prior_weight).fit(indexed[self.label])
        return suggester.calibrate(_softened(neighbours, self.temperature_), truth)

    def neighbours(
        self, tickets: pd.DataFrame, k: int | None = None, exclude: Sequence[int] | None = None
    ) -> Neighbours:
        """The `k` most similar indexed tickets; a ticket that is itself indexed (the same
        id, as when an export is scored again) never gets itself back."""
        check_is_fitted(self, "index_")
        tickets = tickets.reset_index(drop=True)
        if exclude is None and self.id_column in tickets:
            positions = self._id_positions()
            exclude = [
                -1 if pd.isna(v) else positions.get(str(v), -1) for v in tickets[self.id_column]
            ]
        found: Neighbours = self.index_.search(tickets, k or self.k, exclude)
        return found

    def _id_positions(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_ids_cache")
        if cached is None:
            ids = self.records_[self.id_column].astype(str)
            cached = {value: position for position, value in enumerate(ids)}
            self.__dict__["_ids_cache"] = cached
        return cached

    def suggest(self, tickets: pd.DataFrame, exclude: Sequence[int] | None = None) -> Suggestions:
        found = self.neighbours(tickets, VOTE_NEIGHBOURS, exclude)
        return self.suggester_.suggest(_softened(found, self.temperature_))

    def predict_proba(self, tickets: pd.DataFrame, *, calibrated: bool = True) -> np.ndarray:
        """(tickets, classes_) probability of each resolution, from the neighbours' vote."""
        found = _softened(self.neighbours(tickets, VOTE_NEIGHBOURS), self.temperature_)
        if calibrated:
            return self.suggester_.probabilities(found)
        logits = self.suggester_.logits(found)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))

    def respond(self, tickets: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """What the ITSM receives per ticket: the suggested resolution with its calibrated
        probability, whether it may be applied unchecked (`auto_suggest`), the top
        suggestions, the runbook they point to, and the `k` most similar earlier tickets
        with their similarity, relevance and resolution fields (`k`: another number of them)."""
        tickets = tickets.reset_index(drop=True)
        shown = k or self.k
        found = self.neighbours(tickets, max(VOTE_NEIGHBOURS, shown))
        suggestions = self.suggester_.suggest(_softened(found, self.temperature_))
        first = suggestions.classes[:, 0].astype(str) if len(tickets) else np.array([], str)
        runbooks = [self._runbook(tickets, row, first) for row in range(len(tickets))]
        return pd.DataFrame(
            {
                "label": first.astype(object),
                "probability": suggestions.probabilities[:, 0].astype(float),
                "auto_suggest": suggestions.auto.astype(bool),
                "suggestions": [list(row.astype(str)) for row in suggestions.classes],
                "suggestion_probabilities": [
                    [float(p) for p in row] for row in suggestions.probabilities
                ],
                "runbook": [r[0] for r in runbooks],
                "runbook_basis": [r[1] for r in runbooks],
                "neighbours": self._records(found, shown),
            }
        )

    def _runbook(self, tickets: pd.DataFrame, row: int, first: np.ndarray) -> tuple[str, str]:
        """The first runbook rule that matches: by the suggested resolution, or by a column
        of the ticket; ("", "") when none does."""
        for source, catalogue in (self.runbooks or {}).items():
            if source == SUGGESTION:
                value = str(first[row])
            elif source in tickets and pd.notna(tickets.at[row, source]):
                value = str(tickets.at[row, source])
            else:
                continue
            if value in catalogue:
                return catalogue[value], f"{source} = {value}"
        return "", ""

    def _records(self, found: Neighbours, k: int) -> list[list[dict[str, Any]]]:
        """Per ticket, its first `k` neighbours: id, open time, score, relevance and the
        returned fields."""
        relevance = self.relevance_.probabilities(found)
        columns = self._record_columns()
        out: list[list[dict[str, Any]]] = []
        for row in range(len(found)):
            records = []
            for rank in range(min(k, found.positions.shape[1])):
                position = found.positions[row, rank]
                if position < 0:
                    break
                values = {key: values[position] for key, values in columns.items()}
                records.append(
                    {
                        "id": values.pop(self.id_column),
                        "opened_at": values.pop(self.time_column or "", None),
                        "score": round(float(found.scores[row, rank]), 4),
                        "relevance": round(float(relevance[row, rank]), 4),
                        "fields": values,
                    }
                )
            out.append(records)
        return out

    def _record_columns(self) -> dict[str, np.ndarray]:
        """The returned columns as JSON-ready object arrays, built once per process (a
        pandas row lookup per neighbour cost more than the search on small indexes)."""
        cached: dict[str, np.ndarray] | None = self.__dict__.get("_columns_cache")
        if cached is None:
            cached = {
                column: np.array(
                    [None if pd.isna(v) else _plain(v) for v in self.records_[column]],
                    dtype=object,
                )
                for column in self.records_.columns
            }
            self.__dict__["_columns_cache"] = cached
        return cached

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        for derived in ("_columns_cache", "_ids_cache"):  # the model file keeps its bytes
            state.pop(derived, None)
        return state

    def similar(self, tickets: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
        """One row per (ticket, neighbour): rank, the neighbour's id, score and resolution."""
        found = self.neighbours(tickets, k)
        rows: list[dict[str, Any]] = []
        for query, (positions, scores) in enumerate(
            zip(found.positions, found.scores, strict=True)
        ):
            for rank, (position, score) in enumerate(zip(positions, scores, strict=True), start=1):
                if position < 0:
                    break
                record = self.records_.iloc[position]
                rows.append(
                    {"query": query, "rank": rank, "score": float(score), **record.to_dict()}
                )
        return pd.DataFrame(rows)


def _labels(values: pd.Series) -> np.ndarray:
    return np.asarray(values.astype("string").to_numpy(dtype=object, na_value=None))


def _plain(value: Any) -> Any:
    """A record's value as JSON has it: times in ISO 8601, everything else as text."""
    if isinstance(value, pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).isoformat()
    return str(value)


def _softened(neighbours: Neighbours, temperature: float) -> Neighbours:
    return Neighbours(neighbours.positions, neighbours.scores / temperature)
