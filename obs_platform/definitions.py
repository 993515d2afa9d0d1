"""Dagster definitions: wiring only."""

from dagster import Definitions

from obs_platform.assets.ingestion import ingestion_keepalive, streaming_ingestion
from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.table import pipeline_events

defs = Definitions(
    assets=[pipeline_events],
    jobs=[streaming_ingestion],
    sensors=[ingestion_keepalive],
    resources={"platform": PlatformSettings()},
)
