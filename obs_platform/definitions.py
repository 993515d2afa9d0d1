"""Dagster definitions: wiring only. Built when the code location loads (not at import), so settings are
read from the environment of the process that serves them."""

from dagster import Definitions, definitions

from obs_platform.assets.checks import freshness_checks, freshness_sensor
from obs_platform.assets.ingestion import ingestion_keepalive, streaming_ingestion
from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.table import pipeline_events
from obs_platform.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    checks = freshness_checks(settings.freshness_sla_seconds)
    return Definitions(
        assets=[pipeline_events],
        asset_checks=checks,
        jobs=[streaming_ingestion],
        sensors=[ingestion_keepalive, freshness_sensor(checks)],
        resources={"platform": PlatformSettings()},
    )


@definitions
def defs() -> Definitions:
    return build_definitions(Settings())
