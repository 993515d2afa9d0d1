"""Each asset check on pipeline_events, run the way Dagster runs it (an in-process run selecting only the
check), fails on a real table built to fail it and says what is wrong; and the maintenance assets that
test_dagster_maintenance.py does not materialise (hive_sync, failure_savepoints) are materialised here."""

import os
import subprocess
import sys
import time

import pytest
from dagster import AssetCheckEvaluation, AssetKey, AssetSelection, DagsterInstance, materialize
from dagster._core.instance.ref import InstanceRef
from pyspark.sql import functions as F

from obs_platform.assets.checks import (
    freshness_checks,
    metastore_matches_table,
    no_duplicate_record_keys,
    oldest_commit_within_horizon,
    small_file_count,
)
from obs_platform.assets.ingestion import commit_materialization
from obs_platform.assets.maintenance import failure_savepoints, table_cleaning
from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.spark import SparkSessionResource
from obs_platform.assets.table import pipeline_events
from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.errors import InvalidInput
from obs_platform.lakehouse.table import TableSpec
from obs_platform.maintenance.inventory import scan
from obs_platform.maintenance.services import TableServices
from obs_platform.query.base import AsOf
from obs_platform.query.embedded import EmbeddedReader
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT
from obs_platform.sqlendpoint.hive_sync import metastore_partitions, metastore_table_exists
from obs_platform_tests.conftest import drain_into_table
from obs_platform_tests.test_maintenance import T0, snapshot, write_commits

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

META_COLUMNS = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path",
                "_hoodie_file_name")


def run_check(check, platform: PlatformSettings | None = None, instance: DagsterInstance | None = None,
              ) -> AssetCheckEvaluation:
    """One run that executes only ``check`` (as the UI's "Execute check" does) and its evaluation."""
    result = materialize([pipeline_events, check], selection=AssetSelection.checks(check), instance=instance,
                         resources={"platform": platform} if platform else None)
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def plain_upsert(spark, settings, rows) -> None:
    """A plain Spark/Hudi upsert with the table's own options, past the platform's writer and its guards."""
    rows.write.format("hudi").options(**TableSpec.from_settings(settings).upsert_options()).mode("append") \
        .save(settings.table_uri)


def one_row(spark, settings, event_id: str):
    return spark.read.format("hudi").load(settings.table_uri).where(F.col("eventId") == event_id) \
        .drop(*META_COLUMNS).cache()


# --- freshness_check -------------------------------------------------------------------------------------
def test_freshness_check_fails_when_no_commit_came_within_the_sla(spark, settings):
    sla = 2
    checks = freshness_checks(sla)  # the production builder, with a short SLA
    with DagsterInstance.ephemeral() as instance:
        never = run_check(checks[0], instance=instance)
        assert not never.passed and "never been observed/materialized" in never.description
        # the stream's real commit, recorded the way the ingestion op records each commit
        ensure_topic_and_subscription(settings)
        emitter = EventEmitter.from_settings(settings)
        emitter.emit({"eventId": "e1", "correlationId": "c1", "pipelineName": "orders", "stageName": "load",
                      "status": "RUNNING", "eventTimestamp": T0, "lastUpdatedAt": T0})
        emitter.flush()
        reports = drain_into_table(spark, settings)
        assert [r.rows_written for r in reports] == [1]
        instance.report_runless_asset_event(commit_materialization(reports[0]))
        fresh = run_check(checks[0], instance=instance)
        assert fresh.passed and fresh.description.startswith("Asset is currently fresh")
        # then the stream stops committing: once the SLA has passed since that commit, the check fails
        recorded = instance.fetch_materializations(AssetKey("pipeline_events"), limit=1).records[0].timestamp
        time.sleep(max(0.0, recorded + sla + 0.2 - time.time()))  # the condition under test is elapsed time
        stale = run_check(checks[0], instance=instance)
    assert not stale.passed and stale.description.startswith("Asset is overdue")
    assert stale.severity.value == "ERROR"


# --- no_duplicate_record_keys ----------------------------------------------------------------------------
def test_duplicate_record_keys_fail_the_check_and_are_named(spark, settings):
    write_commits(spark, settings, commits=1, keys=4)
    platform = PlatformSettings(home=str(settings.home))
    healthy = run_check(no_duplicate_record_keys, platform)
    assert healthy.passed and healthy.description == "4 rows, every record key once"
    # k001 written again into another day's partition by a plain write: the bucket index is per partition,
    # so Hudi inserts a second row with the same key (what issue 9 saw when an eventTimestamp moved)
    moved = one_row(spark, settings, "k001").withColumn("eventDate", F.lit("2026/12/24"))
    plain_upsert(spark, settings, moved)
    broken = run_check(no_duplicate_record_keys, platform)
    assert not broken.passed
    assert broken.description == "1 duplicate row(s): record key(s) k001 appear more than once"
    assert broken.metadata["duplicated_keys"].value == "k001" and broken.metadata["rows"].value == 5


# --- small_file_count --------------------------------------------------------------------------------------
def test_small_files_over_the_threshold_fail_the_check(spark, settings, monkeypatch):
    write_commits(spark, settings, commits=2, keys=6, new_keys=True)  # each commit: new small files
    platform = PlatformSettings(home=str(settings.home))
    small = scan(settings.table_path).small_live_files
    assert small >= 2
    monkeypatch.setenv("OBS_SMALL_FILE_THRESHOLD", str(small))
    ok = run_check(small_file_count, platform)
    assert ok.passed and ok.description == f"{small} small live files <= threshold {small}"
    monkeypatch.setenv("OBS_SMALL_FILE_THRESHOLD", str(small - 1))
    over = run_check(small_file_count, platform)
    assert not over.passed and over.severity.value == "WARN"
    assert over.description == f"{small} small live files > threshold {small - 1}: run table_compaction"


# --- oldest_commit_within_horizon --------------------------------------------------------------------------
def test_history_beyond_the_horizon_fails_the_check(spark, settings, monkeypatch):
    """Horizon 1 commit + timeline threshold 10 (its minimum): 11 commits may stay; a 12th never cleaned fails."""
    monkeypatch.setenv("OBS_TIME_TRAVEL_HORIZON_COMMITS", "1")
    monkeypatch.setenv("OBS_TIMELINE_THRESHOLD", "10")
    platform = PlatformSettings(home=str(settings.home))
    write_commits(spark, settings, commits=1, keys=2)
    row = one_row(spark, settings, "k000")
    for i in range(1, 11):
        plain_upsert(spark, settings, row.withColumn("processedRecordCount", F.lit(i)))
    assert scan(settings.table_path).commits == 11
    within = run_check(oldest_commit_within_horizon, platform)
    assert within.passed and within.description.startswith("11 commits on the active timeline <= limit 11")
    plain_upsert(spark, settings, row.withColumn("processedRecordCount", F.lit(11)))
    beyond = run_check(oldest_commit_within_horizon, platform)
    assert not beyond.passed
    assert beyond.description == ("12 commits on the active timeline > limit 11 (horizon 1 commits + timeline "
                                  "threshold 10): cleaning and archival are behind")


# --- metastore_matches_table + the hive_sync asset ---------------------------------------------------------
def materialize_in_subprocess(selection: str, env: dict[str, str], dagster_home) -> dict:
    """``dagster asset materialize`` as an operator runs it: its own process, so its Spark driver starts with
    the PostgreSQL JDBC driver that Hive sync needs; returns the materialization's metadata."""
    dagster_home.mkdir(exist_ok=True)
    proc = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "dagster"), "asset", "materialize", "-m", "obs_platform.definitions",
         "--select", selection],
        cwd=REPO_ROOT, env={**os.environ, **env, "DAGSTER_HOME": str(dagster_home), "PYSPARK_PYTHON": sys.executable},
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
        [record] = instance.fetch_materializations(AssetKey(selection), limit=1).records
        return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_metastore_check_fails_until_hive_sync_and_on_a_new_partition(spark, settings, sql_endpoint, tmp_path,
                                                                      monkeypatch):
    """The table lives beside the SQL endpoint's metastore (its PostgreSQL is found under the same home)."""
    name = "checks_" + tmp_path.name.lower().replace("-", "_")[-30:]
    table = settings.model_copy(update={"home": sql_endpoint.settings.home, "table": name})
    env = {"OBS_HOME": str(table.home), "OBS_TABLE": name, "OBS_DATABASE": table.database,
           "OBS_METASTORE_PG_PORT": str(sql_endpoint.pg.port)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    platform = PlatformSettings(home=str(table.home))
    write_commits(spark, table, commits=1, keys=2)  # eventTimestamps on 2 days: 2 partitions

    unsynced = run_check(metastore_matches_table, platform)
    assert not unsynced.passed
    assert unsynced.description == f"{table.database}.{name} is not in the metastore: run hive_sync"

    synced = materialize_in_subprocess("hive_sync", env, tmp_path / "dagster-home")
    assert synced["created"] is True and synced["partitions_added"] == 2 and synced["partitions"] == 2
    assert synced["last_commit_synced"] == scan(table.table_path).newest_instant
    assert "eventid" in {c[0].lower() for c in synced["columns"]}
    assert metastore_table_exists(sql_endpoint.pg, table.database, name)
    assert len(metastore_partitions(sql_endpoint.pg, table.database, name)) == 2
    current = run_check(metastore_matches_table, platform)
    assert current.passed and current.description.endswith("and 2 partitions")

    moved = one_row(spark, table, "k000").withColumn("eventDate", F.lit("2026/12/24"))
    plain_upsert(spark, table, moved)  # a third partition the metastore has not seen
    behind = run_check(metastore_matches_table, platform)
    assert not behind.passed
    assert behind.description == "partitions missing from the metastore: 2026-12-24: run hive_sync"


# --- failure_savepoints ------------------------------------------------------------------------------------
def test_failure_savepoints_asset_keeps_the_failed_commit_through_cleaning(spark, settings, monkeypatch):
    """The FAILED state is in the second of five commits, each compacted; with a 2-commit horizon cleaning
    frees older file slices and would take it, but the asset's savepoint keeps time travel to it working
    (the shape of test_maintenance's services test, here through the two assets)."""
    monkeypatch.setenv("OBS_TIME_TRAVEL_HORIZON_COMMITS", "2")
    settings = settings.model_copy(update={"time_travel_horizon_commits": 2})
    services = TableServices(spark, TableSpec.from_settings(settings))
    instants = write_commits(spark, settings, commits=5, failed_at=1, after_each=services.compact)
    platform = PlatformSettings(home=str(settings.home))
    resources = {"platform": platform, "spark": SparkSessionResource(platform=platform)}
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [pipeline_events, failure_savepoints], selection=["failure_savepoints"], instance=instance,
            resources=resources, run_config={"ops": {"failure_savepoints": {"config": {
                "instants": [instants[1]], "reasons": [f"{instants[1]}: k000"]}}}})
        assert result.success
        [event] = result.get_asset_materialization_events()
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        assert meta["created"] == 1 and meta["held"] == 1 and meta["instants_created"] == instants[1]
        assert services.savepoints() == [instants[1]]
        timeline = {p.name for p in (settings.table_path / ".hoodie").rglob(f"{instants[1]}*.savepoint")}
        assert timeline, "no completed savepoint instant on the timeline"

        cleaned = materialize([pipeline_events, table_cleaning], selection=["table_cleaning"], instance=instance,
                              resources=resources)
        assert cleaned.success
        [clean_event] = cleaned.get_asset_materialization_events()
        assert clean_event.materialization.metadata["files_deleted"].value > 0
    assert snapshot(settings, instants[1])["k000"] == ("FAILED", 1)  # time travel to the failure still works
    assert snapshot(settings)["k000"] == ("RUNNING", 4)
    assert meta["reasons"] == [f"{instants[1]}: k000"]
    with pytest.raises(InvalidInput, match="older than the oldest retained commit"):  # before it: cleaned
        EmbeddedReader(settings.table_uri).resolve_as_of(AsOf.parse(instants[0]))
