"""Aggregates for charts: per pipeline and time bucket."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from bff.deps import Authenticated, ReaderDep
from bff.models import Stats, StatsBucket
from bff.routers.params import ERRORS, From, Pipelines, To, time_range
from obs_platform.query.base import StatsQuery

router = APIRouter(prefix="/api/stats", tags=["stats"], dependencies=Authenticated)


@router.get("", response_model=Stats, operation_id="getStats", responses=ERRORS)
def stats(reader: ReaderDep, bucket: Annotated[Literal["1m", "5m", "15m", "1h"], Query()] = "5m",
          from_: From = None, to: To = None, pipelines: Pipelines = None) -> Stats:
    """Per pipeline and bucket of `lastUpdatedAt` (`from` inclusive, `to` exclusive): events, failures
    (current status FAILED) and records processed. At most 10,000 buckets per answer."""
    start, end = time_range(from_, to)
    # from/to here bound lastUpdatedAt (what a chart's time axis shows)
    rows = reader.stats(StatsQuery(bucket=bucket, from_time=start, to_time=end, pipelines=tuple(pipelines or ())))
    return Stats(bucket=bucket, latestCommit=reader.latest_commit(), buckets=[StatsBucket(
        pipelineName=r.pipeline_name, bucketStart=r.bucket_start, events=r.events, failures=r.failures,
        recordsProcessed=r.records_processed) for r in rows])
