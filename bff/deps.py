"""Typed dependencies: the settings, the table reader (one per process) and the optional bearer token."""

from __future__ import annotations

import hmac
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bff.config import BffSettings, get_bff_settings
from obs_platform.query import open_reader
from obs_platform.query.base import EventReader
from obs_platform.settings import Settings, get_settings


@lru_cache(maxsize=1)
def get_reader() -> EventReader:
    """The process's reader; the BFF's lifespan warms it and its timeline watcher refreshes it."""
    bff = get_bff_settings()
    options = {"cache": bff.view_cache, "history_rows": bff.history_cache_rows} if bff.backend == "embedded" else {}
    return open_reader(bff.backend, get_settings(), **options)


def reader_dep() -> EventReader:
    return get_reader()


SettingsDep = Annotated[Settings, Depends(get_settings)]
BffSettingsDep = Annotated[BffSettings, Depends(get_bff_settings)]
ReaderDep = Annotated[EventReader, Depends(reader_dep)]

_bearer = HTTPBearer(auto_error=False, description="Needed when the BFF runs with OBS_BFF_TOKEN set.")


def _check(expected: str, offered: str | None) -> None:
    if offered is None or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise HTTPException(status_code=401, detail="Missing or wrong bearer token (Authorization: Bearer <token>).",
                            headers={"WWW-Authenticate": "Bearer"})


def require_token(bff: BffSettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """With OBS_BFF_TOKEN set, the request must carry ``Authorization: Bearer <token>``."""
    if bff.token is not None:
        _check(bff.token.get_secret_value(), credentials.credentials if credentials else None)


Authenticated = [Depends(require_token)]
