"""Pub/Sub on the real emulator: topic set-up, the micro-batch reader's pull/ack/lease, redelivery."""

import time

import pytest

from obs_platform.bus.client import ensure_topic_and_subscription, publisher, topic_path
from obs_platform.bus.emulator import PSTEST_BINARY, start_emulator
from obs_platform.ingestion.pubsub_reader import PubSubBatchReader
from obs_platform.settings import Settings
from obs_platform_tests.conftest import free_port

pytestmark = pytest.mark.pubsub


def publish(settings, count, prefix="m"):
    pub = publisher(settings)
    futures = [pub.publish(topic_path(settings), f"{prefix}{i}".encode(), n=str(i)) for i in range(count)]
    return [f.result(timeout=30) for f in futures]


def test_topic_and_subscription_setup_is_idempotent(settings):
    ensure_topic_and_subscription(settings)
    ensure_topic_and_subscription(settings)  # a second `make up` must not fail
    assert len(publish(settings, 3)) == 3


def test_reader_pulls_a_bounded_batch_and_acked_messages_are_gone(settings):
    ensure_topic_and_subscription(settings)
    publish(settings, 250)
    reader = PubSubBatchReader(settings)
    try:
        first = reader.pull(max_messages=200)
        assert len(first) == 200  # back-pressure: never more than asked
        assert {m.attributes["n"] for m in first} <= {str(i) for i in range(250)}
        reader.ack(first)
        rest = reader.pull(max_messages=1000)
        reader.ack(rest)
        assert len(rest) == 50
        assert {m.data for m in first} | {m.data for m in rest} == {f"m{i}".encode() for i in range(250)}
        assert reader.pull(max_messages=1000) == []
    finally:
        reader.close()


def test_unacked_messages_are_redelivered_after_the_deadline(settings):
    ensure_topic_and_subscription(settings)
    publish(settings, 5)
    reader = PubSubBatchReader(settings)
    try:
        taken = reader.pull(100)
        assert len(taken) == 5
        assert reader.pull(100) == []  # leased: not visible to anyone else
        time.sleep(settings.ack_deadline_seconds + 2)
        again = reader.pull(100)
        assert sorted(m.data for m in again) == sorted(m.data for m in taken)
        reader.ack(again)
    finally:
        reader.close()


def test_lease_keeps_messages_from_redelivery_during_a_slow_commit(settings):
    ensure_topic_and_subscription(settings)
    publish(settings, 5)
    reader = PubSubBatchReader(settings)
    try:
        taken = reader.pull(100)
        with reader.leased(taken):
            time.sleep(settings.ack_deadline_seconds + 4)  # longer than one ack deadline
            assert reader.pull(100) == []
        reader.ack(taken)
    finally:
        reader.close()


@pytest.mark.skipif(not PSTEST_BINARY.exists(), reason="the Go fallback is built by `make emulator`")
def test_go_pstest_fallback_serves_the_same_api(tmp_path):
    settings = Settings(home=tmp_path, pubsub_port=free_port(), ack_deadline_seconds=10)
    running = start_emulator(settings, kind="pstest", log_path=tmp_path / "pstest.log")
    import os

    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = running.address
    try:
        ensure_topic_and_subscription(settings)
        publish(settings, 20)
        reader = PubSubBatchReader(settings)
        got = reader.pull(100)
        reader.ack(got)
        reader.close()
        assert sorted(m.data for m in got) == sorted(f"m{i}".encode() for i in range(20))
    finally:
        running.stop()
        if previous:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous


def test_prefetching_reader_hands_over_bounded_batches_and_loses_nothing_on_close(settings):
    """Prefetch threads keep pulling while a batch is written; the buffer is bounded by the batch limit,
    leased while it waits, and what was prefetched but never handed over is redelivered after close."""
    settings = settings.model_copy(update={"max_messages_per_batch": 100})
    ensure_topic_and_subscription(settings)
    publish(settings, 300)
    reader = PubSubBatchReader(settings, prefetch=True, pull_threads=2)
    try:
        first = reader.pull(100)
        assert len(first) == 100
        reader.ack(first)
        time.sleep(settings.ack_deadline_seconds + 3)  # buffered messages outlive one ack deadline
        second = reader.pull(100)
        reader.ack(second)
        assert len(second) == 100
        assert not {m.data for m in first} & {m.data for m in second}
    finally:
        reader.close()  # up to 100 prefetched, never handed over, never acked
    time.sleep(settings.ack_deadline_seconds + 2)
    plain = PubSubBatchReader(settings)
    rest = plain.pull(1000)
    plain.ack(rest)
    plain.close()
    seen = [m.data for m in first + second + rest]
    assert sorted(set(seen)) == sorted(f"m{i}".encode() for i in range(300))


def test_adaptive_cadence_waits_for_rows_up_to_the_delay_and_hands_a_burst_over_at_once(settings):
    """Light traffic: a batch waits until the oldest message was published commit_max_delay_seconds ago
    (the table's staleness bound), so a quiet stream commits rarely. A burst of commit_min_rows is handed
    over at once. Nothing at all: the pull returns empty after its idle time, so the query can stop."""
    settings = settings.model_copy(update={"commit_min_rows": 50, "commit_max_delay_seconds": 4.0})
    ensure_topic_and_subscription(settings)
    reader = PubSubBatchReader(settings, prefetch=True, pull_threads=1, idle_return_s=1.0)
    try:
        started = time.monotonic()
        assert reader.pull(1000) == [] and time.monotonic() - started < 5
        publish(settings, 10, prefix="light")
        light = reader.pull(1000)
        waited = time.time() - min(m.publish_time.timestamp() for m in light)
        assert len(light) == 10 and 3.5 <= waited < 9, waited
        reader.ack(light)
        publish(settings, 60, prefix="burst")
        burst = reader.pull(1000)
        waited = time.time() - min(m.publish_time.timestamp() for m in burst)
        assert len(burst) >= 50 and waited < 3.0, (len(burst), waited)
        reader.ack(burst)
    finally:
        reader.close()


def test_a_backlog_drains_in_full_batches_not_a_pull_page_at_a_time(settings):
    """An old backlog is always past the staleness bound; handing it over a pull page (<=1,000) at a time
    would pay the commit's fixed cost per page. A due batch waits for the buffer to fill while the bus still
    returns full pages, so every batch but the last is max_messages_per_batch."""
    settings = settings.model_copy(update={"commit_min_rows": 50, "commit_max_delay_seconds": 1.0,
                                           "max_messages_per_batch": 2500})
    ensure_topic_and_subscription(settings)
    publish(settings, 6000, prefix="old")
    time.sleep(1.5)  # the whole backlog is due
    reader = PubSubBatchReader(settings, prefetch=True, pull_threads=2, idle_return_s=2.0)
    sizes = []
    try:
        while sum(sizes) < 6000:
            batch = reader.pull(2500)
            assert batch, f"the backlog stopped after {sizes}"
            reader.ack(batch)
            sizes.append(len(batch))
    finally:
        reader.close()
    assert sizes == [2500, 2500, 1000], sizes
