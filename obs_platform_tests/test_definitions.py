"""Dagster wiring: the definitions load and name what the UI shows; sensor decisions are plain functions."""

from dagster import AssetKey, DagsterInstance, RunRequest, SkipReason, build_sensor_context

from obs_platform.assets.ingestion import commit_materialization, decide_ingestion_start, ingestion_keepalive
from obs_platform.assets.resources import PlatformSettings
from obs_platform.definitions import build_definitions
from obs_platform.ingestion.stream import CommitReport
from obs_platform.settings import Settings


def test_definitions_expose_the_table_the_job_and_the_keepalive_sensor():
    defs = build_definitions(Settings())
    assert AssetKey("pipeline_events") in defs.resolve_asset_graph().get_all_asset_keys()
    assert {k.name for k in defs.resolve_asset_graph().asset_check_keys} == {
        "freshness_check", "no_duplicate_record_keys", "small_file_count", "oldest_commit_within_horizon",
        "metastore_matches_table"}
    assert {"ingestion_keepalive", "table_freshness_sensor", "failure_savepoint_sensor"} <= {s.name for s in defs.sensors}
    assert defs.resolve_job_def("streaming_ingestion").name == "streaming_ingestion"
    assert defs.resolve_sensor_def("ingestion_keepalive").job_name == "streaming_ingestion"


def test_keepalive_starts_the_stream_only_when_none_is_active():
    assert isinstance(decide_ingestion_start(0, 1_700_000_000), RunRequest)
    assert isinstance(decide_ingestion_start(1, 1_700_000_000), SkipReason)
    off = decide_ingestion_start(0, 1_700_000_000, autostart=False)
    assert isinstance(off, SkipReason) and "OBS_INGESTION_AUTOSTART" in off.skip_message


def test_keepalive_sensor_requests_a_run_on_an_empty_instance():
    with DagsterInstance.ephemeral() as instance:
        result = ingestion_keepalive(build_sensor_context(instance=instance,
                                                          resources={"platform": PlatformSettings()}))
        assert isinstance(result, RunRequest)
        assert result.run_key.startswith("ingestion-")


def test_a_commit_becomes_a_materialization_with_its_numbers():
    report = CommitReport(batch_id=7, instant="20261126093000123", rows_written=120, rows_inserted=40,
                          rows_updated=80, dead_letters=2, bytes_written=4096, batch_seconds=2.5,
                          oldest_publish_to_commit_s=3.25)
    event = commit_materialization(report)
    assert event.asset_key == AssetKey("pipeline_events")
    values = {k: v.value for k, v in event.metadata.items()}
    assert values["instant"] == "20261126093000123"
    assert values["rows_inserted"] == 40 and values["rows_updated"] == 80 and values["dead_letters"] == 2
    assert values["publish_to_commit_seconds"] == 3.25
