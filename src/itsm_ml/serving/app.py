"""The scoring service the ITSM calls: FastAPI application over the registry's champions.

Wiring only: champions (loading and alias polling), scorers (records to answers), tokens,
audit trail and write-back are each their own module; this one maps them onto routes,
status codes and the OpenAPI schema.
"""

# No `from __future__ import annotations`: FastAPI reads the closures' annotations at
# runtime, and the dependencies in them are local names.
import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from itsm_ml import __version__
from itsm_ml.catalog import catalog
from itsm_ml.config import Params, resolve_path
from itsm_ml.data.sources.servicenow import INCIDENT_FIELDS, TABLE_LABELS
from itsm_ml.serving.api import (
    AnomalyBatch,
    AnomalyResult,
    ChangeBatch,
    ChangeRequest,
    ChangeRiskBatchResult,
    ChangeRiskResult,
    Health,
    Incident,
    IncidentBatch,
    MicroRecordBatch,
    MicroRecordsLogged,
    Models,
    ModelStatus,
    ResolutionBatchResult,
    ResolutionResult,
    SimilarBatchResult,
    SimilarResult,
    TriageBatchResult,
    TriageResult,
    parse_body,
)
from itsm_ml.serving.audit import AuditLog
from itsm_ml.serving.auth import CachedTokens
from itsm_ml.serving.batching import MicroBatcher
from itsm_ml.serving.champions import Champions
from itsm_ml.serving.micro_records import MicroRecordLog
from itsm_ml.serving.scoring import (
    AnomalyScorer,
    ChangeRiskScorer,
    DetectorTarget,
    KnowledgeScorer,
    KnowledgeTarget,
    NoChampionError,
    PointsRefusedError,
    TriageScorer,
    TriageTarget,
)
from itsm_ml.serving.tokens import STORE_NAME, TokenRecord
from itsm_ml.serving.updates import Update, resolution_update, triage_update
from itsm_ml.serving.writeback import ServiceNowWriter, WriteBackError

log = logging.getLogger(__name__)

TICKETS = "score:tickets"
CHANGES = "score:changes"
METRICS = "score:metrics"
MICRO_RECORDS = "write:micro-records"
MODELS = "models:read"


@dataclass
class Service:
    """Everything the routes share; built once per application."""

    params: Params
    champions: Champions
    triage: TriageScorer
    change_risk: ChangeRiskScorer
    knowledge: KnowledgeScorer
    anomaly: AnomalyScorer
    tokens: CachedTokens
    audit: AuditLog
    micro_records: MicroRecordLog
    writer: ServiceNowWriter | None
    # Tickets only: a change's conflicts depend on the changes scored with it, so unrelated
    # requests must not share a call.
    triage_batcher: MicroBatcher[Incident, TriageResult]


def triage_targets(params: Params) -> list[TriageTarget]:
    reverse = {canonical: field for field, canonical in INCIDENT_FIELDS.items()}
    targets = []
    for entry in catalog(params).of_family("triage"):
        at_open = entry.at_open or entry.label.removeprefix("label_")
        targets.append(
            TriageTarget(entry.name, entry.registered_model, reverse.get(at_open, at_open))
        )
    return targets


def change_risk_model(params: Params) -> str | None:
    """The registered model `/v1/change-risk` answers with: the catalog's first model of
    the changes table."""
    found = catalog(params).of_family("change_risk")
    return found[0].registered_model if found else None


def knowledge_target(params: Params) -> KnowledgeTarget | None:
    """The model `/v1/similar` and `/v1/resolution` answer with: the catalog's first model of
    kind `similarity`, and the incident field its label is (close_code for closed_code)."""
    found = catalog(params).of_family("knowledge")
    if not found:
        return None
    reverse = {canonical: field for field, canonical in TABLE_LABELS.items()}
    entry = found[0]
    return KnowledgeTarget(
        entry.registered_model,
        reverse.get(entry.label, entry.label.removeprefix("label_")),
    )


def detector_targets(params: Params) -> list[DetectorTarget]:
    """The detectors `/v1/anomaly` answers with: the catalog's models of kind `detector`."""
    return [
        DetectorTarget(e.name, e.registered_model)
        for e in catalog(params).of_family("early_warning")
    ]


def build_service(
    params: Params,
    root: Path,
    *,
    champions: Champions | None = None,
    writer: ServiceNowWriter | None = None,
) -> Service:
    targets = triage_targets(params)
    change_model = change_risk_model(params)
    knowledge = knowledge_target(params)
    detectors = detector_targets(params)
    names = [
        *(t.registered_model for t in targets),
        *([change_model] if change_model else []),
        *([knowledge.registered_model] if knowledge else []),
        *(d.registered_model for d in detectors),
    ]
    champions = champions or Champions(names)
    serving = params.serving
    if writer is None and serving.writeback.url:
        writer = ServiceNowWriter.from_env(
            serving.writeback.url,
            user_env=serving.writeback.user_env,
            password_env=serving.writeback.password_env,
            table=serving.writeback.table,
            timeout=serving.writeback.timeout_seconds,
            max_attempts=serving.writeback.max_attempts,
        )
    triage = TriageScorer(champions, targets)
    change_risk = ChangeRiskScorer(champions, change_model)
    wait = serving.batch_wait_ms / 1000
    return Service(
        params=params,
        champions=champions,
        triage=triage,
        change_risk=change_risk,
        knowledge=KnowledgeScorer(champions, knowledge),
        anomaly=AnomalyScorer(champions, detectors),
        tokens=CachedTokens(root / STORE_NAME),
        audit=AuditLog(
            resolve_path(serving.audit_log, root), serving.audit_max_bytes, serving.audit_backups
        ),
        micro_records=MicroRecordLog(resolve_path(serving.micro_records_log, root)),
        writer=writer,
        triage_batcher=MicroBatcher(triage.score, wait_seconds=wait, max_items=64),
    )


def create_app(service: Service, *, poll: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if poll:
            service.champions.start(service.params.serving.poll_seconds)
        await service.triage_batcher.start()
        try:
            yield
        finally:
            await service.triage_batcher.stop()
            service.champions.stop()
            service.audit.close()
            if service.writer is not None:
                service.writer.close()

    app = FastAPI(
        title="itsm-ml scoring service",
        version=__version__,
        summary="Ticket triage and change risk from the MLflow registry's champions.",
        description=(
            "Send ServiceNow-shaped records (or metric points, to `/v1/anomaly`); every answer "
            "names the registered model version that produced it. Bearer tokens carry scopes: "
            "`score:tickets`, `score:changes`, `score:metrics`, `write:micro-records`,"
            " `models:read` (`admin` holds "
            "all); create them with `itsm-ml token create`."
        ),
        lifespan=lifespan,
    )
    app.router.route_class = _JsonRoute  # before the routes: each is made of this class
    app.add_middleware(BodyLimit, limit=service.params.serving.max_body_bytes)
    # Added last, so it wraps BodyLimit: the clock starts before any byte of the body is read.
    app.add_middleware(BodyTimeout, seconds=service.params.serving.body_timeout_seconds)
    app.add_middleware(RequestId)  # outermost: every answer, 413 and 408 too, is named
    _errors(app)
    bearer = HTTPBearer(auto_error=False, description="A token from `itsm-ml token create`.")

    # The dependencies are coroutines: FastAPI runs a plain function in its thread pool,
    # two thread hops per request for a dictionary lookup and a file stat.
    def scope(required: str) -> Callable[..., Awaitable[TokenRecord]]:
        async def check(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> TokenRecord:
            record = service.tokens.verify(credentials.credentials) if credentials else None
            if record is None:
                raise HTTPException(
                    401,
                    "missing or invalid bearer token",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if not record.allows(required):
                raise HTTPException(403, f"token {record.id} lacks the scope {required!r}")
            return record

        return check

    async def ready() -> None:
        if not service.champions.ready:
            raise HTTPException(503, "models are loading", headers={"Retry-After": "5"})

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        """The process is up (it may still be loading models: see /readyz)."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["operations"],
        responses={503: {"model": Health, "description": "Not ready yet"}},
    )
    def readyz() -> JSONResponse:
        """Ready once the registry was read and every champion found is loaded."""
        loaded = {s.name: s.loaded.version for s in service.champions.statuses() if s.loaded}
        is_ready = service.champions.ready and bool(loaded)
        body = Health(status="ready" if is_ready else "not ready", detail={"champions": loaded})
        return JSONResponse(body.model_dump(), status_code=200 if is_ready else 503)

    @app.get("/v1/models", response_model=Models, tags=["models"])
    def models(token: Annotated[TokenRecord, Depends(scope(MODELS))]) -> Models:
        """The registered models this service answers with, their live versions and history."""
        serves = {t.registered_model: f"tickets: {t.name}" for t in service.triage.targets}
        if service.change_risk.registered_model:
            serves[service.change_risk.registered_model] = "changes: risk"
        if service.knowledge.target:
            serves[service.knowledge.target.registered_model] = "tickets: similar, resolution"
        for detector in service.anomaly.targets:
            serves[detector.registered_model] = f"metrics: anomaly ({detector.name})"
        return Models(
            models=[
                ModelStatus(
                    name=s.name,
                    serves=serves.get(s.name, ""),
                    version=s.loaded.version if s.loaded else None,
                    loaded_at=s.loaded.loaded_at if s.loaded else None,
                    checked_at=s.checked_at,
                    error=s.error,
                    history=s.history,
                )
                for s in service.champions.statuses()
            ]
        )

    async def scored(
        request: Request,
        token: TokenRecord,
        work: Callable[[], Awaitable[list[Any]]],
        describe: Callable[[Any], dict[str, Any]],
    ) -> list[Any]:
        """Run `work`, then audit each answer (or the failure) with the request's latency."""
        start = time.perf_counter()
        request_id = request.state.request_id
        base = {"request": request_id, "token": token.id, "endpoint": request.url.path}
        try:
            results = await work()
        except NoChampionError as exc:
            _audit_failure(service, base, start, 503)
            raise HTTPException(503, str(exc)) from exc
        except PointsRefusedError as exc:
            _audit_failure(service, base, start, 422)
            raise HTTPException(422, str(exc)) from exc
        except Exception as exc:
            # Type and place only: the message may quote the record.
            _audit_failure(service, base, start, 500)
            log.error("request %s: scoring failed: %s at %s", request_id, *_where(exc))
            detail = f"the model failed on this record (request {request_id})"
            raise HTTPException(500, detail) from exc
        latency = round((time.perf_counter() - start) * 1000, 2)
        service.audit.write({**base, **describe(r), "latency_ms": latency} for r in results)
        return results

    def writing_back(
        update_of: Callable[[Any], Update | None],
    ) -> Callable[[list[Any], str], None]:
        """A background task writing each result's update (`update_of`) onto its ticket,
        each outcome audited."""

        def write(results: list[Any], request_id: str) -> None:
            assert service.writer is not None
            for result in results:
                update = update_of(result)
                if update is None:
                    continue
                try:
                    outcome = service.writer.update(
                        update.sys_id, update.fields, update.note, update.key
                    )
                    status: str = outcome.status
                except WriteBackError as exc:
                    status = f"failed ({exc.status or 'unreachable'})"
                    log.warning("write-back of %s failed: %s", update.sys_id, exc)
                service.audit.write(
                    [{"request": request_id, "endpoint": "write-back", "number": result.number,
                      "sys_id": update.sys_id, "write_back": status}]
                )  # fmt: skip

        return write

    write_back = writing_back(triage_update)
    # Suggestions and similar tickets as a work note only: applying a resolution stays with
    # the agent or the ITSM's own flow.
    write_back_note = writing_back(resolution_update)

    def check_write_back(requested: bool) -> None:
        if requested and service.writer is None:
            raise HTTPException(
                409, "write-back is not configured: set serving.writeback.url in params.yaml"
            )

    @app.post(
        "/v1/triage",
        response_model=TriageResult,
        tags=["tickets"],
        dependencies=[Depends(ready)],
        responses={503: {"description": "No champion to answer, or models still loading"}},
    )
    async def triage(
        incident: Incident,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(TICKETS))],
        write_back_: Annotated[
            bool, Query(alias="write_back", description="Also write the answer onto the ticket.")
        ] = False,
    ) -> Response:
        """Route one incident: the auto-route decision, or the top suggestions."""
        check_write_back(write_back_)
        results = await scored(
            request, token, lambda: _one(service.triage_batcher.submit(incident)), _triage_audit
        )
        return _answer(
            request, results[0], _versions_header(results), write_back_, write_back, results
        )

    @app.post(
        "/v1/triage/batch",
        response_model=TriageBatchResult,
        tags=["tickets"],
        dependencies=[Depends(ready)],
    )
    async def triage_batch(
        batch: IncidentBatch,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(TICKETS))],
        write_back_: Annotated[bool, Query(alias="write_back")] = False,
    ) -> Response:
        """Route many incidents in one call (up to `serving.max_batch`)."""
        _check_batch(service, batch.records)
        check_write_back(write_back_)
        results = await scored(
            request, token, lambda: _in_thread(service.triage.score, batch.records), _triage_audit
        )
        body = TriageBatchResult(results=results)
        return _answer(request, body, _versions_header(results), write_back_, write_back, results)

    neighbours_query = Query(
        ge=1, le=50, description="Similar tickets returned; none: `knowledge.k` of params."
    )

    @app.post(
        "/v1/similar",
        response_model=SimilarResult,
        tags=["tickets"],
        dependencies=[Depends(ready)],
        responses={503: {"description": "No champion to answer, or models still loading"}},
    )
    async def similar(
        incident: Incident,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(TICKETS))],
        k: Annotated[int | None, neighbours_query] = None,
    ) -> Response:
        """The most similar earlier tickets, and how each was resolved."""
        results = await scored(
            request,
            token,
            lambda: _in_thread(lambda r: service.knowledge.similar(r, k), [incident]),
            _similar_audit,
        )
        return _answer(request, results[0], _versions_header(results))

    @app.post(
        "/v1/similar/batch",
        response_model=SimilarBatchResult,
        tags=["tickets"],
        dependencies=[Depends(ready)],
    )
    async def similar_batch(
        batch: IncidentBatch,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(TICKETS))],
        k: Annotated[int | None, neighbours_query] = None,
    ) -> Response:
        """Similar earlier tickets for many incidents (up to `serving.max_batch`)."""
        _check_batch(service, batch.records)
        results = await scored(
            request,
            token,
            lambda: _in_thread(lambda r: service.knowledge.similar(r, k), batch.records),
            _similar_audit,
        )
        return _answer(request, SimilarBatchResult(results=results), _versions_header(results))

    @app.post(
        "/v1/resolution",
        response_model=ResolutionResult,
        tags=["tickets"],
        dependencies=[Depends(ready)],
        responses={503: {"description": "No champion to answer, or models still loading"}},
    )
    async def resolution(
        incident: Incident,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(TICKETS))],
        k: Annotated[int | None, neighbours_query] = None,
        write_back_: Annotated[
            bool,
            Query(alias="write_back", description="Also add the suggestions as a work note."),
        ] = False,
    ) -> Response:
        """The resolution similar tickets suggest, its runbook, and the tickets as evidence."""
        check_write_back(write_back_)
        results = await scored(
            request,
            token,
            lambda: _in_thread(lambda r: service.knowledge.resolution(r, k), [incident]),
            _resolution_audit,
        )
        return _answer(
            request, results[0], _versions_header(results), write_back_, write_back_note, results
        )

    @app.post(
        "/v1/resolution/batch",
        response_model=ResolutionBatchResult,
        tags=["tickets"],
        dependencies=[Depends(ready)],
    )
    async def resolution_batch(
        batch: IncidentBatch,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(TICKETS))],
        k: Annotated[int | None, neighbours_query] = None,
        write_back_: Annotated[bool, Query(alias="write_back")] = False,
    ) -> Response:
        """Suggested resolutions for many incidents (up to `serving.max_batch`)."""
        _check_batch(service, batch.records)
        check_write_back(write_back_)
        results = await scored(
            request,
            token,
            lambda: _in_thread(lambda r: service.knowledge.resolution(r, k), batch.records),
            _resolution_audit,
        )
        body = ResolutionBatchResult(results=results)
        return _answer(
            request, body, _versions_header(results), write_back_, write_back_note, results
        )

    @app.post(
        "/v1/change-risk",
        response_model=ChangeRiskResult,
        tags=["changes"],
        dependencies=[Depends(ready)],
        responses={503: {"description": "No champion to answer, or models still loading"}},
    )
    async def change_risk(
        change: ChangeRequest,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(CHANGES))],
    ) -> Response:
        """Risk of one change request: probability of failure, band, reasons, conflicts."""
        results = await scored(
            request, token, lambda: _in_thread(service.change_risk.score, [change]), _change_audit
        )
        return _answer(request, results[0], _versions_header(results))

    @app.post(
        "/v1/change-risk/batch",
        response_model=ChangeRiskBatchResult,
        tags=["changes"],
        dependencies=[Depends(ready)],
    )
    async def change_risk_batch(
        batch: ChangeBatch, request: Request, token: Annotated[TokenRecord, Depends(scope(CHANGES))]
    ) -> Response:
        """Risk of many change requests in one call (up to `serving.max_batch`)."""
        _check_batch(service, batch.records)
        results = await scored(
            request,
            token,
            lambda: _in_thread(service.change_risk.score, batch.records),
            _change_audit,
        )
        body = ChangeRiskBatchResult(results=results)
        return _answer(request, body, _versions_header(results))

    @app.post(
        "/v1/anomaly",
        response_model=AnomalyResult,
        tags=["metrics"],
        dependencies=[Depends(ready)],
        responses={
            422: {"description": "A point earlier than its series' last scored one"},
            503: {"description": "No champion to answer, or models still loading"},
        },
    )
    async def anomaly(
        batch: AnomalyBatch,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(METRICS))],
    ) -> Response:
        """Score pushed points (series, timestamp, value) with a detector's champion, each
        from its series' past only, and move the detector on (up to `serving.max_batch`)."""
        _check_batch(service, batch.points, "points")
        results = await scored(
            request, token, lambda: _in_thread(service.anomaly.score, batch), _anomaly_audit
        )
        return _answer(request, results[0], _versions_header(results))

    @app.post(
        "/v1/micro-records",
        response_model=MicroRecordsLogged,
        tags=["problems"],
        responses={422: {"description": "A record breaks a rule (the field is named)"}},
    )
    async def micro_records(
        batch: MicroRecordBatch,
        request: Request,
        token: Annotated[TokenRecord, Depends(scope(MICRO_RECORDS))],
    ) -> Response:
        """Log fixes made outside the desk (a chat assistant, self-service) without opening a
        ticket, for problem candidates to see; a record already logged under its id is not
        logged again (up to `serving.max_batch`)."""
        _check_batch(service, batch.records)
        start = time.perf_counter()
        logged = await anyio.to_thread.run_sync(service.micro_records.append, batch.records)
        # Counts, channels and services: what was met and how it was fixed is free text.
        service.audit.write(
            [
                {
                    "request": request.state.request_id,
                    "token": token.id,
                    "endpoint": request.url.path,
                    "logged": logged.logged,
                    "duplicates": logged.duplicates,
                    "channels": dict(Counter(r.channel for r in batch.records)),
                    "services": sorted({r.service for r in batch.records if r.service}),
                    "latency_ms": round((time.perf_counter() - start) * 1000, 2),
                }
            ]
        )
        return Response(logged.model_dump_json(), media_type="application/json")

    return app


async def _one(pending: Awaitable[Any]) -> list[Any]:
    return [await pending]


async def _in_thread(score: Callable[[Any], list[Any]], records: Any) -> list[Any]:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(score, records)


def _answer(
    request: Request,
    body: BaseModel,
    versions: str,
    write_back: bool = False,
    writer: Callable[[list[Any], str], None] | None = None,
    results: list[Any] | None = None,
) -> Response:
    from starlette.background import BackgroundTask

    task = None
    if write_back and writer is not None:
        task = BackgroundTask(writer, results or [], request.state.request_id)
    # pydantic serialises the answer in Rust; FastAPI's jsonable_encoder walks it in Python.
    return Response(
        body.model_dump_json(),
        media_type="application/json",
        headers={"X-Model-Versions": versions},
        background=task,
    )


def _versions_header(
    results: Sequence[
        TriageResult | ChangeRiskResult | SimilarResult | ResolutionResult | AnomalyResult
    ],
) -> str:
    found: dict[str, str] = {}
    for result in results:
        if isinstance(result, TriageResult):
            found.update({a.model: a.version for a in result.answers.values()})
        else:
            found[result.model] = result.version
    return ",".join(f"{name}={version}" for name, version in sorted(found.items()))


def _check_batch(service: Service, records: Sequence[Any], field: str = "records") -> None:
    limit = service.params.serving.max_batch
    if len(records) > limit:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("body", field),
                    "msg": f"at most {limit} {field} per batch (serving.max_batch); got {len(records)}",
                }
            ]
        )


def _anomaly_audit(result: AnomalyResult) -> dict[str, Any]:
    # Counts and the series that alarmed: values are the integration's, not the desk's.
    return {
        "models": {result.model: result.version},
        "points": len(result.points),
        "decisions": {"alarm": sorted({p.series for p in result.points if p.alarm})},
    }


def _triage_audit(result: TriageResult) -> dict[str, Any]:
    return {
        "number": result.number,
        "sys_id": result.sys_id,
        "models": {a.model: a.version for a in result.answers.values()},
        "decisions": {
            name: a.value if a.decision == "auto_route" else "suggest"
            for name, a in result.answers.items()
        },
    }


def _similar_audit(result: SimilarResult) -> dict[str, Any]:
    # Ids only: the neighbours' notes are free text.
    return {
        "number": result.number,
        "sys_id": result.sys_id,
        "models": {result.model: result.version},
        "decisions": {"similar": [n.id for n in result.neighbours]},
    }


def _resolution_audit(result: ResolutionResult) -> dict[str, Any]:
    return {
        "number": result.number,
        "sys_id": result.sys_id,
        "models": {result.model: result.version},
        "decisions": {
            result.field: result.value if result.decision == "auto_suggest" else "suggest",
            "runbook": result.runbook,
            "similar": [n.id for n in result.neighbours],
        },
    }


def _change_audit(result: ChangeRiskResult) -> dict[str, Any]:
    return {
        "number": result.number,
        "sys_id": result.sys_id,
        "models": {result.model: result.version},
        "decisions": {"band": result.band, "probability": round(result.probability, 4)},
    }


def _audit_failure(service: Service, base: dict[str, Any], start: float, status: int) -> None:
    latency = round((time.perf_counter() - start) * 1000, 2)
    service.audit.write([{**base, "status": status, "latency_ms": latency}])


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The field and the rule, never the submitted value: it may be ticket text.
        problems = [_problem(err) for err in exc.errors()]
        # A body that is not JSON at all has no field to name: its reason is the detail.
        fields = ", ".join(
            sorted({p["message"] if p["type"] == "json_invalid" else p["field"] for p in problems})
        )
        return JSONResponse(
            {"detail": f"invalid request: {fields}", "errors": problems}, status_code=422
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        # Only the type and where it happened: exception messages may quote ticket content.
        request_id = getattr(request.state, "request_id", "?")
        log.error("request %s failed: %s at %s", request_id, *_where(exc))
        return JSONResponse({"detail": f"internal error (request {request_id})"}, status_code=500)


def _problem(err: Any) -> dict[str, Any]:
    if err["type"] == "json_invalid":
        # FastAPI's "JSON decode error"; the reason `parse_body` gave is in the context.
        reason = err.get("ctx", {}).get("error") or err["msg"]
        return {"field": "body", "loc": list(err["loc"]), "message": reason, "type": err["type"]}
    return {
        "field": _field_name(err["loc"]),
        "loc": list(err["loc"]),
        "message": err["msg"],
        "type": err["type"],
    }


class _JsonRequest(Request):
    """A request whose JSON body, when it cannot be parsed, says why (see `parse_body`)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_body(await self.body())
        return self._json


class _JsonRoute(APIRoute):
    """Routes that read their body through `_JsonRequest` (FastAPI's documented way to give a
    route its own Request class): every unparseable body is a 422, never a bare 400."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_reasons(request: Request) -> Response:
            return await handler(_JsonRequest(request.scope, request.receive))

        return with_json_reasons


def _where(exc: BaseException) -> tuple[str, str]:
    """The exception's type and the innermost file:line of its traceback."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    place = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
    return type(exc).__name__, place


def _field_name(loc: Sequence[Any]) -> str:
    """`records.3.caller_id` from pydantic's location, without the union members it tried
    (`constrained-str`, `Reference`) and without the leading `body`."""
    parts = [str(p) for p in loc[1:] if isinstance(p, int) or str(p).isidentifier()]
    parts = [p for p in parts if not p[:1].isupper()]
    return ".".join(parts) or str(loc[0])


class RequestId:
    """Names each request: `request.state.request_id`, the `X-Request-ID` header and the
    audit trail's `request`. A plain ASGI middleware: Starlette's `@app.middleware("http")`
    runs the app in a task of its own and streams the answer through it, a fixed cost on
    every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id  # what request.state reads

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, named)


class BodyLimit:
    """413 for a body over the limit, by Content-Length or while it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        await _answering(self.app, scope, limited, send, _TooLarge)

    async def _refuse(self, send: Send) -> None:
        await _send_error(send, _TooLarge(self.limit))


async def _answering(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, error: type[HTTPException]
) -> None:
    """Run `app`; answer an `error` it raises while reading the body, unless a response has
    started. FastAPI's HTTPException handler answers it inside a route; this is for a body
    read outside one (a middleware), where nothing else would."""
    started = False

    async def tracking(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking)
    except error as exc:
        if not started:
            await _send_error(send, exc)


async def _send_error(send: Send, exc: HTTPException) -> None:
    response = JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class BodyTimeout:
    """408 for a body not fully received `seconds` after the request's headers.

    Without it, a request whose Content-Length promises more bytes than are sent holds its
    connection (and a slot of the server) until the client gives up. The clock runs for the
    whole body, not per chunk, so a client trickling a byte at a time is cut off too; once
    the body is complete, `receive` (then waiting for a disconnect) is left untimed.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        complete = False

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                raise _BodyTimeout(self.seconds) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await _answering(self.app, scope, timed, send, _BodyTimeout)


class _BodyTimeout(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on instead of answering 400."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            f"request body not received within {seconds:g} s "
            "(serving.body_timeout_seconds): send the whole body the Content-Length announces",
            # The rest of the body may still come: this connection cannot serve another request.
            headers={"Connection": "close"},
        )


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on instead of answering 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes (serving.max_body_bytes)")
