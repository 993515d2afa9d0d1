"""The reader interface the BFF depends on, its answers, and the pure helpers shared by its backends.

A backend implements the primitives (timeline, filtered/paged reads at a commit, the rows one commit wrote,
one row's history, aggregates); the composite answers (a batch's journey, "the moment this event failed")
are built here from those primitives, so every backend gives the same answer by construction and the
conformance suite (``obs_platform_tests/test_bff_conformance.py``) holds each backend to it.

Every value a caller passes is validated here (``InvalidInput`` names the parameter) and reaches a backend
as a typed value, never as text to splice into a query.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from obs_platform.errors import InvalidInput, NotFound, ObsPlatformError

STATUSES = ("STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING")
FINISHED = ("COMPLETED", "FAILED")
_INSTANT = re.compile(r"^\d{14}(\d{3})?$")
MAX_PAGE = 10_000
MAX_TEXT = 4096  # longest text a query carries (the HTTP layer bounds user input tighter, at 200)


class NeverFailed(ObsPlatformError):
    """The event exists but no retained version of it is FAILED (the BFF answers 409)."""


# --- parsing ------------------------------------------------------------------------------------------
def parse_instant(value: str, parameter: str = "since") -> str:
    """Validate a Hudi commit instant (``yyyyMMddHHmmss`` or ``yyyyMMddHHmmssSSS``); return it in 17 digits."""
    if not _INSTANT.match(value or ""):
        raise InvalidInput(parameter, f"{value!r} is not a commit instant; expected 17 digits, yyyyMMddHHmmssSSS")
    instant = value if len(value) == 17 else value + "000"
    try:
        datetime.strptime(instant[:14], "%Y%m%d%H%M%S")
    except ValueError:
        raise InvalidInput(parameter, f"{value!r} is not a valid date and time (yyyyMMddHHmmss[SSS])") from None
    return instant


def parse_time(value: str, parameter: str) -> datetime:
    """An ISO-8601 date or date-time; without an offset it is UTC. Returned timezone-aware, in UTC."""
    text = (value or "").strip()
    if not text or len(text) > 40:
        raise InvalidInput(parameter, f"{value[:50]!r} is not an ISO-8601 time (e.g. 2026-11-26T08:00:00Z)")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(parameter, f"{value[:50]!r} is not an ISO-8601 time (e.g. 2026-11-26T08:00:00Z)") from None


def instant_of(moment: datetime) -> str:
    """The 17-digit instant (UTC) of a time."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def time_of(instant: str) -> datetime:
    """The UTC time an instant names (Hudi's timeline here is in UTC, see TableSpec)."""
    return datetime.strptime(instant[:17].ljust(17, "0"), "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)


@dataclass(frozen=True)
class AsOf:
    """A time-travel target: a commit instant, or a time (the newest commit completed at or before it)."""

    instant: str | None = None
    moment: datetime | None = None

    @classmethod
    def parse(cls, value: str, parameter: str = "as_of") -> AsOf:
        if _INSTANT.match(value or ""):
            return cls(instant=parse_instant(value, parameter))
        try:
            return cls(moment=parse_time(value, parameter))
        except InvalidInput:
            raise InvalidInput(parameter, f"{value[:50]!r} is neither a commit instant (yyyyMMddHHmmss[SSS]) nor an "
                                          "ISO-8601 time (e.g. 2026-11-26T08:00:00Z)") from None


def check_text(value: str | None, parameter: str) -> str | None:
    if value is not None and len(value) > MAX_TEXT:
        raise InvalidInput(parameter, f"longer than {MAX_TEXT} characters")
    return value


# --- questions --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventQuery:
    """What a caller asks of the table. Every field is validated before it reaches a backend.

    ``from_time``/``to_time`` bound ``eventTimestamp`` (from inclusive, to exclusive); ``text`` is a
    case-insensitive literal substring of ``errorMessage``; ``event_ids`` is for composites (exact match)."""

    limit: int = 200
    offset: int = 0
    pipelines: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    correlation_id: str | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None
    text: str | None = None
    event_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput("limit", f"{self.limit} is outside 1..{MAX_PAGE}")
        if self.offset < 0:
            raise InvalidInput("offset", f"{self.offset} is negative")
        for status in self.statuses:
            if status not in STATUSES:
                raise InvalidInput("status", f"{status!r} is not one of {list(STATUSES)}")
        for name, values in (("pipeline", self.pipelines), ("stage", self.stages), ("eventId", self.event_ids)):
            for value in values:
                check_text(value, name)
        check_text(self.correlation_id, "correlationId")
        check_text(self.text, "q")
        if self.from_time and self.to_time and self.from_time > self.to_time:
            raise InvalidInput("to", f"{self.to_time.isoformat()} is before from={self.from_time.isoformat()}")

    @property
    def unfiltered(self) -> bool:
        return not (self.pipelines or self.stages or self.statuses or self.correlation_id or self.from_time
                    or self.to_time or self.text or self.event_ids)


BUCKETS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class StatsQuery:
    """Per pipeline and bucket of ``lastUpdatedAt`` (from inclusive, to exclusive)."""

    bucket: str = "5m"
    from_time: datetime | None = None
    to_time: datetime | None = None
    pipelines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.bucket not in BUCKETS:
            raise InvalidInput("bucket", f"{self.bucket!r} is not one of {list(BUCKETS)}")
        for value in self.pipelines:
            check_text(value, "pipeline")
        if self.from_time and self.to_time and self.from_time > self.to_time:
            raise InvalidInput("to", f"{self.to_time.isoformat()} is before from={self.from_time.isoformat()}")

    @property
    def seconds(self) -> int:
        return BUCKETS[self.bucket]

    def check_span(self, first: datetime, last: datetime) -> None:
        """Refuse an answer of more than MAX_BUCKETS buckets (name the parameter to change)."""
        start, end = self.from_time or first, self.to_time or last
        if (end - start) / timedelta(seconds=self.seconds) > MAX_BUCKETS:
            raise InvalidInput("bucket", f"{start.isoformat()}..{end.isoformat()} is more than {MAX_BUCKETS} "
                                         f"buckets of {self.bucket}; narrow from/to or choose a coarser bucket")


# --- answers ------------------------------------------------------------------------------------------
@dataclass
class EventPage:
    """Rows are dicts with the Event fields (Avro names) plus ``commitTime``; times are UTC datetimes."""

    events: list[dict[str, Any]]
    latest_commit: str | None
    total: int = 0
    as_of: str | None = None  # the commit the answer reflects
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommitInfo:
    instant: str
    action: str                       # commit | deltacommit | replacecommit
    completed_at: datetime | None     # None when the timeline layout does not record it (table version < 8)
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_written: int = 0
    bytes_written: int = 0
    operation: str | None = None      # UPSERT, INSERT, CLUSTER, ...


@dataclass(frozen=True)
class TimelineAction:
    instant: str
    action: str
    completed_at: datetime | None


@dataclass(frozen=True)
class Maintenance:
    latest_commit: str | None
    commit_count: int
    oldest_retained_commit: str | None   # time travel reaches back to here, no further
    earliest_commit_to_retain: str | None  # what the last clean kept (None before the first clean)
    last_clustering: TimelineAction | None
    last_compaction: TimelineAction | None
    last_clean: TimelineAction | None
    last_rollback: TimelineAction | None
    pending: list[TimelineAction] = field(default_factory=list)  # requested/inflight instants
    savepoints: list[str] = field(default_factory=list)  # savepointed commits: readable past the horizon


@dataclass(frozen=True)
class StatsRow:
    pipeline_name: str
    bucket_start: datetime
    events: int
    failures: int
    records_processed: int


# --- composite answers (built here, the same for every backend) -------------------------------------------
@dataclass
class JourneyStage:
    row: dict[str, Any]
    duration_seconds: float | None


@dataclass
class JourneyStep:
    from_event_id: str
    to_event_id: str
    from_stage: str
    to_stage: str
    previous_processed: int | None
    next_count: int | None
    compared_field: str | None   # sourceRecordCount or processedRecordCount of the next stage
    delta: int | None            # next_count - previous_processed: < 0 rows lost, > 0 multiplied
    ratio: float | None          # next_count / previous_processed


@dataclass
class Journey:
    correlation_id: str
    status: str
    stages: list[JourneyStage]
    steps: list[JourneyStep]
    latest_commit: str | None


@dataclass
class RowChange:
    event_id: str
    change: str                   # added | changed
    before: dict[str, Any] | None
    after: dict[str, Any]


@dataclass
class AtFailure:
    event: dict[str, Any]              # the event's version that the failure commit wrote
    failure_commit: str
    healthy_commit: str | None         # the last commit before it where the pipeline had no FAILED row
    pipeline_state: EventPage          # the pipeline as of failure_commit (paged)
    failed_in_pipeline: int            # FAILED rows of the pipeline at failure_commit
    changes: list[RowChange]           # healthy -> failure, rows of the pipeline that changed (paged)
    changes_total: int
    note: str | None = None


def journey_of(correlation_id: str, rows: list[dict[str, Any]], latest_commit: str | None) -> Journey:
    """A batch's stages in order of ``eventTimestamp`` and what each hand-over lost or multiplied."""
    if not rows:
        raise NotFound(f"Correlation {correlation_id!r} not found.")
    rows = sorted(rows, key=lambda r: (r["eventTimestamp"], r["lastUpdatedAt"], r["stageName"], r["eventId"]))
    stages = []
    for row in rows:
        duration = None
        if row["status"] in FINISHED:
            duration = (row["lastUpdatedAt"] - row["eventTimestamp"]).total_seconds()
        stages.append(JourneyStage(row=row, duration_seconds=duration))
    steps = []
    for prev, nxt in zip(rows, rows[1:], strict=False):
        compared, count = None, None
        if nxt.get("sourceRecordCount") is not None:
            compared, count = "sourceRecordCount", nxt["sourceRecordCount"]
        elif nxt.get("processedRecordCount") is not None:
            compared, count = "processedRecordCount", nxt["processedRecordCount"]
        before = prev.get("processedRecordCount")
        delta = count - before if count is not None and before is not None else None
        ratio = round(count / before, 6) if count is not None and before else None
        steps.append(JourneyStep(prev["eventId"], nxt["eventId"], prev["stageName"], nxt["stageName"], before,
                                 count, compared, delta, ratio))
    statuses = {r["status"] for r in rows}
    overall = ("FAILED" if "FAILED" in statuses else "COMPLETED" if statuses == {"COMPLETED"}
               else "RETRYING" if "RETRYING" in statuses else "RUNNING")
    return Journey(correlation_id, overall, stages, steps, latest_commit)


def first_failure(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first version (oldest first) whose status is FAILED: the commit that recorded the failure."""
    return next((v for v in history if v["status"] == "FAILED"), None)


# --- the interface --------------------------------------------------------------------------------------
class EventReader(ABC):
    """One interface, several backends (``embedded``: hudi-rs in process; ``thrift``: Spark Thrift Server).

    Rows are dicts with the Event fields plus ``commitTime``. Commit instants are 17-digit strings. Methods
    block (a backend may read files or call a server): callers run them off the event loop."""

    backend: ClassVar[str]
    max_healthy_lookback: ClassVar[int] = 200  # commits examined backwards for "the last healthy commit"

    @classmethod
    @abstractmethod
    def from_settings(cls, settings, **options: Any) -> EventReader:
        """The reader for the table in ``settings`` (``obs_platform.settings.Settings``); ``open_reader`` calls it."""

    def refresh(self) -> str | None:
        """Catch up with the newest commit now (a backend that caches refreshes here; the BFF's timeline
        watcher calls it at start and on each new commit). Returns that commit."""
        return self.latest_commit()

    # primitives --------------------------------------------------------------------------------------------
    @abstractmethod
    def latest_commit(self) -> str | None:
        """The newest completed commit instant, or None for an empty/missing table."""

    @abstractmethod
    def commits(self) -> list[CommitInfo]:
        """Completed write commits in the active timeline (commit, deltacommit, replacecommit), newest first."""

    @abstractmethod
    def maintenance(self) -> Maintenance:
        """Table-service activity from the timeline and the time-travel horizon's actual start."""

    @abstractmethod
    def events(self, query: EventQuery, as_of: str | None = None) -> EventPage:
        """The table's state (now, or as of a resolved commit instant), newest ``lastUpdatedAt`` first,
        filtered and paged; ``as_of`` on the page is the commit answered."""

    @abstractmethod
    def incremental(self, since: str, query: EventQuery, as_of: str | None = None) -> EventPage:
        """Rows whose newest state (now, or as of ``as_of``) was committed after ``since``."""

    @abstractmethod
    def changes_in(self, commit: str) -> list[dict[str, Any]]:
        """The rows that commit wrote, as it wrote them (what a live client is pushed for that commit)."""

    @abstractmethod
    def event_history(self, event_id: str) -> list[dict[str, Any]]:
        """Every retained version of one row, one per commit that wrote it, oldest first (NotFound if none)."""

    @abstractmethod
    def stats(self, query: StatsQuery) -> list[StatsRow]:
        """Current state aggregated per pipeline and bucket of lastUpdatedAt, by bucket then pipeline."""

    def any_at(self, query: EventQuery, as_of: str) -> bool:
        """Does any row match ``query`` as of the commit? (A backend may answer it cheaper than a count.)"""
        return self.events(replace(query, limit=1, offset=0), as_of=as_of).total > 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (connections, caches)."""

    # built on the primitives ------------------------------------------------------------------------------
    def oldest_retained_commit(self) -> str | None:
        return self.maintenance().oldest_retained_commit

    def resolve_as_of(self, as_of: AsOf, parameter: str = "as_of") -> str:
        """The commit a time-travel target names: the newest commit at or before the instant, or the newest
        commit completed at or before the time. Refused beyond the retained horizon (unless savepointed),
        naming it."""
        commits = [c for c in self.commits() if c.action != "replacecommit"]
        if not commits:
            raise NotFound("The table has no commit yet.")
        maintenance = self.maintenance()
        oldest = maintenance.oldest_retained_commit or commits[-1].instant
        if as_of.instant is not None:
            chosen = next((c for c in commits if c.instant <= as_of.instant), None)
            asked = as_of.instant
        else:
            chosen = next((c for c in commits if (c.completed_at or time_of(c.instant)) <= as_of.moment), None)
            asked = as_of.moment.isoformat()
        if chosen is None or (chosen.instant < oldest and chosen.instant not in maintenance.savepoints):
            raise InvalidInput(parameter, f"{asked} is older than the oldest retained commit {oldest} "
                                          f"({time_of(oldest).isoformat()}); time travel reaches back to it, no "
                                          "further (the time-travel horizon, OBS_TIME_TRAVEL_HORIZON_HOURS)")
        return chosen.instant

    def journey(self, correlation_id: str) -> Journey:
        check_text(correlation_id, "correlationId")
        page = self.events(EventQuery(correlation_id=correlation_id, limit=MAX_PAGE))
        return journey_of(correlation_id, page.events, page.latest_commit)

    def at_failure(self, event_id: str, limit: int = 500, offset: int = 0) -> AtFailure:
        """The pipeline at the commit that recorded this event's (first retained) failure, and what changed
        since the last commit before it where the pipeline had no FAILED row."""
        check_text(event_id, "eventId")
        history = self.event_history(event_id)
        failed = first_failure(history)
        if failed is None:
            states = " -> ".join(v["status"] for v in history)
            raise NeverFailed(f"Event {event_id!r} never failed in the retained timeline ({states}).")
        failure = failed["commitTime"]
        pipeline = failed["pipelineName"]
        in_pipeline = EventQuery(pipelines=(pipeline,), limit=limit, offset=offset)
        state = self.events(in_pipeline, as_of=failure)
        failed_rows = replace(in_pipeline, statuses=("FAILED",), limit=1, offset=0)
        failing = self.events(failed_rows, as_of=failure).total
        earlier = [c.instant for c in self.commits() if c.action != "replacecommit" and c.instant < failure]
        oldest = self.oldest_retained_commit()
        healthy, note = None, None
        for candidate in earlier[: self.max_healthy_lookback]:
            if oldest and candidate < oldest:
                break
            if not self.any_at(failed_rows, candidate):
                healthy = candidate
                break
        if healthy is None:
            note = (f"No retained commit before {failure} (looked back {min(len(earlier), self.max_healthy_lookback)}"
                    f" commits) where pipeline {pipeline!r} had no FAILED row; changes are against an empty table.")
        changed = self.incremental(healthy or "0" * 17, in_pipeline, as_of=failure)
        before: dict[str, dict] = {}
        if healthy and changed.events:
            ids = tuple(e["eventId"] for e in changed.events)
            before = {e["eventId"]: e for e in self.events(EventQuery(event_ids=ids, limit=MAX_PAGE), as_of=healthy).events}
        changes = [RowChange(e["eventId"], "changed" if e["eventId"] in before else "added", before.get(e["eventId"]), e)
                   for e in changed.events]
        return AtFailure(event=failed, failure_commit=failure, healthy_commit=healthy, pipeline_state=state,
                         failed_in_pipeline=failing, changes=changes, changes_total=changed.total, note=note)
