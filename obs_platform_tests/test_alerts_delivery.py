"""Alert notifications reach real local HTTP receivers (http.server threads) from the outbox: the three payload
shapes; a receiver down then back gets each notification once, after retries; a receiver that hangs does not
delay another receiver."""

from __future__ import annotations

import queue
import socket
import time
import uuid

import pytest

from obs_platform.alerts.config import parse_config
from obs_platform.alerts.delivery import DeliveryWorkers
from obs_platform.alerts.engine import AlertEngine
from obs_platform.alerts.store import Store
from obs_platform_tests.alert_receiver import Receiver
from obs_platform_tests.conftest import free_port

T0 = time.time()


def ev(pipeline, stage, status, at, batch="b1", error=None, event_id=None) -> dict:
    return {"eventId": event_id or uuid.uuid4().hex, "correlationId": batch, "pipelineName": pipeline,
            "stageName": stage, "status": status, "eventTimestamp": int(at * 1000), "lastUpdatedAt": int(at * 1000),
            "processedRecordCount": None, "sourceRecordCount": None, "errorMessage": error, "attributes": {}}


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(**kwargs) -> Receiver:
        r = Receiver(**kwargs)
        started.append(r)
        return r
    yield start
    for r in started:
        r.close()


def running(tmp_path, spec: dict) -> tuple[AlertEngine, DeliveryWorkers]:
    config = parse_config(spec)
    store = Store(tmp_path / "alerts.db")
    engine = AlertEngine(store, config)
    workers = DeliveryWorkers(Store(tmp_path / "alerts.db"), config, poll_seconds=0.1).start()
    return engine, workers


def test_three_payload_shapes_on_open_and_resolve(tmp_path, receivers):
    generic, slack, pd = receivers(), receivers(), receivers(status=202)
    engine, workers = running(tmp_path, {"receivers": [
        {"name": "json", "kind": "json", "url": generic.url},
        {"name": "slack", "kind": "slack", "url": slack.url},
        {"name": "pd", "kind": "pagerduty", "url": pd.url, "routing_key": "R0UT1NG"}]})
    try:
        engine.observe([ev("orders", "load", "FAILED", T0, batch="batch-7", error="Timeout after 30 s")])
        engine.observe([ev("orders", "load", "COMPLETED", T0 + 5, batch="batch-8")])
        workers.notify()
        opened, resolved = generic.next(), generic.next()
        assert opened["body"]["event"] == "open" and resolved["body"]["event"] == "resolve"
        alert = opened["body"]["alert"]
        assert (alert["rule"], alert["pipeline"], alert["stage"], alert["status"], alert["count"]) == \
            ("failed", "orders", "load", "open", 1)
        assert alert["links"]["journey"] == "/api/correlations/batch-7"
        assert alert["links"]["atFailure"] == f"/api/events/{alert['eventId']}/at-failure"
        assert opened["headers"]["Idempotency-Key"] == opened["body"]["dedupKey"] != resolved["body"]["dedupKey"]
        assert resolved["body"]["alert"]["status"] == "resolved"

        s_open, s_resolve = slack.next(), slack.next()
        assert s_open["body"]["text"].startswith(":rotating_light: OPEN [critical] failed — orders / load")
        assert s_open["body"]["blocks"][0]["type"] == "section"
        assert s_resolve["body"]["text"].startswith(":white_check_mark: RESOLVED")

        p_open, p_resolve = pd.next(), pd.next()
        assert p_open["body"]["routing_key"] == "R0UT1NG" and p_open["body"]["event_action"] == "trigger"
        assert p_open["body"]["payload"]["severity"] == "critical" and p_open["body"]["payload"]["source"] == "orders"
        assert "Timeout after 30 s" in p_open["body"]["payload"]["summary"]
        assert p_resolve["body"]["event_action"] == "resolve"
        assert p_open["body"]["dedup_key"] == p_resolve["body"]["dedup_key"] == f"obs-alert-{alert['id']}"
        with pytest.raises(queue.Empty):
            generic.next(timeout=0.5)  # nothing more
        log = engine.store.connect().execute("SELECT receiver, state, attempts FROM deliveries ORDER BY id").fetchall()
        assert sorted(tuple(r) for r in log) == sorted([(n, "delivered", 1) for n in ("json", "slack", "pd")] * 2)
    finally:
        workers.stop()


def test_routing_by_pipeline_and_severity(tmp_path, receivers):
    pager, chat = receivers(), receivers()
    engine, workers = running(tmp_path, {
        "rules": {"retry_loop": {"max_retries": 0}},
        "receivers": [{"name": "pager", "kind": "json", "url": pager.url, "pipelines": ["orders*"],
                       "min_severity": "critical"},
                      {"name": "chat", "kind": "json", "url": chat.url}]})
    try:
        engine.observe([ev("orders-eu", "load", "RETRYING", T0, error="429")])   # warning: chat only
        engine.observe([ev("billing", "load", "FAILED", T0, error="x")])         # other pipeline: chat only
        engine.observe([ev("orders-eu", "load", "FAILED", T0, error="x")])       # critical orders*: both
        workers.notify()
        got = [chat.next()["body"]["alert"]["rule"] for _ in range(3)]
        assert sorted(got) == ["failed", "failed", "retry_loop"]
        only = pager.next()["body"]["alert"]
        assert (only["pipeline"], only["rule"]) == ("orders-eu", "failed")
        with pytest.raises(queue.Empty):
            pager.next(timeout=0.5)
    finally:
        workers.stop()


def test_a_receiver_down_then_back_gets_each_notification_once(tmp_path, receivers):
    port = free_port()  # nothing listens here yet: connection refused
    engine, workers = running(tmp_path, {"receivers": [
        {"name": "flaky", "kind": "json", "url": f"http://127.0.0.1:{port}/hook", "backoff_seconds": 0.2,
         "max_backoff_seconds": 0.5}]})
    try:
        engine.observe([ev("p", "s", "FAILED", T0, error="boom")])
        workers.notify()
        db = engine.store.connect()
        deadline = time.monotonic() + 10
        while db.execute("SELECT coalesce(max(attempts), 0) FROM deliveries").fetchone()[0] < 2:
            assert time.monotonic() < deadline, "no retries"
            time.sleep(0.05)
        row = db.execute("SELECT state, last_error FROM deliveries").fetchone()
        assert row["state"] == "pending" and "ConnectError" in row["last_error"]
        back = receivers(port=port)
        first = back.next()
        assert first["body"]["event"] == "open"
        with pytest.raises(queue.Empty):
            back.next(timeout=1.5)  # once, not once per failed attempt
        log = db.execute("SELECT ok FROM delivery_attempts ORDER BY at").fetchall()
        assert [r[0] for r in log][-1] == 1 and [r[0] for r in log][:-1] == [0] * (len(log) - 1) and len(log) >= 3
    finally:
        workers.stop()


def test_a_hanging_receiver_does_not_hold_up_another(tmp_path, receivers):
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)  # accepts connections, never answers
    fast = receivers()
    engine, workers = running(tmp_path, {"receivers": [
        {"name": "hang", "kind": "json", "url": f"http://127.0.0.1:{hanging.getsockname()[1]}/h",
         "timeout_seconds": 30},
        {"name": "fast", "kind": "json", "url": fast.url}]})
    try:
        started = time.monotonic()
        for i in range(3):
            engine.observe([ev("p", f"s{i}", "FAILED", T0, error="boom")])
        workers.notify()
        bodies = [fast.next(timeout=5) for _ in range(3)]
        assert time.monotonic() - started < 5
        assert sorted(b["body"]["alert"]["stage"] for b in bodies) == ["s0", "s1", "s2"]
    finally:
        hanging.close()
        workers.stop(timeout=1)
