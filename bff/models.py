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


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    tableUri: str
    latestCommit: str | None
    backend: str


class ErrorBody(BaseModel):
    detail: str
    parameter: str | None = None
