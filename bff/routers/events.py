"""Events: the current state (full load) and what changed since a commit (incremental)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bff.deps import ReaderDep
from bff.models import ErrorBody, EventList, Status
from obs_platform.query.base import EventQuery, parse_instant

router = APIRouter(prefix="/api/events", tags=["events"])

Limit = Annotated[int, Query(ge=1, le=10_000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip.")]
Pipelines = Annotated[list[str] | None, Query(alias="pipeline", max_length=50, description="Repeatable.")]
Stages = Annotated[list[str] | None, Query(alias="stage", max_length=50, description="Repeatable.")]
Statuses = Annotated[list[Status] | None, Query(alias="status", description="Repeatable.")]
Correlation = Annotated[str | None, Query(alias="correlationId", max_length=200)]
ERRORS = {422: {"model": ErrorBody, "description": "A parameter is malformed; the answer names it."}}


def _query(limit: int, offset: int, pipelines, stages, statuses, correlation_id) -> EventQuery:
    return EventQuery(limit=limit, offset=offset, pipelines=tuple(pipelines or ()), stages=tuple(stages or ()),
                      statuses=tuple(statuses or ()), correlation_id=correlation_id)


@router.get("", response_model=EventList, operation_id="listEvents", responses=ERRORS)
def list_events(reader: ReaderDep, limit: Limit = 200, offset: Offset = 0, pipelines: Pipelines = None,
                stages: Stages = None, statuses: Statuses = None, correlation_id: Correlation = None) -> EventList:
    """The newest state of every stage run, newest `lastUpdatedAt` first, with the commit it came from."""
    page = reader.events(_query(limit, offset, pipelines, stages, statuses, correlation_id))
    return EventList(events=page.events, latestCommit=page.latest_commit, total=page.total)


@router.get("/incremental", response_model=EventList, operation_id="listEventsSince", responses=ERRORS)
def list_events_since(
    reader: ReaderDep,
    since: Annotated[str, Query(description="A commit instant from a previous answer's `latestCommit`.")],
    limit: Limit = 10_000, offset: Offset = 0, pipelines: Pipelines = None, stages: Stages = None,
    statuses: Statuses = None, correlation_id: Correlation = None,
) -> EventList:
    """Only the stage runs whose state changed in a commit after `since`. The cursor is the client's own:
    pass this answer's `latestCommit` as the next `since`."""
    instant = parse_instant(since, "since")
    page = reader.incremental(instant, _query(limit, offset, pipelines, stages, statuses, correlation_id))
    return EventList(events=page.events, latestCommit=page.latest_commit, total=page.total)
