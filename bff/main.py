"""The backend-for-frontend: app, middleware, routers. Run: ``python -m bff`` (binds 127.0.0.1)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from bff.errors import install_error_handlers
from bff.routers import events, health
from obs_platform.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="obs-platform BFF",
        version="0.1.0",
        description="Pipeline events from the Hudi table: full load, incremental since a commit, health.",
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[f"http://{settings.bind_host}:{settings.dashboard_port}",
                       f"http://localhost:{settings.dashboard_port}"],
        allow_methods=["GET"],
        allow_headers=["*"],
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(events.router)
    return app



