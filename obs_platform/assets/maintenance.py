"""Table maintenance as Dagster assets downstream of pipeline_events. Each run records what it did."""

import json
from collections.abc import Callable

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.spark import SparkSessionResource
from obs_platform.assets.table import PIPELINE_EVENTS_KEY
from obs_platform.lakehouse.table import TableSpec
from obs_platform.maintenance.services import ServiceRun, TableServices

GROUP = "maintenance"
# A conflict with the live writer (optimistic concurrency) fails the run cleanly; Dagster retries it.
CONFLICT_RETRY = RetryPolicy(max_retries=3, delay=30)


def _run_service(context: AssetExecutionContext, platform: PlatformSettings, spark: SparkSessionResource,
                 service: Callable[[TableServices], ServiceRun]) -> MaterializeResult:
    """Run one table service on a run-scoped Spark session; its numbers become the materialization."""
    with spark.session() as session:
        run = service(TableServices(session, TableSpec.from_settings(platform.get())))
    meta = run.metadata()
    context.log.info(f"{run.service}: live files {meta['live_files_before']} -> {meta['live_files_after']}, "
                     f"{meta['bytes_freed']} bytes freed, {meta['duration_seconds']} s")
    return MaterializeResult(metadata=meta)


@asset(
    key="table_compaction", group_name=GROUP, deps=[PIPELINE_EVENTS_KEY], kinds={"hudi", "spark"},
    retry_policy=CONFLICT_RETRY,
    description=(
        "On MERGE_ON_READ (the default) this is Hudi compaction: the log files each commit appended are "
        "merged into new base files, so reads stop merging them. On COPY_ON_WRITE, where 'compaction' does "
        "not exist, it is *clustering* (a replacecommit) of the small files micro-batches write. Records "
        "file slices compacted, log files and bytes before and after, instants, duration."
    ),
)
def table_compaction(context: AssetExecutionContext, platform: PlatformSettings,
                     spark: SparkSessionResource) -> MaterializeResult:
    return _run_service(context, platform, spark, TableServices.optimize)


@asset(
    key="table_cleaning", group_name=GROUP, deps=[PIPELINE_EVENTS_KEY], kinds={"hudi", "spark"},
    retry_policy=CONFLICT_RETRY,
    description=(
        "Deletes file versions older than the time-travel horizon (OBS_TIME_TRAVEL_HORIZON_HOURS, or "
        "_COMMITS): the cleaner's retention *is* the horizon, so time travel reaches exactly that far. "
        "Savepointed commits (FAILED events) are kept. Also rolls back failed writes. Records files deleted, "
        "bytes freed, earliest commit retained."
    ),
)
def table_cleaning(context: AssetExecutionContext, platform: PlatformSettings,
                   spark: SparkSessionResource) -> MaterializeResult:
    return _run_service(context, platform, spark, TableServices.clean)


@asset(
    key="timeline_archival", group_name=GROUP, deps=[AssetKey("table_cleaning")], kinds={"hudi", "spark"},
    retry_policy=CONFLICT_RETRY,
    description=(
        "Moves completed instants the cleaner is done with off the active timeline (Hudi archives only "
        "what cleaning and the metadata table's compaction have passed), keeping reads and commits fast. "
        "Records timeline length before and after."
    ),
)
def timeline_archival(context: AssetExecutionContext, platform: PlatformSettings,
                      spark: SparkSessionResource) -> MaterializeResult:
    return _run_service(context, platform, spark, TableServices.archive)


@asset(
    key="hive_sync", group_name=GROUP, deps=[PIPELINE_EVENTS_KEY], kinds={"hive", "spark"},
    retry_policy=RetryPolicy(max_retries=2, delay=15),
    description=(
        "Registers the table as observability.pipeline_events (schema + partitions) in the Hive metastore "
        "(PostgreSQL-backed) that the Spark Thrift Server shares, with Hudi's HiveSyncTool. Records "
        "partitions added/dropped, columns, the commit synced, duration."
    ),
)
def hive_sync_asset(context: AssetExecutionContext, platform: PlatformSettings,
                    spark: SparkSessionResource) -> MaterializeResult:
    from obs_platform.sqlendpoint import PostgresConfig, ensure_metastore_schema, ensure_postgres, hive_sync

    settings = platform.get()
    pg = PostgresConfig.from_settings(settings)
    ensure_postgres(pg)
    ensure_metastore_schema(settings, pg)
    with spark.session() as session:
        report = hive_sync(session, settings, TableSpec.from_settings(settings), pg)
    context.log.info(f"hive sync: +{len(report.partitions_added)} partitions, commit {report.last_commit_synced}")
    return MaterializeResult(metadata={
        "table": report.table,
        "created": report.created,
        "partitions_added": len(report.partitions_added),
        "partitions_dropped": len(report.partitions_dropped),
        "partitions": len(report.partitions),
        "last_commit_synced": report.last_commit_synced or "",
        "duration_seconds": round(report.seconds, 2),
        "columns": MetadataValue.json([list(c) for c in report.columns]),
    })


class SavepointConfig(Config):
    """Commits to savepoint (they hold a FAILED event); set by the failure sensor."""

    instants: list[str] = []
    reasons: list[str] = []


@asset(
    key="failure_savepoints", group_name=GROUP, deps=[PIPELINE_EVENTS_KEY], kinds={"hudi", "spark"},
    description=(
        "Savepoints every commit that recorded a FAILED event, so time travel to 'the moment it failed' "
        "survives cleaning; releases savepoints older than OBS_FAILURE_SAVEPOINT_RETENTION_HOURS. Triggered "
        "by the failure_savepoint_sensor."
    ),
)
def failure_savepoints(context: AssetExecutionContext, config: SavepointConfig, platform: PlatformSettings,
                       spark: SparkSessionResource) -> MaterializeResult:
    from obs_platform.maintenance.savepoints import expired_savepoints

    settings = platform.get()
    with spark.session() as session:
        services = TableServices(session, TableSpec.from_settings(settings))
        held = set(services.savepoints())
        created = [i for i in config.instants if i not in held and services.savepoint(i, "FAILED event")]
        released = [i for i in expired_savepoints(sorted(held), settings.failure_savepoint_retention_hours)
                    if i not in config.instants and services.release_savepoint(i)]
        now_held = services.savepoints()
    context.log.info(f"savepoints: +{created} -{released}")
    return MaterializeResult(metadata={
        "created": len(created), "released": len(released), "held": len(now_held),
        "instants_created": ", ".join(created), "instants_released": ", ".join(released),
        "reasons": MetadataValue.json(json.loads(json.dumps(config.reasons[:20]))),
    })


MAINTENANCE_ASSETS = [table_compaction, table_cleaning, timeline_archival, hive_sync_asset, failure_savepoints]
