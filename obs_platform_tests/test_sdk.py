"""The SDK a pipeline author adopts: one eventId per stage run, states in order, errors reported."""

import pytest

from obs_platform.demo import PIPELINES, DemoTraffic
from obs_platform.events.codec import EventCodec
from obs_platform.sdk import EventEmitter


class Collected:
    """The publish side of the emitter, keeping what it would send (the codec still runs for real)."""

    def __init__(self):
        self.messages = []

    def __call__(self, data, attributes):
        self.messages.append((data, attributes))

    def events(self):
        codec = EventCodec()
        return [codec.decode(data) for data, _ in self.messages]


def test_stage_run_emits_started_running_completed_with_one_event_id():
    sent = Collected()
    emitter = EventEmitter(sent)
    with emitter.stage_run("orders", "load", correlation_id="batch-1", source_records=100) as run:
        run.progress(processed=40)
        run.progress(processed=100)
    events = sent.events()
    assert [e["status"] for e in events] == ["STARTED", "RUNNING", "RUNNING", "COMPLETED"]
    assert len({e["eventId"] for e in events}) == 1
    assert {e["correlationId"] for e in events} == {"batch-1"}
    updated = [e["lastUpdatedAt"] for e in events]
    assert updated == sorted(updated) and len(set(updated)) == 4  # strictly increasing
    assert len({e["eventTimestamp"] for e in events}) == 1  # the stage run's start, fixed
    assert events[-1]["processedRecordCount"] == 100 and events[-1]["sourceRecordCount"] == 100


def test_an_exception_emits_failed_with_the_error_and_propagates():
    sent = Collected()
    emitter = EventEmitter(sent)
    with pytest.raises(ConnectionError):
        with emitter.stage_run("orders", "extract", correlation_id="b") as run:
            run.retrying("timeout, attempt 1")
            raise ConnectionError("warehouse unreachable")
    events = sent.events()
    assert [e["status"] for e in events] == ["STARTED", "RETRYING", "FAILED"]
    assert events[-1]["errorMessage"] == "ConnectionError: warehouse unreachable"


def test_v1_producer_still_supported():
    sent = Collected()
    emitter = EventEmitter(sent, EventCodec(writer_version=1))
    with emitter.stage_run("orders", "extract"):
        pass
    assert {e["schemaVersion"] for e in sent.events()} == {1}
    assert {a["schemaVersion"] for _, a in sent.messages} == {"1"}


def test_demo_traffic_walks_batches_through_stages_with_failures():
    sent = Collected()
    traffic = DemoTraffic(EventEmitter(sent), rate=1e9, failure_rate=0.3, seed=7)
    for _ in range(40):
        traffic.run_batch(traffic.plan(), 0.0)
    events = sent.events()
    statuses = {e["status"] for e in events}
    assert statuses == {"STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING"}
    by_batch = {}
    for e in events:
        by_batch.setdefault(e["correlationId"], []).append(e)
    for batch in by_batch.values():
        pipeline = batch[0]["pipelineName"]
        stages = list(dict.fromkeys(e["stageName"] for e in batch))
        assert stages == list(PIPELINES[pipeline][: len(stages)])  # in order, stopping at a failure
    assert all(e["sourceRecordCount"] and e["sourceRecordCount"] > 0 for e in events)


def test_fail_without_raising_ends_the_run_as_failed():
    sent = Collected()
    emitter = EventEmitter(sent)
    with emitter.stage_run("orders", "validate") as run:
        run.fail("412 rows with NULL customer_id")
    events = sent.events()
    assert [e["status"] for e in events] == ["STARTED", "FAILED"]
    assert events[-1]["errorMessage"] == "412 rows with NULL customer_id"
