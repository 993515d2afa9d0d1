"""Events: the current state (full load, filters, time travel), what changed since a commit (incremental),
and the pipeline at the moment an event failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from bff.deps import Authenticated, ReaderDep
from bff.models import ErrorBody, EventAtFailure, EventList, PipelineState, RowChange
from bff.routers.params import (
    ERRORS,
    NOT_FOUND,
    Correlation,
    From,
    Limit,
    Offset,
    Pipelines,
    Stages,
    Statuses,
    To,
    time_range,
)
from obs_platform.query.base import AsOf, EventQuery, parse_instant

router = APIRouter(prefix="/api/events", tags=["events"], dependencies=Authenticated)

Text = Annotated[str | None, Query(alias="q", max_length=200,
                                   description="Case-insensitive substring of errorMessage (literal text).")]
AsOfParam = Annotated[str | None, Query(
    alias="as_of", max_length=40,
    description="Time travel: a commit instant (yyyyMMddHHmmss[SSS]; the newest commit at or before it) or an "
                "ISO-8601 time (the newest commit completed at or before it). Older than the oldest retained "
                "commit: 422.")]


def _query(limit, offset, pipelines, stages, statuses, correlation_id, from_=None, to=None, text=None) -> EventQuery:
    start, end = time_range(from_, to)
    return EventQuery(limit=limit, offset=offset, pipelines=tuple(pipelines or ()), stages=tuple(stages or ()),
                      statuses=tuple(statuses or ()), correlation_id=correlation_id, from_time=start, to_time=end,
                      text=text or None)


def _list(page) -> Response:
    """Validated once and serialized by pydantic (pages of thousands of events; FastAPI would validate the
    returned model again and serialize it through the json module)."""
    body = EventList(events=page.events, latestCommit=page.latest_commit, total=page.total, asOf=page.as_of)
    return Response(content=body.model_dump_json(), media_type="application/json")


@router.get("", response_model=EventList, operation_id="listEvents",
            responses={**ERRORS, 404: {"model": ErrorBody, "description": "`as_of` on a table with no commit yet."}})
def list_events(reader: ReaderDep, limit: Limit = 200, offset: Offset = 0, pipelines: Pipelines = None,
                stages: Stages = None, statuses: Statuses = None, correlation_id: Correlation = None,
                from_: From = None, to: To = None, q: Text = None, as_of: AsOfParam = None) -> Response:
    """The newest state of every stage run (or the state as of a commit), newest `lastUpdatedAt` first, with
    the commit each row came from. `from`/`to` bound `eventTimestamp`."""
    query = _query(limit, offset, pipelines, stages, statuses, correlation_id, from_, to, q)
    commit = reader.resolve_as_of(AsOf.parse(as_of)) if as_of is not None else None
    return _list(reader.events(query, as_of=commit))


@router.get("/incremental", response_model=EventList, operation_id="listEventsSince", responses=ERRORS)
def list_events_since(
    reader: ReaderDep,
    since: Annotated[str, Query(max_length=40, description="A commit instant from a previous answer's `latestCommit`.")],
    limit: Limit = 10_000, offset: Offset = 0, pipelines: Pipelines = None, stages: Stages = None,
    statuses: Statuses = None, correlation_id: Correlation = None, from_: From = None, to: To = None,
    q: Text = None,
) -> Response:
    """Only the stage runs whose state changed in a commit after `since`. The cursor is the client's own:
    pass this answer's `latestCommit` as the next `since`."""
    instant = parse_instant(since, "since")
    query = _query(limit, offset, pipelines, stages, statuses, correlation_id, from_, to, q)
    return _list(reader.incremental(instant, query))


@router.get("/{eventId}/at-failure", response_model=EventAtFailure, operation_id="getEventAtFailure",
            responses={**ERRORS, **NOT_FOUND,
                       409: {"description": "The event never failed in the retained timeline."}})
def event_at_failure(reader: ReaderDep, event_id: Annotated[str, Path(alias="eventId", max_length=200)],
                     limit: Limit = 500, offset: Offset = 0) -> EventAtFailure:
    """The whole pipeline as of the commit that recorded this event's failure (the first retained commit at
    which its status was FAILED), the last commit before it where the pipeline had no FAILED row, and the
    rows that changed between the two. `limit`/`offset` page both lists."""
    found = reader.at_failure(event_id, limit=limit, offset=offset)
    return EventAtFailure(
        event=found.event, pipelineName=found.event["pipelineName"], failureCommit=found.failure_commit,
        healthyCommit=found.healthy_commit, failedInPipeline=found.failed_in_pipeline,
        pipelineState=PipelineState(events=found.pipeline_state.events, total=found.pipeline_state.total),
        changes=[RowChange(eventId=c.event_id, change=c.change, before=c.before, after=c.after) for c in found.changes],
        changesTotal=found.changes_total, note=found.note,
    )
