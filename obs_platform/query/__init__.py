"""Reading the table: one reader interface, an embedded backend (hudi-rs, no JVM) by default."""

from obs_platform.query.base import EventPage, EventQuery, EventReader, parse_instant

__all__ = ["EventPage", "EventQuery", "EventReader", "parse_instant"]
