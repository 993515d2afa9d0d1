"""Sensors: maintenance early when the table needs it, Hive sync on new partitions, savepoints on failures.
Each unpacks Dagster's context and calls a plain decide_* function."""

import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from obs_platform.assets.resources import PlatformSettings
from obs_platform.maintenance.decisions import (
    decide_cleaning,
    decide_compaction,
    decide_hive_sync,
    decide_log_compaction,
)
from obs_platform.maintenance.inventory import scan
from obs_platform.maintenance.savepoints import failure_commits
from obs_platform.settings import TableType


def _inventory(platform: PlatformSettings):
    settings = platform.get()
    if not (settings.table_path / ".hoodie").exists():
        return settings, None
    return settings, scan(settings.table_path)


def _run_or_skip(decision) -> RunRequest | SkipReason:
    return RunRequest(run_key=decision.run_key, tags={"obs/reason": decision.reason}) if decision.run \
        else SkipReason(decision.reason)


@sensor(asset_selection=[AssetKey("table_compaction")], minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Runs compaction early: on merge-on-read when one file group holds more log files than "
                    "OBS_COMPACTION_LOG_FILES_THRESHOLD (or the logs more bytes than "
                    "OBS_COMPACTION_LOG_BYTES_THRESHOLD); on copy-on-write (clustering) when small live files pass "
                    "OBS_SMALL_FILE_THRESHOLD.")
def small_files_sensor(context: SensorEvaluationContext, platform: PlatformSettings):
    settings, inv = _inventory(platform)
    if inv is None:
        return SkipReason("no table yet")
    if settings.table_type is TableType.MERGE_ON_READ:
        return _run_or_skip(decide_log_compaction(
            inv.max_log_files_per_group, inv.live_log_bytes, settings.compaction_log_files_threshold,
            settings.compaction_log_bytes_threshold, inv.newest_instant))
    return _run_or_skip(decide_compaction(inv.small_live_files, settings.small_file_threshold, inv.newest_instant))


@sensor(asset_selection=[AssetKey("table_cleaning"), AssetKey("timeline_archival")], minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Runs cleaning + archival early when the active timeline passes OBS_TIMELINE_THRESHOLD instants.")
def timeline_length_sensor(context: SensorEvaluationContext, platform: PlatformSettings):
    settings, inv = _inventory(platform)
    if inv is None:
        return SkipReason("no table yet")
    return _run_or_skip(decide_cleaning(inv.completed_instants, settings.timeline_threshold, inv.newest_instant))


@sensor(asset_selection=[AssetKey("hive_sync")], minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description="Runs Hive sync when the table gains a partition the metastore has not seen.")
def new_partitions_sensor(context: SensorEvaluationContext, platform: PlatformSettings):
    settings = platform.get()
    if not settings.sql_endpoint:
        return SkipReason("the SQL endpoint is off (OBS_SQL_ENDPOINT=false)")
    if not (settings.table_path / ".hoodie").exists():
        return SkipReason("no table yet")
    from hudi import HudiTable

    partitions = sorted({s.partition_path for s in HudiTable(settings.table_uri).get_file_slices()})
    synced = json.loads(context.cursor) if context.cursor else None
    decision = decide_hive_sync(partitions, synced)
    if not decision.run:
        return SkipReason(decision.reason)
    return SensorResult(run_requests=[RunRequest(run_key=decision.run_key, tags={"obs/reason": decision.reason})],
                        cursor=json.dumps(partitions))


@sensor(asset_selection=[AssetKey("failure_savepoints")], minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Savepoints each commit that recorded a FAILED event (time travel to the failure survives "
                    "cleaning); also releases expired failure savepoints. Batched: one run per 5 minutes at most, "
                    "since each run starts a Spark driver.")
def failure_savepoint_sensor(context: SensorEvaluationContext, platform: PlatformSettings):
    from obs_platform.query.base import EventQuery
    from obs_platform.query.embedded import EmbeddedReader

    settings = platform.get()
    reader = EmbeddedReader(settings.table_uri)
    latest = reader.latest_commit()
    if latest is None:
        return SkipReason("no table yet")
    if not context.cursor:  # first evaluation: start from now, don't savepoint the whole history
        return SensorResult(skip_reason=SkipReason(f"watching commits after {latest}"), cursor=latest)
    if latest <= context.cursor:
        return SkipReason("no new commit")
    page = reader.incremental(context.cursor, EventQuery(limit=10_000, statuses=("FAILED",)))
    failures = failure_commits(page.events)
    requests = []
    if failures:
        instants = sorted(failures)
        reasons = [f"{i}: {', '.join(ids[:3])}" for i, ids in failures.items()]
        requests.append(RunRequest(
            run_key=f"savepoint-{instants[-1]}",
            run_config={"ops": {"failure_savepoints": {"config": {"instants": instants, "reasons": reasons}}}},
            tags={"obs/reason": f"{sum(len(v) for v in failures.values())} FAILED event(s)"},
        ))
    return SensorResult(run_requests=requests, cursor=page.latest_commit or latest)


MAINTENANCE_SENSORS = [small_files_sensor, timeline_length_sensor, new_partitions_sensor, failure_savepoint_sensor]
