"""Asset checks that guard the table."""

import warnings
from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    DefaultSensorStatus,
    asset_check,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
)

from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.table import PIPELINE_EVENTS_KEY


def freshness_checks(sla_seconds: int) -> list[AssetChecksDefinition]:
    """Fails (as an ERROR-severity check) when no commit reached the table within the SLA: the stream is
    dead, stuck, or starved. Evaluated from the commit materializations the ingestion records."""
    # Dagster 1.13 prefers FreshnessPolicy, which shows a state but is not an asset check; we want a check
    # that fails, so we keep the freshness-check builders and silence their supersession notice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(build_last_update_freshness_checks(
            assets=[PIPELINE_EVENTS_KEY], lower_bound_delta=timedelta(seconds=sla_seconds),
            severity=AssetCheckSeverity.ERROR,
        ))


def freshness_sensor(checks: list[AssetChecksDefinition]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_sensor_for_freshness_checks(
            freshness_checks=checks, minimum_interval_seconds=30, name="table_freshness_sensor",
            default_status=DefaultSensorStatus.RUNNING,
        )


@asset_check(asset=PIPELINE_EVENTS_KEY, description="Every record key (eventId) appears once in the snapshot.")
def no_duplicate_record_keys(platform: PlatformSettings) -> AssetCheckResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    from hudi import HudiReadOptions, HudiTable

    settings = platform.get()
    if not (settings.table_path / ".hoodie").exists():
        return AssetCheckResult(passed=True, metadata={"rows": 0, "note": "no table yet"})
    batches = HudiTable(settings.table_uri).read(HudiReadOptions(projection=["eventId"]))
    keys = pa.concat_arrays([b.column(0) for b in batches]) if batches else pa.array([], pa.string())
    counts = pc.value_counts(keys).to_pylist() if len(keys) else []
    repeated = sorted(str(c["values"]) for c in counts if c["counts"] > 1)
    distinct = len(counts)
    description = (f"{len(keys)} rows, every record key once" if not repeated else
                   f"{len(keys) - distinct} duplicate row(s): record key(s) {', '.join(repeated[:10])}"
                   f"{' ...' if len(repeated) > 10 else ''} appear more than once")
    return AssetCheckResult(passed=not repeated, description=description,
                            metadata={"rows": len(keys), "distinct_keys": distinct, "duplicates": len(keys) - distinct,
                                      "duplicated_keys": ", ".join(repeated[:20])})


@asset_check(asset=PIPELINE_EVENTS_KEY, description="Small live files stay under OBS_SMALL_FILE_THRESHOLD.")
def small_file_count(platform: PlatformSettings) -> AssetCheckResult:
    from obs_platform.maintenance.inventory import scan

    settings = platform.get()
    if not (settings.table_path / ".hoodie").exists():
        return AssetCheckResult(passed=True, metadata={"note": "no table yet"})
    inv = scan(settings.table_path)
    passed = inv.small_live_files <= settings.small_file_threshold
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.WARN,
                            description=f"{inv.small_live_files} small live files "
                                        f"{'<=' if passed else '>'} threshold {settings.small_file_threshold}"
                                        + ("" if passed else ": run table_compaction"),
                            metadata={"small_live_files": inv.small_live_files, "live_files": inv.live_files,
                                      "threshold": settings.small_file_threshold})


@asset_check(asset=PIPELINE_EVENTS_KEY,
             description="The oldest retained commit is within the time-travel horizon plus one cleaning cycle "
                         "(a day): cleaning keeps up, and no history older than promised piles up.")
def oldest_commit_within_horizon(platform: PlatformSettings) -> AssetCheckResult:
    from datetime import UTC, datetime, timedelta

    from obs_platform.maintenance.inventory import scan
    from obs_platform.maintenance.savepoints import instant_time

    settings = platform.get()
    if not (settings.table_path / ".hoodie").exists():
        return AssetCheckResult(passed=True, metadata={"note": "no table yet"})
    inv = scan(settings.table_path)
    if settings.time_travel_horizon_commits:
        limit = settings.time_travel_horizon_commits + settings.timeline_threshold
        passed = inv.commits <= limit
        return AssetCheckResult(passed=passed,
                                description=f"{inv.commits} commits on the active timeline "
                                            f"{'<=' if passed else '>'} limit {limit} (horizon "
                                            f"{settings.time_travel_horizon_commits} commits + timeline threshold "
                                            f"{settings.timeline_threshold})"
                                            + ("" if passed else ": cleaning and archival are behind"),
                                metadata={"commits_on_timeline": inv.commits, "limit": limit})
    age = datetime.now(UTC) - instant_time(inv.oldest_instant)
    allowed = timedelta(hours=settings.time_travel_horizon_hours) + timedelta(days=1)
    passed = age <= allowed
    return AssetCheckResult(passed=passed, severity=AssetCheckSeverity.WARN,
                            description=f"oldest commit {inv.oldest_instant} is {age.total_seconds() / 3600:.1f} h old, "
                                        f"{'within' if passed else 'beyond'} the horizon "
                                        f"({settings.time_travel_horizon_hours} h) plus one day"
                                        + ("" if passed else ": cleaning is behind"),
                            metadata={"oldest_commit": inv.oldest_instant, "age_hours": round(age.total_seconds() / 3600, 2),
                                      "horizon_hours": settings.time_travel_horizon_hours})


@asset_check(asset=PIPELINE_EVENTS_KEY,
             description="The metastore's columns and partitions equal the table's (Hive sync is current).")
def metastore_matches_table(platform: PlatformSettings) -> AssetCheckResult:
    from hudi import HudiTable

    from obs_platform.sqlendpoint.hive_sync import (
        metastore_columns,
        metastore_partitions,
        metastore_table_exists,
    )
    from obs_platform.sqlendpoint.postgres import PostgresConfig, ensure_postgres

    settings = platform.get()
    if not settings.sql_endpoint:
        return AssetCheckResult(passed=True, metadata={"note": "SQL endpoint off (OBS_SQL_ENDPOINT=false)"})
    if not (settings.table_path / ".hoodie").exists():
        return AssetCheckResult(passed=True, metadata={"note": "no table yet"})
    pg = PostgresConfig.from_settings(settings)
    ensure_postgres(pg)
    if not metastore_table_exists(pg, settings.database, settings.table):
        return AssetCheckResult(passed=False, description=f"{settings.database}.{settings.table} is not in the "
                                                          "metastore: run hive_sync",
                                metadata={"note": "not in the metastore: run hive_sync"})
    table = HudiTable(settings.table_uri)
    table_columns = {f.name.lower() for f in table.get_schema_with_meta_fields()}
    meta_columns = {name.lower() for name, _ in metastore_columns(pg, settings.database, settings.table)}
    table_partitions = {s.partition_path.replace("/", "-") for s in table.get_file_slices()}
    meta_partitions = {p.split("=", 1)[-1] for p in metastore_partitions(pg, settings.database, settings.table)}
    missing_columns = sorted(table_columns - meta_columns)
    missing_partitions = sorted(table_partitions - meta_partitions)
    problems = ([f"columns missing from the metastore: {', '.join(missing_columns)}"] if missing_columns else []) + (
        [f"partitions missing from the metastore: {', '.join(missing_partitions[:20])}"] if missing_partitions else [])
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) + ": run hive_sync" if problems else
        f"the metastore has the table's {len(table_columns)} columns and {len(table_partitions)} partitions",
        metadata={"missing_columns": ", ".join(missing_columns), "missing_partitions": ", ".join(missing_partitions[:20]),
                  "table_partitions": len(table_partitions), "metastore_partitions": len(meta_partitions)},
    )


TABLE_CHECKS = [no_duplicate_record_keys, small_file_count, oldest_commit_within_horizon, metastore_matches_table]
