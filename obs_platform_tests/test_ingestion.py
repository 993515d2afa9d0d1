"""Ingestion on real parts: SDK -> Pub/Sub emulator -> micro-batch writer -> Hudi table (Spark, tmp folder),
read back with the embedded reader. Table state is asserted as an operator would see it."""

from datetime import UTC, datetime, timedelta

import pytest

from obs_platform.bus.client import ensure_topic_and_subscription, publisher, topic_path
from obs_platform.events.codec import EventCodec
from obs_platform.lakehouse.dead_letters import DeadLetterStore
from obs_platform.query.base import EventQuery
from obs_platform.query.embedded import EmbeddedReader
from obs_platform.sdk import EventEmitter
from obs_platform_tests.conftest import drain_into_table

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

T0 = datetime(2026, 11, 25, 23, 59, 0, tzinfo=UTC)


def state(settings):
    page = EmbeddedReader(settings.table_uri).events(EventQuery(limit=10_000))
    return {e["eventId"]: e for e in page.events}, page


def emit(emitter, event_id, status, updated_ms, **extra):
    emitter.emit({"eventId": event_id, "correlationId": "batch-1", "pipelineName": "orders",
                  "stageName": "load", "status": status, "eventTimestamp": T0,
                  "lastUpdatedAt": T0 + timedelta(milliseconds=updated_ms), **extra})


def test_newest_state_wins_within_and_across_batches(spark, settings):
    """e1: STARTED, RUNNING, COMPLETED published out of order in one batch, then a stale RUNNING in a later
    batch; e2: STARTED only. Expected table: 2 rows, e1 COMPLETED (processed 100), e2 STARTED."""
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "e1", "COMPLETED", 3, processedRecordCount=100)
    emit(emitter, "e1", "STARTED", 1)
    emit(emitter, "e1", "RUNNING", 2, processedRecordCount=50)
    emit(emitter, "e2", "STARTED", 1)
    emitter.flush()
    first = drain_into_table(spark, settings)
    rows, page = state(settings)
    assert {k: v["status"] for k, v in rows.items()} == {"e1": "COMPLETED", "e2": "STARTED"}
    assert rows["e1"]["processedRecordCount"] == 100
    assert rows["e1"]["commitTime"] == page.latest_commit == first[-1].instant

    emit(emitter, "e1", "RUNNING", 2, processedRecordCount=50)  # late, older: must not win
    emitter.flush()
    drain_into_table(spark, settings)
    rows, _ = state(settings)
    assert rows["e1"]["status"] == "COMPLETED" and rows["e1"]["processedRecordCount"] == 100
    assert len(rows) == 2
    assert rows["e1"]["eventTimestamp"] == T0
    # the row sits in the partition of its start time (UTC), yyyy/MM/dd
    assert (settings.table_path / "2026" / "11" / "25").is_dir()


def test_undecodable_messages_become_dead_letters_and_good_ones_land(spark, settings):
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "good-1", "STARTED", 1)
    pub = publisher(settings)
    pub.publish(topic_path(settings), b"not avro at all", source="test").result()
    pub.publish(topic_path(settings), b"\xc3\x01" + b"\x11" * 8 + b"body", source="test").result()
    emit(emitter, "good-2", "FAILED", 1, errorMessage="boom")
    emitter.flush()
    reports = drain_into_table(spark, settings)
    rows, _ = state(settings)
    assert set(rows) == {"good-1", "good-2"}
    assert rows["good-2"]["errorMessage"] == "boom"
    assert sum(r.dead_letters for r in reports) == 2
    store = DeadLetterStore(settings.dead_letter_path)
    assert store.count_by_reason() == {"bad_header": 1, "unknown_schema": 1}
    kept = store.read().to_pylist()
    assert {bytes(d["data"]) for d in kept} == {b"not avro at all", b"\xc3\x01" + b"\x11" * 8 + b"body"}
    assert all(dict(d["attributes"]) == {"source": "test"} for d in kept)


def test_v1_and_v2_producers_side_by_side(spark, settings):
    ensure_topic_and_subscription(settings)
    v1 = EventEmitter.from_settings(settings, schema_version=1)
    v2 = EventEmitter.from_settings(settings, schema_version=2)
    emit(v1, "old", "COMPLETED", 1)
    emit(v2, "new", "COMPLETED", 1, dataQualityScore=0.5, attributes={"owner": "team-a"})
    v1.flush()
    v2.flush()
    drain_into_table(spark, settings)
    rows, _ = state(settings)
    assert rows["old"]["schemaVersion"] == 1 and rows["old"]["dataQualityScore"] is None
    assert rows["new"]["schemaVersion"] == 2 and rows["new"]["dataQualityScore"] == 0.5
    assert rows["new"]["attributes"] == {"owner": "team-a"}


def test_codec_rejects_before_publish_so_producers_see_their_own_errors():
    with pytest.raises(ValueError):
        EventCodec().encode({"eventId": "x"})
