"""The Hudi table as a Dagster asset. Its materializations are the table's commits."""

from __future__ import annotations

from dagster import AssetSpec

PIPELINE_EVENTS_KEY = "pipeline_events"

pipeline_events = AssetSpec(
    key=PIPELINE_EVENTS_KEY,
    description=(
        "Hudi COPY_ON_WRITE table observability.pipeline_events: the newest state of every stage run "
        "(record key eventId; event-time ordering on lastUpdatedAt; partition yyyy/MM/dd of eventTimestamp). "
        "Written by the streaming ingestion; each Hudi commit is recorded here as a materialization with "
        "its instant, rows inserted/updated, dead letters, bytes and latency."
    ),
    group_name="lakehouse",
    kinds={"hudi", "spark"},
    metadata={"record_key": "eventId", "ordering_field": "lastUpdatedAt", "partitioning": "yyyy/MM/dd"},
)
