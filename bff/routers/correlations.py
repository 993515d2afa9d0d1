"""A batch's journey across stages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from bff.deps import Authenticated, ReaderDep
from bff.models import Journey, JourneyStage, JourneyStep
from bff.routers.params import ERRORS, NOT_FOUND

router = APIRouter(prefix="/api/correlations", tags=["correlations"], dependencies=Authenticated)


def _kind(delta: int | None) -> str:
    return "unknown" if delta is None else "loss" if delta < 0 else "gain" if delta > 0 else "equal"


@router.get("/{correlationId}", response_model=Journey, operation_id="getJourney", responses={**ERRORS, **NOT_FOUND})
def journey(reader: ReaderDep, correlation_id: Annotated[str, Path(alias="correlationId", max_length=200)]) -> Journey:
    """The batch's stage runs in order of `eventTimestamp`, each with its status, duration and counts, and
    between consecutive stages the rows lost (negative delta) or multiplied (positive)."""
    found = reader.journey(correlation_id)
    stages = [JourneyStage(
        eventId=s.row["eventId"], pipelineName=s.row["pipelineName"], stageName=s.row["stageName"],
        status=s.row["status"], startedAt=s.row["eventTimestamp"], lastUpdatedAt=s.row["lastUpdatedAt"],
        durationSeconds=s.duration_seconds, sourceRecordCount=s.row["sourceRecordCount"],
        processedRecordCount=s.row["processedRecordCount"], errorMessage=s.row["errorMessage"],
        commitTime=s.row["commitTime"]) for s in found.stages]
    steps = [JourneyStep(
        fromEventId=s.from_event_id, toEventId=s.to_event_id, fromStage=s.from_stage, toStage=s.to_stage,
        previousProcessed=s.previous_processed, nextCount=s.next_count, comparedField=s.compared_field,
        delta=s.delta, ratio=s.ratio, kind=_kind(s.delta)) for s in found.steps]
    rows = [s.row for s in found.stages]
    return Journey(correlationId=found.correlation_id, status=found.status,
                   pipelines=sorted({r["pipelineName"] for r in rows}),
                   startedAt=min(r["eventTimestamp"] for r in rows), lastUpdatedAt=max(r["lastUpdatedAt"] for r in rows),
                   stages=stages, steps=steps, latestCommit=found.latest_commit)
