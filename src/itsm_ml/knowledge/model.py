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
from itsm_ml.knowledge.resolution import ResolutionSuggester, Suggestions
from itsm_ml.knowledge.retrieval import METHODS, Neighbours, TicketIndex

DUPLICATE_OF = "label_duplicate_of"
# Fewer validation tickets whose duplicate is indexed: relevance falls back to the label.
MIN_DUPLICATE_QUERIES = 10
# Neighbours the vote reads, and candidate settings of the vote (chosen on validation).
VOTE_NEIGHBOURS = 50
TEMPERATURES = (0.3, 1.0, 3.0)
PRIOR_WEIGHTS = (1.0, 5.0, 20.0)


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
        k: int = 5,
        max_query_terms: int = 64,
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
        self.k = k
        self.max_query_terms = max_query_terms
        self.target_precision = target_precision
        self.threshold_z = threshold_z
        self.min_class_support = min_class_support
        self.top = top
        self.seed = seed

    def _index(self, method: str) -> TicketIndex:
        return TicketIndex(
            method=method,
            text_column=self.text_column,
            time_column=self.time_column,
            fields=self.fields,
            boost=self.boost,
            filter=self.filter,
            max_query_terms=self.max_query_terms,
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
        # Serve from everything known: validation tickets are the newest resolutions.
        served = pd.concat([indexed, queries], ignore_index=True)
        self.index_ = self._index(self.method_).fit(served)
        self.suggester_: ResolutionSuggester = suggester.with_labels(served[self.label])
        self.returned_ = [c for c in dict.fromkeys([self.label, *self.returned]) if c in served]
        self.records_ = (
            served[[self.id_column, *self.returned_]].astype("string").reset_index(drop=True)
        )
        if self.time_column and self.time_column in served:
            self.records_[self.time_column] = served[self.time_column].to_numpy()
        return self

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
        check_is_fitted(self, "index_")
        return self.index_.search(tickets.reset_index(drop=True), k or self.k, exclude)

    def suggest(self, tickets: pd.DataFrame, exclude: Sequence[int] | None = None) -> Suggestions:
        found = self.neighbours(tickets, VOTE_NEIGHBOURS, exclude)
        return self.suggester_.suggest(_softened(found, self.temperature_))

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


def _softened(neighbours: Neighbours, temperature: float) -> Neighbours:
    return Neighbours(neighbours.positions, neighbours.scores / temperature)
