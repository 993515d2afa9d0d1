"""Typed dependencies: the settings and the table reader, built once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends

from obs_platform.query.base import EventReader
from obs_platform.query.embedded import EmbeddedReader
from obs_platform.settings import Settings, get_settings


@lru_cache(maxsize=1)
def _reader(table_uri: str) -> EventReader:
    return EmbeddedReader(table_uri)


def reader_dep(settings: Annotated[Settings, Depends(get_settings)]) -> EventReader:
    return _reader(settings.table_uri)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReaderDep = Annotated[EventReader, Depends(reader_dep)]
