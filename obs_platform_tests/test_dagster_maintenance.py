"""Maintenance through Dagster on a real table: assets materialize with their numbers, sensors decide from
the table's real state, and the UI (GraphQL) shows one graph with descriptions, schedules, sensors, checks."""

import os
import shutil
import subprocess

import httpx
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from obs_platform.assets.checks import no_duplicate_record_keys, small_file_count
from obs_platform.assets.maintenance import table_cleaning, table_compaction, timeline_archival
from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.sensors import failure_savepoint_sensor, small_files_sensor
from obs_platform.assets.spark import SparkSessionResource
from obs_platform.assets.table import pipeline_events
from obs_platform.maintenance.decisions import decide_cleaning, decide_compaction, decide_hive_sync
from obs_platform.settings import REPO_ROOT
from obs_platform_tests.conftest import free_port, wait_http
from obs_platform_tests.test_maintenance import write_commits

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]


def test_decisions_are_plain_functions():
    assert not decide_compaction(5, 10, "20261126000000000").run
    assert decide_compaction(11, 10, "20261126000000000").run_key == "small-files-20261126000000000"
    assert not decide_compaction(99, 10, None).run
    assert decide_cleaning(401, 400, "20261126000000000").run
    assert decide_hive_sync(["2026/11/26"], None).run
    assert not decide_hive_sync(["2026/11/26"], ["2026/11/26"]).run
    assert "2026/11/27" in decide_hive_sync(["2026/11/26", "2026/11/27"], ["2026/11/26"]).reason


def test_maintenance_assets_materialize_with_what_they_did(spark, settings):
    settings = settings.model_copy(update={"time_travel_horizon_commits": 2})
    write_commits(spark, settings, commits=4, keys=12)  # merge-on-read: commits 2-4 append log files
    platform = PlatformSettings(home=str(settings.home))
    os.environ["OBS_TIME_TRAVEL_HORIZON_COMMITS"] = "2"
    try:
        by_key = {}
        with DagsterInstance.ephemeral() as instance:
            # compaction first; the file slices it replaced become cleanable once it falls out of the horizon
            # (2 commits), so two more commits land before cleaning.
            for selection in (["table_compaction"], ["table_cleaning", "timeline_archival"]):
                if selection[0] == "table_cleaning":
                    write_commits(spark, settings, commits=2, keys=3)
                result = materialize(
                    [pipeline_events, table_compaction, table_cleaning, timeline_archival], selection=selection,
                    resources={"platform": platform, "spark": SparkSessionResource(platform=platform)},
                    instance=instance,
                )
                assert result.success
                by_key.update({e.materialization.asset_key: {k: v.value for k, v in e.materialization.metadata.items()}
                               for e in result.get_asset_materialization_events()})
    finally:
        del os.environ["OBS_TIME_TRAVEL_HORIZON_COMMITS"]
    compaction = by_key[AssetKey("table_compaction")]
    assert compaction["service"] == "compaction" and compaction["file_slices_compacted"] > 0
    assert compaction["log_files_before"] > 0 and compaction["log_files_after"] == 0
    assert compaction["live_files_after"] == compaction["live_files_before"]  # the same buckets, new base files
    assert compaction["instants"] and compaction["duration_seconds"] > 0
    cleaning = by_key[AssetKey("table_cleaning")]
    assert cleaning["files_deleted"] > 0 and cleaning["bytes_freed"] > 0
    assert cleaning["horizon"] == "2 commits"
    assert "timeline_instants_after" in by_key[AssetKey("timeline_archival")]


def test_sensors_decide_from_the_real_table(spark, settings):
    write_commits(spark, settings, commits=3, keys=6)  # commits 2 and 3 append a log file to each file group
    platform = PlatformSettings(home=str(settings.home))
    quiet = small_files_sensor(build_sensor_context(resources={"platform": platform}))
    assert "log files in one file group <= threshold 120" in quiet.skip_message
    os.environ["OBS_COMPACTION_LOG_FILES_THRESHOLD"] = "1"
    try:
        result = small_files_sensor(build_sensor_context(resources={"platform": platform}))
    finally:
        del os.environ["OBS_COMPACTION_LOG_FILES_THRESHOLD"]
    assert result.run_key.startswith("log-files-")

    first = failure_savepoint_sensor(build_sensor_context(resources={"platform": platform}))
    cursor = first.cursor
    assert cursor and not first.run_requests  # starts watching from the newest commit
    instants = write_commits(spark, settings, commits=1, keys=2, failed_at=0, new_keys=True)
    second = failure_savepoint_sensor(build_sensor_context(cursor=cursor, resources={"platform": platform}))
    assert len(second.run_requests) == 1
    config = second.run_requests[0].run_config["ops"]["failure_savepoints"]["config"]
    assert config["instants"] == [instants[0]]
    assert second.cursor == instants[0]


def test_checks_pass_on_a_healthy_table(spark, settings):
    write_commits(spark, settings, commits=2, keys=5)
    platform = PlatformSettings(home=str(settings.home))
    dup = no_duplicate_record_keys(platform=platform)
    assert dup.passed and dup.metadata["rows"].value == 5 and dup.metadata["duplicates"].value == 0
    small = small_file_count(platform=platform)
    assert small.passed and small.metadata["small_live_files"].value >= 1


@pytest.fixture
def dagster_webserver(tmp_path):
    home = tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "OBS_DAGSTER_DIR": str(home),
           "OBS_DAGSTER_COMPUTE_LOGS": str(home / "logs"), "OBS_HOME": str(tmp_path / "obs")}
    proc = subprocess.Popen([str(REPO_ROOT / ".venv" / "bin" / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                             "-w", str(REPO_ROOT / "workspace.yaml")], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/server_info", 120)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


GRAPH = """
{ assetNodes { assetKey { path } description groupName dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name cronSchedule scheduleState { status } }
    sensors { name sensorState { status } } } } } }
"""


def test_dagster_ui_shows_one_graph_with_schedules_sensors_and_checks(dagster_webserver):
    body = httpx.post(dagster_webserver + "/graphql", json={"query": GRAPH}, timeout=60).json()
    assert "errors" not in body, body
    nodes = {"/".join(n["assetKey"]["path"]): n for n in body["data"]["assetNodes"]}
    assert set(nodes) == {"pipeline_events", "table_compaction", "table_cleaning", "timeline_archival",
                          "hive_sync", "failure_savepoints"}
    for key in ("table_compaction", "table_cleaning", "hive_sync", "failure_savepoints"):
        assert [d["path"] for d in nodes[key]["dependencyKeys"]] == [["pipeline_events"]]
        assert nodes[key]["description"] and nodes[key]["groupName"] == "maintenance"
    assert [d["path"] for d in nodes["timeline_archival"]["dependencyKeys"]] == [["table_cleaning"]]
    assert "clustering" in nodes["table_compaction"]["description"]
    checks = {c["name"] for c in nodes["pipeline_events"]["assetChecksOrError"]["checks"]}
    assert checks == {"freshness_check", "no_duplicate_record_keys", "small_file_count",
                      "oldest_commit_within_horizon", "metastore_matches_table"}
    repo = body["data"]["repositoriesOrError"]["nodes"][0]
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert schedules["compaction_hourly"]["cronSchedule"] == "7 * * * *"
    assert schedules["cleaning_daily"]["scheduleState"]["status"] == "RUNNING"
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert sensors == {name: "RUNNING" for name in (
        "ingestion_keepalive", "table_freshness_sensor", "small_files_sensor", "timeline_length_sensor",
        "new_partitions_sensor", "failure_savepoint_sensor", "dagster_runs_to_timeline", "alerts_observer")}
