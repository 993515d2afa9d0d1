"""Reading the table: one reader interface, backends chosen by name (embedded hudi-rs by default; ``thrift``:
Spark SQL through the Spark Thrift Server at ``settings.bind_host:settings.thrift_port``)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from obs_platform.errors import InvalidInput
from obs_platform.query.base import AsOf, EventPage, EventQuery, EventReader, StatsQuery, parse_instant

# name -> "module:class"; a backend's constructor takes (settings, **options)
BACKENDS = {
    "embedded": "obs_platform.query.embedded:EmbeddedReader",
    "thrift": "obs_platform.query.thrift:ThriftReader",  # Spark Thrift Server over PyHive (settings.thrift_port)
}


def open_reader(backend: str, settings, **options: Any) -> EventReader:
    """The reader named ``backend`` for the table in ``settings`` (an ``obs_platform.settings.Settings``)."""
    if backend not in BACKENDS:
        raise InvalidInput("backend", f"{backend!r} is not one of {sorted(BACKENDS)}")
    module, name = BACKENDS[backend].split(":")
    return getattr(import_module(module), name).from_settings(settings, **options)


__all__ = ["AsOf", "BACKENDS", "EventPage", "EventQuery", "EventReader", "StatsQuery", "open_reader", "parse_instant"]
