"""One place that maps the platform's errors to HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from obs_platform.errors import InvalidInput, NotFound, TableNotReady
from obs_platform.query.base import NeverFailed


def _validation_answer(exc: RequestValidationError) -> dict:
    """FastAPI's parameter validation, in the documented ErrorBody shape (``detail`` a sentence naming each
    parameter, ``parameter`` the first), like the platform's own InvalidInput answers."""
    parts, names = [], []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ())]
        name = location[1] if len(location) > 1 else (location[0] if location else "request")
        names.append(name)
        parts.append(f"{name}: {error.get('msg', 'invalid')}")
    return {"detail": "; ".join(parts) or "invalid request", "parameter": names[0] if names else None}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=_validation_answer(exc))

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
