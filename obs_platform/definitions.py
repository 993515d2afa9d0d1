"""Dagster definitions: wiring only. Built when the code location loads (not at import), so settings are
read from the environment of the process that serves them."""

from dagster import Definitions, definitions

from obs_platform.alerts.dagster import alerts_observer
from obs_platform.assets.checks import TABLE_CHECKS, freshness_checks, freshness_sensor
from obs_platform.assets.ingestion import ingestion_keepalive, streaming_ingestion
from obs_platform.assets.maintenance import MAINTENANCE_ASSETS
from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.run_events import dagster_runs_to_timeline
from obs_platform.assets.schedules import MAINTENANCE_JOBS, SCHEDULES
from obs_platform.assets.sensors import MAINTENANCE_SENSORS
from obs_platform.assets.spark import SparkSessionResource
from obs_platform.assets.table import pipeline_events
from obs_platform.settings import Settings


def build_definitions(settings: Settings, platform: PlatformSettings | None = None) -> Definitions:
    platform = platform or PlatformSettings()
    checks = freshness_checks(settings.freshness_sla_seconds)
    return Definitions(
        assets=[pipeline_events, *MAINTENANCE_ASSETS],
        asset_checks=[*checks, *TABLE_CHECKS],
        jobs=[streaming_ingestion, *MAINTENANCE_JOBS],
        schedules=SCHEDULES,
        sensors=[ingestion_keepalive, freshness_sensor(checks), *MAINTENANCE_SENSORS, dagster_runs_to_timeline,
                 alerts_observer],
        resources={"platform": platform, "spark": SparkSessionResource(platform=platform)},
    )


@definitions
def defs() -> Definitions:
    return build_definitions(Settings())
