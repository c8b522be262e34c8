"""From request records to answers, with the champions live at the moment of scoring.

Records are mapped onto the canonical tables by the ingestion adapters
(`sources.servicenow`), so a served ticket is read exactly as a trained one was. Each call
takes one snapshot of the champions: every answer of a call names the version that made it,
even if an alias moves meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from itsm_ml.data.sources.servicenow import (
    INCIDENT_FIELDS,
    change_requests_to_canonical,
    incidents_to_canonical,
)
from itsm_ml.errors import SourceError
from itsm_ml.serving import answers
from itsm_ml.serving.api import (
    AnomalyBatch,
    AnomalyResult,
    ChangeRequest,
    ChangeRiskResult,
    Incident,
    ResolutionResult,
    ScoredPoint,
    SimilarResult,
    TriageAnswer,
    TriageResult,
    plain,
)
from itsm_ml.serving.champions import Champions, Loaded


class NoChampionError(Exception):
    """No champion can answer: the service says 503 and which model to promote."""


@dataclass(frozen=True)
class TriageTarget:
    name: str  # routing, category, ...
    registered_model: str
    field: str  # the incident field the answer sets


def incident_frame(records: Sequence[Incident]) -> pd.DataFrame:
    columns = ("number", "opened_at", "short_description", "description", *INCIDENT_FIELDS)
    data = {c: [plain(getattr(r, c)) for r in records] for c in columns}
    return pd.DataFrame(data, dtype="string")


CHANGE_REQUEST_FIELDS = (
    *("number", "opened_at", "start_date", "end_date"),
    *("type", "cmdb_ci", "business_service", "assignment_group"),
)


def change_frame(records: Sequence[ChangeRequest]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    data: dict[str, list[Any]] = {
        c: [plain(getattr(r, c)) for r in records] for c in CHANGE_REQUEST_FIELDS
    }
    measures = sorted({k for r in records for k in (r.measures or {})})
    data["size"] = [r.size for r in records]
    for name in measures:
        data[name] = [(r.measures or {}).get(name) for r in records]
    frame = pd.DataFrame(data).astype("string")
    return frame, ("size", *measures)


class TriageScorer:
    def __init__(self, champions: Champions, targets: Sequence[TriageTarget]) -> None:
        self.champions = champions
        self.targets = list(targets)

    def snapshot(self) -> dict[str, Loaded]:
        found = {t.name: self.champions.get(t.registered_model) for t in self.targets}
        live = {name: loaded for name, loaded in found.items() if loaded is not None}
        if not live:
            names = ", ".join(t.registered_model for t in self.targets)
            raise NoChampionError(
                f"no champion for {names}; promote one with `itsm-ml promote MODEL`"
            )
        return live

    def score(self, records: Sequence[Incident]) -> list[TriageResult]:
        live = self.snapshot()
        tickets = incidents_to_canonical(incident_frame(records))
        per_target: dict[str, list[dict[str, Any]]] = {}
        for target in self.targets:
            if target.name in live:
                answer = live[target.name].model.respond(tickets)
                per_target[target.name] = answer.to_dict("records")
        unavailable = [t.name for t in self.targets if t.name not in live]
        fields = {t.name: t.field for t in self.targets}
        results = []
        for i, record in enumerate(records):
            results.append(
                TriageResult(
                    sys_id=record.sys_id,
                    number=record.number,
                    answers={
                        name: TriageAnswer(
                            model=live[name].name,
                            version=live[name].version,
                            field=fields[name],
                            **answers.triage_record(rows[i]),
                        )
                        for name, rows in per_target.items()
                    },
                    unavailable=unavailable,
                )
            )
        return results


def champion(champions: Champions, registered_model: str | None, missing: str) -> Loaded:
    """The live champion of `registered_model`, or why nothing can answer (`missing`: what
    the catalog lacks when it declares no such model)."""
    if registered_model is None:
        raise NoChampionError(f"params.yaml declares {missing} under `models`")
    loaded = champions.get(registered_model)
    if loaded is None:
        raise NoChampionError(
            f"no champion for {registered_model}; promote one with "
            f"`itsm-ml promote {registered_model}`"
        )
    return loaded


class ChangeRiskScorer:
    def __init__(self, champions: Champions, registered_model: str | None) -> None:
        self.champions = champions
        self.registered_model = registered_model

    def score(self, records: Sequence[ChangeRequest]) -> list[ChangeRiskResult]:
        loaded = champion(self.champions, self.registered_model, "no model of the changes table")
        frame, numeric = change_frame(records)
        changes = change_requests_to_canonical(frame, numeric=numeric)
        rows = loaded.model.respond(changes).to_dict("records")
        return [
            ChangeRiskResult(
                sys_id=record.sys_id,
                number=record.number,
                model=loaded.name,
                version=loaded.version,
                **answers.change_risk_record(row),
            )
            for record, row in zip(records, rows, strict=True)
        ]


@dataclass(frozen=True)
class KnowledgeTarget:
    registered_model: str
    field: str  # the incident field a suggested resolution is for (close_code, ...)


class KnowledgeScorer:
    """Similar earlier tickets and the resolution they suggest, from the champion of the
    catalog's first `similarity` model."""

    def __init__(self, champions: Champions, target: KnowledgeTarget | None) -> None:
        self.champions = champions
        self.target = target

    def _answer(self, records: Sequence[Incident], k: int | None) -> tuple[Loaded, list[Any]]:
        registered = self.target.registered_model if self.target else None
        loaded = champion(self.champions, registered, "no model of kind `similarity`")
        tickets = incidents_to_canonical(incident_frame(records))
        return loaded, loaded.model.respond(tickets, k=k).to_dict("records")

    def similar(self, records: Sequence[Incident], k: int | None = None) -> list[SimilarResult]:
        loaded, rows = self._answer(records, k)
        return [
            SimilarResult(
                sys_id=record.sys_id,
                number=record.number,
                model=loaded.name,
                version=loaded.version,
                neighbours=row["neighbours"],
            )
            for record, row in zip(records, rows, strict=True)
        ]

    def resolution(
        self, records: Sequence[Incident], k: int | None = None
    ) -> list[ResolutionResult]:
        loaded, rows = self._answer(records, k)
        assert self.target is not None
        return [
            ResolutionResult(
                sys_id=record.sys_id,
                number=record.number,
                model=loaded.name,
                version=loaded.version,
                field=self.target.field,
                neighbours=row["neighbours"],
                **answers.resolution_record(row),
            )
            for record, row in zip(records, rows, strict=True)
        ]


class PointsRefusedError(Exception):
    """Points a detector cannot score (earlier than its series' last): the service says 422."""


@dataclass(frozen=True)
class DetectorTarget:
    name: str  # its key under `models:`
    registered_model: str


class AnomalyScorer:
    """Points pushed by an integration, scored by the champion of a detector of the catalog.

    A detector is stateful: each series' recent past is in the loaded champion, and every
    batch moves it on. Batches on one detector are scored one at a time (a lock per model),
    in time order per series. A promotion swaps in the new version with the state it was
    registered with: series restart from where its training stopped."""

    def __init__(self, champions: Champions, targets: Sequence[DetectorTarget]) -> None:
        self.champions = champions
        self.targets = list(targets)
        self._locks = {t.registered_model: threading.Lock() for t in self.targets}

    def target(self, model: str | None) -> DetectorTarget | None:
        if model is None:
            return self.targets[0] if self.targets else None
        for target in self.targets:
            if model in (target.name, target.registered_model):
                return target
        known = ", ".join(t.name for t in self.targets) or "none"
        raise PointsRefusedError(
            f"model {model!r} is not a detector of the catalog (detectors: {known})"
        )

    def score(self, batch: AnomalyBatch) -> list[AnomalyResult]:
        target = self.target(batch.model)
        registered = target.registered_model if target else None
        loaded = champion(self.champions, registered, "no model of kind `detector`")
        points = pd.DataFrame(
            {
                "series": [p.series for p in batch.points],
                "timestamp": [_utc(p.timestamp) for p in batch.points],
                "value": [p.value for p in batch.points],
            }
        )
        with self._locks[loaded.name]:
            try:
                scored = loaded.model.respond(points)
            except SourceError as exc:  # refused before any state moved
                raise PointsRefusedError(str(exc)) from exc
        rows = scored.to_dict("records")
        return [
            AnomalyResult(
                model=loaded.name,
                version=loaded.version,
                threshold=float(loaded.model.threshold_),
                alarms=int(scored["alarm"].sum()),
                points=[
                    ScoredPoint(
                        series=str(row["series"]),
                        timestamp=row["timestamp"],
                        value=float(row["value"]),
                        score=float(row["score"]),
                        alarm=bool(row["alarm"]),
                        basis=str(row["basis"]),
                    )
                    for row in rows
                ],
            )
        ]


def _utc(moment: datetime) -> datetime:
    """Naive UTC, as the detectors were trained on: an offset is converted, then dropped."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
