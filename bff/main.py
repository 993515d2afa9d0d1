"""The backend-for-frontend: app, middleware, routers. Run: ``python -m bff`` (binds 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic.json_schema import models_json_schema

from bff.alertfeed import AlertWatcher
from bff.config import get_bff_settings
from bff.deps import get_reader
from bff.errors import install_error_handlers
from bff.live import CommitFeed
from bff.livebus import live_path
from bff.models import StreamMessage, StreamPendingMessage, StreamReady
from bff.routers import alerts, correlations, dead_letters, events, health, lineage, stats, stream, timeline
from obs_platform.alerts.service import AlertService
from obs_platform.settings import get_settings


@asynccontextmanager
async def lifespan(app: FastAPI):
    bff = get_bff_settings()
    feed = CommitFeed(get_reader(), poll_seconds=bff.stream_poll_seconds, queue_size=bff.stream_queue_size)
    app.state.feed = feed
    watcher = asyncio.create_task(feed.run(), name="timeline-watcher")
    # the alerter: evaluates in this process unless OBS_BFF_ALERTS_ENGINE=false (its routes work either way)
    app.state.alerts = AlertService(get_settings(), reader=get_reader())
    if bff.alerts_engine:
        app.state.alerts.start()
    # alert changes on /api/stream, whoever writes alerts.db (this alerter, another process, the routes)
    app.state.alert_watcher = AlertWatcher(app.state.alerts.store.path, feed, poll_seconds=bff.stream_poll_seconds)
    app.state.alerts.listeners.append(app.state.alert_watcher.wake)
    alert_watch = asyncio.create_task(app.state.alert_watcher.run(), name="alert-watcher")
    try:
        async with live_path(feed, get_reader(), get_settings(), bff.live_path, bff.live_subscription_ttl_hours,
                             bff.live_batch_ms) as app.state.live_path:
            yield
    finally:
        for task in (watcher, alert_watch):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        app.state.alert_watcher.close()
        await asyncio.to_thread(app.state.alerts.stop)


def create_app() -> FastAPI:
    settings = get_settings()
    bff = get_bff_settings()
    app = FastAPI(
        title="obs-platform BFF",
        version="0.2.0",
        description="Pipeline events from the Hudi table: full load with filters, incremental since a commit, "
                    "time travel, the moment an event failed, batch journeys, the commit timeline, stats, dead "
                    "letters, table maintenance, and a live SSE stream. With OBS_BFF_TOKEN set, every route but "
                    "/api/health needs `Authorization: Bearer <token>` (never a query parameter: no secret in a URL; the "
                    "dashboard's browser reaches the BFF through the dashboard server, which adds it).",
        lifespan=lifespan,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=bff.origins(settings),
        allow_methods=["GET"],
        allow_headers=["Authorization", "Last-Event-ID", "Content-Type"],
    )
    install_error_handlers(app)
    for module in (health, events, correlations, timeline, stats, dead_letters, stream, lineage, alerts):
        app.include_router(module.router)
    _document_stream_messages(app)
    return app


def _document_stream_messages(app: FastAPI) -> None:
    """Put StreamReady, StreamMessage, StreamPendingMessage and StreamAlertMessage (the SSE data, no route returns them as JSON)
    into the spec's components; and say that the bearer token is optional (needed only with OBS_BFF_TOKEN
    set): each guarded operation may be called with it or without (``security: [{HTTPBearer: []}, {}]``)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            _, defs = models_json_schema([(StreamReady, "serialization"), (StreamMessage, "serialization"),
                                          (StreamPendingMessage, "serialization"),
                                          (alerts.StreamAlertMessage, "serialization")],
                                         ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in defs["$defs"].items():
                components.setdefault(name, definition)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    if operation.get("security") == [{"HTTPBearer": []}]:
                        operation["security"] = [{"HTTPBearer": []}, {}]
        return app.openapi_schema

    app.openapi = openapi
