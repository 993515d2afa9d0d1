"""The live stream: one Server-Sent Event per new Hudi commit, resumable with Last-Event-ID."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette.sse import EventSourceResponse

from bff.deps import Authenticated, BffSettingsDep
from bff.routers.params import ERRORS
from obs_platform.query.base import parse_instant

router = APIRouter(prefix="/api", tags=["stream"], dependencies=Authenticated)

STREAM_DOC = {
    200: {"description": "text/event-stream. `event: ready` once (id: the position the stream starts after; data: "
                         "a StreamReady: latestCommit, resumedAfter, livePath); then per "
                         "commit `id: <instant>`, `event: commit`, data: a StreamMessage; `event: reset` when "
                         "`since` is past the time-travel horizon (reload, then follow); with the live path on "
                         "(OBS_BFF_LIVE_PATH), `event: pending` (no id: not resumable) carries rows read from the "
                         "bus before any commit holds them, a StreamPendingMessage; `event: alert` (no id: not resumable; after a "
                         "reconnect read GET /api/alerts) when an alert opens, grows, is acknowledged or is resolved, "
                         "a StreamAlertMessage; comment lines as heartbeats.",
          "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/StreamMessage"}}}},
    **ERRORS,
}


@router.get("/stream", operation_id="streamCommits", response_class=EventSourceResponse, responses=STREAM_DOC)
async def stream(
    request: Request,
    bff: BffSettingsDep,
    since: Annotated[str | None, Query(max_length=40, description="Resume after this commit instant.")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40,
                                                description="Set by EventSource on reconnect; wins over `since`.")] = None,
) -> EventSourceResponse:
    """Each new commit's changed rows, pushed as it lands. Every commit after `since`/`Last-Event-ID` arrives
    exactly once, in order; without either, the stream starts at the newest commit."""
    resume = last_event_id if last_event_id else since
    after = parse_instant(resume, "Last-Event-ID" if last_event_id else "since") if resume else None
    feed = request.app.state.feed
    return EventSourceResponse(feed.messages(after), ping=bff.stream_heartbeat_seconds, send_timeout=30)
