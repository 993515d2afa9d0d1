"""Alerts end to end on real parts: events published to the Pub/Sub emulator, the alerter inside the real BFF
(a uvicorn process), notifications to a real local HTTP receiver, /api/alerts over HTTP with the bearer
token on; and a kill -9 of the BFF in the middle of a delivery: nothing lost, nothing new twice."""

from __future__ import annotations

import os
import queue
import signal
import time
import uuid

import httpx
import pytest

from obs_platform.alerts.service import subscription_name
from obs_platform.bus.client import ensure_topic_and_subscription, subscriber
from obs_platform.sdk import EventEmitter
from obs_platform_tests.alert_receiver import Receiver

pytestmark = [pytest.mark.pubsub]

TOKEN = "alert-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.1)


def wait_subscribed(settings) -> None:
    """The alerter creates <topic>-alerts at start; what is published before that it never sees."""
    client = subscriber(settings)
    path = client.subscription_path(settings.gcp_project, subscription_name(settings))

    def exists():
        try:
            client.get_subscription(request={"subscription": path})
            return True
        except Exception:
            return False
    try:
        wait_for(exists, 30, "the alerts subscription")
    finally:
        client.close()


def event(pipeline, stage, status, batch, error=None, event_id=None) -> dict:
    now = int(time.time() * 1000)
    return {"eventId": event_id or uuid.uuid4().hex, "correlationId": batch, "pipelineName": pipeline,
            "stageName": stage, "status": status, "eventTimestamp": now, "lastUpdatedAt": now,
            "errorMessage": error}


@pytest.fixture
def alert_env(tmp_path, settings, monkeypatch):
    receiver = Receiver()
    config = tmp_path / "alerts.toml"
    config.write_text(f'tick_seconds = 0.5\n[[receivers]]\nname = "hook"\nkind = "json"\nurl = "{receiver.url}"\n'
                      'backoff_seconds = 0.2\nmax_backoff_seconds = 1\ntimeout_seconds = 4\n')
    monkeypatch.setenv("OBS_ALERTS_FILE", str(config))
    monkeypatch.setenv("OBS_BFF_TOKEN", TOKEN)
    monkeypatch.setenv("OBS_TOPIC", settings.topic)  # bff_for passes the environment on
    monkeypatch.setenv("OBS_BFF_LIVE_PATH", "false")  # not needed here; keeps the test to the alerter
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    yield receiver, emitter
    receiver.close()


def test_failures_grouped_acknowledged_over_http_and_resolved_by_completion(settings, bff_for, alert_env):
    receiver, emitter = alert_env
    bff = bff_for(settings)
    wait_subscribed(settings)
    for i in range(5):
        emitter.emit(event("orders", "load", "FAILED", f"batch-{i}", error=f"Timeout after {3000 + i} ms, task {i}"))
    emitter.flush()
    opened = receiver.next(20)
    assert opened["body"]["event"] == "open" and opened["body"]["alert"]["rule"] == "failed"
    alert_id = opened["body"]["alert"]["id"]
    client = httpx.Client(base_url=bff.url, timeout=10)

    assert client.get("/api/alerts").status_code == 401  # auth is on
    listed = wait_for(lambda: (r := client.get("/api/alerts", params={"status": "open"}, headers=AUTH).json())
                      ["alerts"] and r["alerts"][0]["count"] == 5 and r, what="count 5")
    assert listed["total"] == 1 and listed["byStatus"]["open"] == 1
    alert = listed["alerts"][0]
    assert (alert["id"], alert["rule"], alert["pipeline"], alert["stage"]) == (alert_id, "failed", "orders", "load")
    assert alert["signature"] == "Timeout after # ms, task #"
    assert alert["links"]["journey"] == f"/api/correlations/{alert['correlationId']}"
    assert alert["links"]["atFailure"] == f"/api/events/{alert['eventId']}/at-failure"
    assert alert["firstSeen"] <= alert["lastSeen"]
    assert client.get("/api/alerts", params={"rule": "stuck"}, headers=AUTH).json()["total"] == 0
    assert client.get("/api/alerts", params={"pipeline": "billing"}, headers=AUTH).json()["total"] == 0

    assert client.post(f"/api/alerts/{alert_id}/acknowledge", json={"by": "alice"}).status_code == 401
    acked = client.post(f"/api/alerts/{alert_id}/acknowledge", json={"by": "alice"}, headers=AUTH)
    assert acked.status_code == 200
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledgedBy"] == "alice"
    assert acked.json()["acknowledgedAt"] is not None
    assert client.post("/api/alerts/999999/acknowledge", json={"by": "x"}, headers=AUTH).status_code == 404

    emitter.emit(event("orders", "load", "COMPLETED", "batch-9"))
    emitter.flush()
    resolved = receiver.next(20)
    assert resolved["body"]["event"] == "resolve" and resolved["body"]["alert"]["id"] == alert_id
    detail = wait_for(lambda: (d := client.get(f"/api/alerts/{alert_id}", headers=AUTH).json())["deliveries"][-1]
                      ["state"] == "delivered" and d, what="the resolve recorded as delivered")
    assert detail["status"] == "resolved" and detail["resolvedBy"] == "auto"
    assert [t["kind"] for t in detail["transitions"]] == ["open", "acknowledge", "resolve"]
    assert [(d["transition"], d["state"]) for d in detail["deliveries"]] == [("open", "delivered"),
                                                                             ("resolve", "delivered")]
    assert client.post(f"/api/alerts/{alert_id}/acknowledge", json={"by": "bob"}, headers=AUTH).status_code == 409
    with pytest.raises(queue.Empty):
        receiver.next(1)  # one page per transition: no storm from five failures


def test_resolve_by_hand_and_a_stuck_run_found_by_the_tick(settings, bff_for, alert_env, tmp_path):
    receiver, emitter = alert_env
    config = tmp_path / "alerts.toml"
    config.write_text(config.read_text() + '[pipelines."etl".stuck]\nlimit_seconds = 2\n')
    bff = bff_for(settings)
    wait_subscribed(settings)
    run = uuid.uuid4().hex
    emitter.emit(event("etl", "transform", "STARTED", "b-1", event_id=run))
    emitter.flush()
    opened = receiver.next(20)  # nothing else arrives: the tick finds it
    assert opened["body"]["alert"]["rule"] == "stuck" and opened["body"]["alert"]["eventId"] == run
    alert_id = opened["body"]["alert"]["id"]
    client = httpx.Client(base_url=bff.url, timeout=10, headers=AUTH)
    done = client.post(f"/api/alerts/{alert_id}/resolve", json={"by": "carol", "note": "known slow run"})
    assert done.status_code == 200 and done.json()["resolvedBy"] == "carol"
    assert done.json()["resolution"] == "known slow run"
    assert receiver.next(10)["body"]["event"] == "resolve"
    time.sleep(1.5)  # several ticks: a run resolved by hand is not reopened
    assert client.get("/api/alerts", params={"rule": "stuck"}).json()["total"] == 1


def test_kill_9_mid_delivery_then_restart_loses_nothing_and_pages_each_transition_once(settings, bff_for,
                                                                                       alert_env):
    receiver, emitter = alert_env
    receiver.hold = 2.0  # the receiver takes the body, then is slow to answer
    first = bff_for(settings)
    wait_subscribed(settings)
    emitter.emit(event("orders", "load", "FAILED", "b-1", error="disk full"))
    emitter.flush()
    got = receiver.next(20)
    os.kill(first.process.pid, signal.SIGKILL)  # before the answer: the row still says pending
    first.process.wait(10)
    receiver.hold = 0.0
    # while nothing evaluates, more happens on the bus
    emitter.emit(event("orders", "load", "FAILED", "b-2", error="disk full"))
    emitter.emit(event("orders", "load", "COMPLETED", "b-3"))
    emitter.flush()
    second = bff_for(settings)
    keys = [got["body"]["dedupKey"]]
    kinds = [got["body"]["event"]]
    deadline = time.monotonic() + 45  # a pull in flight at the kill holds its messages for the ack deadline (10 s)
    while "resolve" not in kinds and time.monotonic() < deadline:
        try:
            body = receiver.next(1)["body"]
        except queue.Empty:
            continue
        keys.append(body["dedupKey"])
        kinds.append(body["event"])
    with pytest.raises(queue.Empty):
        receiver.next(2)
    # the open page was in flight at the kill: sent again with the same key (a receiver that keeps keys drops
    # it); each transition exactly once by key; none lost
    distinct = dict(zip(keys, kinds, strict=True))
    assert sorted(distinct.values()) == ["open", "resolve"], kinds
    assert len(keys) <= 3
    alerts = httpx.get(f"{second.url}/api/alerts", headers=AUTH, timeout=10).json()
    assert alerts["total"] == 1 and alerts["alerts"][0]["status"] == "resolved"
    assert alerts["alerts"][0]["count"] == 2  # b-2, published while the alerter was dead, was not lost


def test_fuzzing_the_alert_routes_validates_every_answer_against_the_openapi_document(settings, bff_for,
                                                                                      alert_env, monkeypatch):
    """schemathesis on the four alert operations, valid and invalid input (auth off): no 5xx, a documented
    status, content type, schema and headers — the checks test_bff_conformance applies to every route."""
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from obs_platform_tests.test_bff_conformance import _fuzz

    receiver, emitter = alert_env
    monkeypatch.delenv("OBS_BFF_TOKEN")
    bff = bff_for(settings)
    wait_subscribed(settings)
    for stage in ("a", "b", "c"):  # alerts 1..3 exist: some generated ids find one
        emitter.emit(event("orders", stage, "FAILED", "b-1", error="boom"))
    emitter.flush()
    wait_for(lambda: httpx.get(f"{bff.url}/api/alerts").json()["total"] == 3, what="three alerts")
    schema = schemathesis.openapi.from_url(f"{bff.url}/openapi.json").include(path_regex="^/api/alerts")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              response_headers_conformance]
    failures: dict[tuple, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(op.label for op in operations) == ["GET /api/alerts", "GET /api/alerts/{alertId}",
                                                     "POST /api/alerts/{alertId}/acknowledge",
                                                     "POST /api/alerts/{alertId}/resolve"]

    def validate(operation, mode):
        def run_case(case):
            try:
                case.call_and_validate(base_url=bff.url, timeout=30, checks=checks)
            except (Failure, FailureGroup) as exc:
                for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                    failures.setdefault((operation.label, mode.value, failure.title),
                                        f"{failure.message}\n{case.as_curl_command()}")
        return run_case

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, 40, validate(operation, mode))
    assert not failures, "\n\n".join(f"{k}: {v[:1500]}" for k, v in failures.items())


def test_the_alerter_alone_beside_a_bff_that_only_serves(settings, bff_for, alert_env, monkeypatch):
    """``python -m obs_platform.alerts`` evaluates and delivers; a BFF with OBS_BFF_ALERTS_ENGINE=false serves
    and acknowledges the same alerts; the alerter stops cleanly on SIGTERM."""
    import subprocess
    import sys

    from obs_platform.settings import REPO_ROOT

    receiver, emitter = alert_env
    monkeypatch.setenv("OBS_BFF_ALERTS_ENGINE", "false")
    alerter = subprocess.Popen([sys.executable, "-m", "obs_platform.alerts"], cwd=REPO_ROOT,
                               env={**os.environ, "OBS_HOME": str(settings.home)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        bff = bff_for(settings)
        wait_subscribed(settings)
        emitter.emit(event("billing", "publish", "FAILED", "b-1", error="HTTP 503 from ledger"))
        emitter.flush()
        opened = receiver.next(20)["body"]
        assert opened["alert"]["pipeline"] == "billing"
        answer = httpx.post(f"{bff.url}/api/alerts/{opened['alert']['id']}/acknowledge", json={"by": "dave"},
                            headers=AUTH, timeout=10)
        assert answer.status_code == 200 and answer.json()["acknowledgedBy"] == "dave"
    finally:
        alerter.send_signal(signal.SIGTERM)
        assert alerter.wait(20) == 0, alerter.stderr.read().decode()[-2000:]
    # the BFF evaluates nothing itself: with the alerter stopped, a new failure waits on the bus
    emitter.emit(event("billing", "other", "FAILED", "b-2", error="x"))
    emitter.flush()
    with pytest.raises(queue.Empty):
        receiver.next(3)
    assert httpx.get(f"{bff.url}/api/alerts", headers=AUTH, timeout=10).json()["total"] == 1
