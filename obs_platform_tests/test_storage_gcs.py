"""The storage layer on gs://, against fake-gcs-server (the local Cloud Storage stand-in built by
`make emulator`): the dead-letter store and the timeline reader work on a bucket exactly as on a folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from obs_platform.bus.client import ensure_topic_and_subscription, publisher, topic_path
from obs_platform.ingestion.batch import dead_letter_table
from obs_platform.ingestion.pubsub_reader import PulledMessage
from obs_platform.lakehouse import storage
from obs_platform.lakehouse.dead_letters import DeadLetterStore
from obs_platform.lakehouse.timeline import latest_commit_stats, list_timeline
from obs_platform.local.fake_gcs import BINARY, start_fake_gcs
from obs_platform.sdk import EventEmitter
from obs_platform_tests.conftest import drain_into_table, free_port

pytestmark = pytest.mark.skipif(not BINARY.exists(), reason="fake-gcs-server not built (`make emulator` needs Go)")


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    server = start_fake_gcs(tmp_path / "gcs", free_port(), buckets=("lake",))
    monkeypatch.setenv(storage.EMULATOR_ENV, server.url)
    yield server
    server.stop()


def _letter(i: int, reason: str) -> tuple[PulledMessage, str, str]:
    msg = PulledMessage(ack_id=f"a{i}", message_id=f"m{i}", data=b"\x00garbage" + bytes([i]),
                        attributes={"k": "v"}, publish_time=datetime.now(UTC))
    return msg, reason, f"detail {i}"


def test_settings_put_dead_letters_beside_a_gs_table_and_refuse_a_local_path_for_it(tmp_path):
    from obs_platform.settings import Settings

    settings = Settings(home=tmp_path, lake_uri="gs://lake/prod")
    assert settings.dead_letter_uri == "gs://lake/prod/observability/dead_letters"
    assert settings.table_uri == "gs://lake/prod/observability/pipeline_events"
    assert settings.staging_uri == "gs://lake/prod/_staging/pipeline_events"  # executors read it, not the driver's disk
    assert Settings(home=tmp_path).staging_uri == str(tmp_path / "staging")
    with pytest.raises(ValueError, match="not on a local file system"):
        _ = settings.dead_letter_path


@pytest.mark.pubsub
def test_dead_letters_on_a_bucket_are_kept_read_and_replayed(gcs, settings):
    store = DeadLetterStore("gs://lake/observability/dead_letters")
    store.append(dead_letter_table([_letter(1, "bad_bytes"), _letter(2, "unknown_schema")]), 1)
    store.append(dead_letter_table([_letter(2, "unknown_schema"), _letter(3, "bad_bytes")]), 2)  # m2 again
    assert store.count_by_reason() == {"bad_bytes": 2, "unknown_schema": 1}  # one row per messageId
    fs, _ = storage.filesystem("gs://lake")
    objects = fs.get_file_info(pafs.FileSelector("lake/observability/dead_letters", recursive=True))
    assert sum(o.path.endswith(".parquet") for o in objects) == 2  # really in the bucket
    ensure_topic_and_subscription(settings)
    pub = publisher(settings)
    assert store.replay(lambda d, a: pub.publish(topic_path(settings), d, **a), reason="bad_bytes") == 2
    assert sorted(store.pending().column("messageId").to_pylist()) == ["m2"]
    assert sorted(store.replayed_ids()) == ["m1", "m3"]


@pytest.mark.spark
def test_the_timeline_of_a_table_on_a_bucket_reads_as_on_disk(gcs, spark, settings):
    """A real table (Spark + Hudi, three commits) copied into the bucket: its timeline and its newest commit's
    stats read the same through gs:// as from the folder."""
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    t0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    for i in range(3):
        for k in range(5):
            emitter.emit({"eventId": f"k{k}", "correlationId": "c", "pipelineName": "p", "stageName": "s",
                          "status": "RUNNING", "eventTimestamp": t0, "lastUpdatedAt": t0 + timedelta(minutes=i)})
        emitter.flush()
        drain_into_table(spark, settings)
    fs, _ = storage.filesystem("gs://lake")
    pafs.copy_files(str(settings.table_path), "lake/observability/pipeline_events",
                    source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
    remote = "gs://lake/observability/pipeline_events"
    local_timeline = [(f.instant, f.action, f.state, f.completed) for f in list_timeline(settings.table_uri)]
    assert len([t for t in local_timeline if t[2] == "completed"]) >= 3
    assert [(f.instant, f.action, f.state, f.completed) for f in list_timeline(remote)] == local_timeline
    assert latest_commit_stats(remote) == latest_commit_stats(settings.table_uri)
    # hudi-rs (the BFF's embedded reader) reads the merged snapshot from the bucket too
    from hudi import HudiTable

    table = HudiTable(remote, options=storage.hudi_rs_options(remote, settings.home))
    rows = pa.Table.from_batches(table.read()).to_pylist()
    assert sorted((r["eventId"], r["lastUpdatedAt"]) for r in rows) == \
        [(f"k{k}", t0 + timedelta(minutes=2)) for k in range(5)]

