"""OpenLineage intake: ``POST /api/v1/lineage`` (the path OpenLineage's HTTP transport and Marquez use).

RunEvents in (one, a JSON array, or NDJSON; gzip or not), PipelineEvents out: each is validated, mapped
(``obs_platform.intake.openlineage``), encoded with the platform's Avro codec and published to the events topic.
The answer comes after Pub/Sub confirmed every publish, so a 2xx means the events are as durable as the bus;
the streaming writer then upserts them like any other producer's. A bad batch publishes nothing.
"""

from __future__ import annotations

import asyncio
import time
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bff.deps import Authenticated
from bff.models import ErrorBody, LineageAccepted, LineageRejected, NotStored
from obs_platform.events.codec import DecodeError
from obs_platform.intake.openlineage import MAX_BODY_BYTES, IntakeError, Mapped, RunStarts, read_events
from obs_platform.intake.publish import EventPublisher
from obs_platform.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["intake"], dependencies=Authenticated)

PUBLISH_TIMEOUT_S = 30.0
_starts = RunStarts()
_FIELDS = {"eventId": "run.runId", "correlationId": "run.facets.parent", "pipelineName": "job.namespace",
           "stageName": "job.name", "errorMessage": "run.facets.errorMessage.message", "attributes": "facets"}


@lru_cache(maxsize=1)
def intake_publisher() -> EventPublisher:
    return EventPublisher(get_settings(), source="openlineage")


def _reject(exc: IntakeError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.body())


_REQUEST_BODY = {
    "required": True,
    "description": "One OpenLineage RunEvent (spec 2-0-2), a JSON array of them, or NDJSON (one per line, "
                   "Content-Type: application/x-ndjson). `Content-Encoding: gzip` is accepted. At most "
                   "10,000 events and 16 MiB (decompressed) per request.",
    "content": {
        "application/json": {"schema": {"oneOf": [
            {"type": "object", "description": "An OpenLineage RunEvent", "additionalProperties": True},
            {"type": "array", "items": {"type": "object", "additionalProperties": True}}]}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}
_REJECTED = {"model": LineageRejected}


@router.post(
    "/lineage", operation_id="postLineage", response_model=LineageAccepted,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        202: {"model": LineageAccepted, "description": "Accepted, but some events were not stored (eventType "
                                                       "OTHER); `notStored` gives each reason."},
        400: {**_REJECTED, "description": "The body is not JSON/NDJSON, or the gzip does not decompress."},
        401: {"model": ErrorBody, "description": "OBS_BFF_TOKEN is set and the bearer token is missing or wrong."},
        413: {**_REJECTED, "description": "Too many events or bytes in one request."},
        415: {**_REJECTED, "description": "A Content-Encoding other than gzip."},
        422: {**_REJECTED, "description": "An event breaks the OpenLineage schema or cannot be mapped; `field` and "
                                          "`index` name it. Nothing of the request was published."},
        503: {**_REJECTED, "description": "Pub/Sub did not confirm the publish; retry (nothing may be stored)."},
    },
)
async def post_lineage(request: Request) -> JSONResponse:
    """Take OpenLineage RunEvents onto the timeline. START/RUNNING/COMPLETE/FAIL/ABORT become
    STARTED/RUNNING/COMPLETED/FAILED/FAILED states of the stage run `run.runId`; OTHER is answered 202 and not
    stored. The answer waits for Pub/Sub to confirm every publish."""
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BODY_BYTES:
            return _reject(IntakeError(413, f"body passes {MAX_BODY_BYTES:,} bytes"))
    try:
        mapped, encoded = await run_in_threadpool(_prepare, bytes(raw), request.headers.get("content-encoding"),
                                                  request.headers.get("content-type"))
    except IntakeError as exc:
        return _reject(exc)
    stored = [m for m in mapped if m.record is not None]
    if encoded:
        try:
            pending = intake_publisher().publish_encoded(encoded)
            await asyncio.wait_for(asyncio.gather(*(asyncio.wrap_future(f) for f in pending)), PUBLISH_TIMEOUT_S)
        except Exception as exc:  # the Pub/Sub client raises many types; every one means "not confirmed"
            return _reject(IntakeError(503, f"the events topic did not confirm the publish ({type(exc).__name__}: "
                                            f"{str(exc)[:300]}); retry the request"))
    not_stored = [NotStored(index=m.index, runId=m.run_id, eventType=m.event_type, reason=m.reason or "")
                  for m in mapped if m.record is None]
    body = LineageAccepted(received=len(mapped), published=len(stored),
                           eventIds=[m.record["eventId"] for m in stored], notStored=not_stored)
    return JSONResponse(status_code=202 if not_stored else 200, content=body.model_dump())


def _prepare(raw: bytes, encoding: str | None, content_type: str | None) -> tuple[list[Mapped], list[tuple[bytes, str]]]:
    mapped = read_events(raw, encoding, content_type, _starts, now_ms=int(time.time() * 1000))
    codec = intake_publisher().codec
    encoded = []
    for m in mapped:
        if m.record is None:
            continue
        try:
            encoded.append((codec.encode(m.record), m.record["pipelineName"]))
        except DecodeError as exc:
            field = next((f for name, f in _FIELDS.items() if exc.detail.startswith(name)), None)
            raise IntakeError(422, f"the mapped event is not a valid PipelineEvent: {exc.detail}", field,
                              m.index) from None
    return mapped, encoded
