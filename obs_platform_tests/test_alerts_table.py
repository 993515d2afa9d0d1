"""The alerter's history-based rules read the table: on real parts (the emulator, the real micro-batch writer
into a Hudi table, the embedded reader), an alerter started after ten runs were committed learns their volumes
from the table without paging for any of them, pages once for a volume drop that arrives on the bus, and
reads the commit holding that drop from its cursor without paging again."""

from __future__ import annotations

import time
import uuid

import pytest

from obs_platform.alerts.config import parse_config
from obs_platform.alerts.service import AlertService
from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.query import open_reader
from obs_platform.sdk import EventEmitter
from obs_platform_tests.alert_receiver import Receiver
from obs_platform_tests.conftest import drain_into_table

pytestmark = [pytest.mark.pubsub, pytest.mark.spark]


def completed(batch: str, processed: int, at_ms: int) -> dict:
    return {"eventId": uuid.uuid4().hex, "correlationId": batch, "pipelineName": "orders", "stageName": "load",
            "status": "COMPLETED", "eventTimestamp": at_ms - 5000, "lastUpdatedAt": at_ms,
            "processedRecordCount": processed}


def test_volume_history_learned_from_the_table_then_one_page_for_a_drop(spark, settings):
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    now = int(time.time() * 1000)
    for i, n in enumerate([1000, 1010, 990, 1005, 995, 1002, 998, 1020, 980, 1001]):
        emitter.emit(completed(f"b{i}", n, now - (10 - i) * 60_000))
    emitter.flush()
    assert [r.instant for r in drain_into_table(spark, settings) if r.instant]

    receiver = Receiver()
    config = parse_config({"receivers": [{"name": "hook", "kind": "json", "url": receiver.url}]})
    service = AlertService(settings, config, reader=open_reader("embedded", settings, cache=False),
                           table_poll_seconds=0.5).start()
    try:
        db = service.store.connect()
        deadline = time.monotonic() + 30
        while service.store.meta("table_cursor") is None or not service.subscribed.is_set():
            assert time.monotonic() < deadline, "the alerter did not read the table / subscribe"
            time.sleep(0.1)
        assert db.execute("SELECT count(*) FROM volumes").fetchone()[0] == 10   # learned from the table
        assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0     # and paged for none of it

        emitter.emit(completed("b-drop", 120, int(time.time() * 1000)))
        emitter.flush()
        page = receiver.next(20)["body"]
        assert page["event"] == "open" and page["alert"]["rule"] == "volume"
        assert page["alert"]["details"]["median"] == 1000.5 and page["alert"]["details"]["samples"] == 10

        before = service.store.meta("table_cursor")
        drain_into_table(spark, settings)  # the drop's commit
        deadline = time.monotonic() + 30
        while service.store.meta("table_cursor") == before:
            assert time.monotonic() < deadline, "the alerter did not read the new commit"
            time.sleep(0.1)
        time.sleep(1.0)  # deliveries it might (wrongly) owe would go out within this
        assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 1
        assert receiver.requests.empty()
    finally:
        service.stop()
        receiver.close()
