"""Query parameters shared by several routers, each with its limits (a violation is a 422 naming it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query

from bff.models import ErrorBody, Status
from obs_platform.errors import InvalidInput
from obs_platform.query.base import parse_time

Limit = Annotated[int, Query(ge=1, le=10_000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=100_000_000, description="Rows to skip.")]
Pipelines = Annotated[list[Annotated[str, Query(max_length=200)]] | None,
                      Query(alias="pipeline", max_length=50, description="Repeatable; exact names.")]
Stages = Annotated[list[Annotated[str, Query(max_length=200)]] | None,
                   Query(alias="stage", max_length=50, description="Repeatable; exact names.")]
Statuses = Annotated[list[Status] | None, Query(alias="status", description="Repeatable.")]
Correlation = Annotated[str | None, Query(alias="correlationId", max_length=200)]
From = Annotated[str | None, Query(alias="from", max_length=40, description="ISO-8601 time (UTC if no offset), inclusive.")]
To = Annotated[str | None, Query(alias="to", max_length=40, description="ISO-8601 time (UTC if no offset), exclusive.")]

ERRORS = {422: {"model": ErrorBody, "description": "A parameter is malformed; the answer names it."},
          401: {"model": ErrorBody, "description": "OBS_BFF_TOKEN is set and the bearer token is missing or wrong."}}
NOT_FOUND = {404: {"model": ErrorBody, "description": "Not found; the answer names what."}}


def time_range(from_: str | None, to: str | None) -> tuple[datetime | None, datetime | None]:
    start = parse_time(from_, "from") if from_ is not None else None
    end = parse_time(to, "to") if to is not None else None
    if start is not None and end is not None and start > end:
        raise InvalidInput("from", f"from ({start.isoformat()}) is after to ({end.isoformat()}): an empty range")
    return start, end
