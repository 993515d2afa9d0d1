"""The reader interface the BFF depends on, and the pure helpers shared by its backends."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from obs_platform.errors import InvalidInput

STATUSES = ("STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING")
_INSTANT = re.compile(r"^\d{14}(\d{3})?$")


def parse_instant(value: str, parameter: str = "since") -> str:
    """Validate a Hudi commit instant (``yyyyMMddHHmmss`` or ``yyyyMMddHHmmssSSS``); return it in 17 digits."""
    if not _INSTANT.match(value or ""):
        raise InvalidInput(parameter, f"{value!r} is not a commit instant; expected 17 digits, yyyyMMddHHmmssSSS")
    return value if len(value) == 17 else value + "000"


@dataclass(frozen=True)
class EventQuery:
    """What a caller asks of the table. Every field is validated before it reaches a backend."""

    limit: int = 200
    offset: int = 0
    pipelines: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise InvalidInput("limit", f"{self.limit} is outside 1..10000")
        if self.offset < 0:
            raise InvalidInput("offset", f"{self.offset} is negative")
        for status in self.statuses:
            if status not in STATUSES:
                raise InvalidInput("status", f"{status!r} is not one of {list(STATUSES)}")


@dataclass
class EventPage:
    events: list[dict[str, Any]]
    latest_commit: str | None
    total: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class EventReader(ABC):
    """One interface, several backends (embedded hudi-rs; Spark Thrift Server later)."""

    @abstractmethod
    def latest_commit(self) -> str | None:
        """The newest completed commit instant, or None for an empty/missing table."""

    @abstractmethod
    def events(self, query: EventQuery) -> EventPage:
        """The table's current state, newest ``lastUpdatedAt`` first, filtered and paged."""

    @abstractmethod
    def incremental(self, since: str, query: EventQuery) -> EventPage:
        """Rows whose newest state was committed after ``since``; ``latest_commit`` is the new cursor."""
