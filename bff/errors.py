"""One place that maps the platform's errors to HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from obs_platform.errors import InvalidInput, NotFound, TableNotReady
from obs_platform.query.base import NeverFailed


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInput)
    async def invalid_input(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": exc.message, "parameter": exc.parameter})

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(NeverFailed)
    async def never_failed(_: Request, exc: NeverFailed) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(TableNotReady)
    async def not_ready(_: Request, exc: TableNotReady) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})
