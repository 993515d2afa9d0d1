"""Response models: the API's contract, and the source of the frontend's generated types."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING"]


class Event(BaseModel):
    """The newest state of one stage run: every Avro field under its Avro name, plus ``commitTime``."""

    eventId: str
    correlationId: str
    pipelineName: str
    stageName: str
    status: Status
    eventTimestamp: datetime = Field(description="When the stage run started (UTC).")
    processedRecordCount: int | None = None
    sourceRecordCount: int | None = None
    errorMessage: str | None = None
    lastUpdatedAt: datetime = Field(description="When this state was emitted (UTC); the newest wins.")
    dataQualityScore: float | None = Field(default=None, description="v2 schema; null for v1 events.")
    attributes: dict[str, str] = Field(default_factory=dict, description="v2 schema; empty for v1 events.")
    schemaVersion: int | None = Field(default=None, description="Version of the schema that wrote the event.")
    commitTime: str = Field(description="Instant of the Hudi commit that wrote this state (yyyyMMddHHmmssSSS).")


class EventList(BaseModel):
    events: list[Event]
    latestCommit: str | None = Field(description="Newest commit instant; pass it as `since` to read what changes next.")
    total: int = Field(description="Rows matching the filters, before paging.")
    asOf: str | None = Field(default=None, description="The commit this answer reflects (the newest, or the one "
                                                         "`as_of` resolved to); null for an empty table.")


class RowChange(BaseModel):
    eventId: str
    change: Literal["added", "changed"]
    before: Event | None = Field(description="The row at the healthy commit; null when it was added after it.")
    after: Event = Field(description="The row at the failure commit.")


class PipelineState(BaseModel):
    events: list[Event] = Field(description="The pipeline's rows at the failure commit, newest first, paged.")
    total: int


class EventAtFailure(BaseModel):
    """The whole pipeline at the commit that recorded an event's failure, and what changed since it was healthy."""

    event: Event = Field(description="The event as the failure commit wrote it.")
    pipelineName: str
    failureCommit: str = Field(description="The first retained commit at which the event's status was FAILED.")
    healthyCommit: str | None = Field(description="The last commit before it where the pipeline had no FAILED "
                                                  "row; null when none is retained.")
    failedInPipeline: int = Field(description="FAILED rows of the pipeline at the failure commit.")
    pipelineState: PipelineState
    changes: list[RowChange] = Field(description="Rows of the pipeline changed between the healthy and the "
                                                 "failure commit, newest first, paged.")
    changesTotal: int
    note: str | None = None


class JourneyStage(BaseModel):
    eventId: str
    pipelineName: str
    stageName: str
    status: Status
    startedAt: datetime = Field(description="The stage run's eventTimestamp.")
    lastUpdatedAt: datetime
    durationSeconds: float | None = Field(description="lastUpdatedAt - startedAt once COMPLETED or FAILED; null before.")
    sourceRecordCount: int | None
    processedRecordCount: int | None
    errorMessage: str | None
    commitTime: str


class JourneyStep(BaseModel):
    """A hand-over between consecutive stages: what the next stage got versus what the previous one processed."""

    fromEventId: str
    toEventId: str
    fromStage: str
    toStage: str
    previousProcessed: int | None = Field(description="processedRecordCount of the previous stage.")
    nextCount: int | None = Field(description="sourceRecordCount of the next stage, else its processedRecordCount.")
    comparedField: Literal["sourceRecordCount", "processedRecordCount"] | None
    delta: int | None = Field(description="nextCount - previousProcessed: negative = rows lost, positive = multiplied.")
    ratio: float | None = Field(description="nextCount / previousProcessed.")
    kind: Literal["loss", "gain", "equal", "unknown"]


class Journey(BaseModel):
    correlationId: str
    status: Status = Field(description="FAILED if a stage failed; COMPLETED if all did; else RETRYING or RUNNING.")
    pipelines: list[str]
    startedAt: datetime
    lastUpdatedAt: datetime
    stages: list[JourneyStage] = Field(description="In order of eventTimestamp.")
    steps: list[JourneyStep]
    latestCommit: str | None


class Commit(BaseModel):
    instant: str = Field(description="The commit's (requested) instant, yyyyMMddHHmmssSSS.")
    completedAt: datetime | None = Field(description="When the commit completed (null on tables older than Hudi 1.x).")
    action: str = Field(description="commit, deltacommit or replacecommit (clustering).")
    operation: str | None = Field(description="UPSERT, INSERT, CLUSTER, ...")
    rowsInserted: int
    rowsUpdated: int
    rowsWritten: int = Field(description="Rows in the files the commit wrote (copy-on-write rewrites whole files).")
    bytesWritten: int


class CommitList(BaseModel):
    commits: list[Commit] = Field(description="Newest first.")
    total: int = Field(description="Commits in the active timeline.")


class TimelineAction(BaseModel):
    instant: str
    action: str
    completedAt: datetime | None


class Maintenance(BaseModel):
    latestCommit: str | None
    commitCount: int = Field(description="Completed write commits (commit/deltacommit) in the active timeline.")
    oldestRetainedCommit: str | None = Field(description="Time travel reaches back to this commit and no further.")
    earliestCommitToRetain: str | None = Field(description="What the last clean kept; null before the first clean.")
    timeTravelHorizonHours: int = Field(description="The configured horizon (the cleaner's retention), in hours.")
    timeTravelHorizonCommits: int | None = Field(
        default=None, description="The horizon in commits, when the platform is configured by commits instead.")
    savepoints: list[str] = Field(description="Savepointed commits: time travel reaches them even past the horizon.")
    lastClustering: TimelineAction | None
    lastCompaction: TimelineAction | None
    lastClean: TimelineAction | None
    lastRollback: TimelineAction | None
    pending: list[TimelineAction] = Field(description="Requested or inflight instants.")


class StatsBucket(BaseModel):
    pipelineName: str
    bucketStart: datetime = Field(description="Start of the bucket of lastUpdatedAt (UTC, aligned to the epoch).")
    events: int
    failures: int = Field(description="Rows whose current status is FAILED.")
    recordsProcessed: int = Field(description="Sum of processedRecordCount (null counts as 0).")


class Stats(BaseModel):
    bucket: Literal["1m", "5m", "15m", "1h"]
    buckets: list[StatsBucket] = Field(description="Buckets with at least one event, by bucketStart then pipeline.")
    latestCommit: str | None


class DeadLetter(BaseModel):
    messageId: str
    publishTime: datetime
    receivedAt: datetime
    reason: str
    detail: str
    attributes: dict[str, str]
    sizeBytes: int
    dataBase64: str = Field(description="The first 256 bytes of the message, base64.")


class DeadLetterList(BaseModel):
    deadLetters: list[DeadLetter] = Field(description="Pending (not replayed) dead letters, newest first.")
    total: int = Field(description="Pending dead letters matching the filter.")
    byReason: dict[str, int] = Field(description="Pending dead letters per reason (all reasons).")


class StreamMessage(BaseModel):
    """The data of one `commit` event on /api/stream (its SSE id is the commit instant)."""

    commit: str
    action: str
    events: list[Event] = Field(description="The rows this commit wrote.")


class PendingEvent(Event):
    """A state read from the bus that no commit holds yet (the live path): the Event fields, no commitTime."""

    commitTime: None = Field(default=None, description="Null: not in a commit yet.")
    pending: Literal[True] = True
    publishTime: datetime | None = Field(default=None, description="When Pub/Sub accepted the message (UTC).")


class StreamPendingMessage(BaseModel):
    """The data of one `pending` event on /api/stream: rows from the bus, before their commit (no SSE id:
    not resumable). The `commit` event that later holds them carries them with their commitTime."""

    receivedAt: datetime = Field(description="When the BFF sent them on (UTC).")
    events: list[PendingEvent] = Field(description="Newest state per eventId, newer than the committed one.")


class StreamReady(BaseModel):
    """The data of the `ready` event that opens every /api/stream answer (its SSE id: the position the
    stream starts after, absent on an empty table)."""

    latestCommit: str | None = Field(description="The newest commit when the stream opened.")
    resumedAfter: str | None = Field(description="The `since`/`Last-Event-ID` it resumes after, if any.")
    livePath: bool = Field(default=False, description="Whether `pending` events (rows before their commit) come.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    tableUri: str
    latestCommit: str | None
    backend: str


class ErrorBody(BaseModel):
    detail: str
    parameter: str | None = None


class NotStored(BaseModel):
    index: int = Field(description="Position of the event in the request (0 for a single event).")
    runId: str
    eventType: str
    reason: str


class LineageAccepted(BaseModel):
    """What the intake did with a request: every stored event is on the Pub/Sub topic before this answer."""

    received: int = Field(description="RunEvents in the request.")
    published: int = Field(description="RunEvents encoded as PipelineEvents and published (the publish confirmed).")
    eventIds: list[str] = Field(description="The published events' eventIds (their runIds), in request order.")
    notStored: list[NotStored] = Field(default_factory=list,
                                       description="Accepted but not stored (eventType OTHER), with the reason.")


class LineageRejected(BaseModel):
    detail: str = Field(description="What is wrong.")
    field: str | None = Field(default=None, description="The event's field (JSON path) or the header at fault.")
    index: int | None = Field(default=None, description="Which event of a batch (0-based); nothing of it was published.")
