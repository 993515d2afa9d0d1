"""Dagster's own runs on the timeline: a real job run on a real (SQLite) Dagster instance, the platform's
sensor publishing its run and step events to the Pub/Sub emulator, the real writer, the BFF over HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from dagster import DagsterInstance, build_sensor_context, job, op

from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.run_events import dagster_runs_to_timeline
from obs_platform.bus.client import ensure_topic_and_subscription, subscriber
from obs_platform.events.codec import EventCodec
from obs_platform.settings import Settings
from obs_platform_tests.conftest import drain_into_table
from obs_platform_tests.test_lineage_intake import start_bff

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]


@op
def extract() -> int:
    return 1200


@op
def transform(rows: int) -> int:
    raise ValueError(f"bad row 17 of {rows}: amount is negative")


@op
def load(rows: int) -> None:
    pass


@job
def nightly_orders():
    load(transform(extract()))


@op
def ping() -> int:
    return 1


@op
def pong(n: int) -> int:
    return n + 1


@job
def healthy_job():
    pong(ping())


def tick(instance, cursor, home):
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"platform": PlatformSettings(home=str(home))})
    result = dagster_runs_to_timeline(context)
    return result.skip_message, context.cursor


def pull_all(settings: Settings, subscription: str) -> list[dict]:
    sub = subscriber(settings)
    path = sub.subscription_path(settings.gcp_project, subscription)
    out = []
    try:
        while True:
            response = sub.pull(request={"subscription": path, "max_messages": 100}, timeout=5)
            if not response.received_messages:
                return out
            out += [EventCodec().decode(m.message.data) for m in response.received_messages]
            sub.acknowledge(request={"subscription": path, "ack_ids": [m.ack_id for m in response.received_messages]})
    finally:
        sub.close()


def test_a_job_failing_in_its_second_step_is_on_the_timeline_with_the_error(tmp_path, emulator, spark, monkeypatch):
    host, port = emulator.split(":")
    settings = Settings(home=tmp_path, bind_host=host, pubsub_port=int(port), topic="dagster-runs",
                        subscription="dagster-runs-hudi", ack_deadline_seconds=10)
    for key, value in (("OBS_TOPIC", settings.topic), ("OBS_SUBSCRIPTION", settings.subscription),
                       ("OBS_PUBSUB_PORT", port)):
        monkeypatch.setenv(key, value)
    ensure_topic_and_subscription(settings)
    probe = subscriber(settings)
    probe.create_subscription(request={"name": probe.subscription_path(settings.gcp_project, "dagster-runs-probe"),
                                       "topic": f"projects/{settings.gcp_project}/topics/{settings.topic}"})
    probe.close()

    (tmp_path / "dagster").mkdir()
    instance = DagsterInstance.local_temp(str(tmp_path / "dagster"))
    failed = nightly_orders.execute_in_process(instance=instance, raise_on_error=False)
    assert not failed.success
    message, cursor = tick(instance, None, tmp_path)
    assert message == "published 4 run/step events"
    assert tick(instance, cursor, tmp_path)[0] == "no new run or step events"   # the same cursor: nothing again
    # a restarted daemon starts from the stored cursor: the next run only
    healthy = healthy_job.execute_in_process(instance=instance)
    message, _ = tick(instance, cursor, tmp_path)
    assert message == "published 4 run/step events"

    published = pull_all(settings, "dagster-runs-probe")
    assert sorted((e["correlationId"] == failed.run_id, e["stageName"], e["status"]) for e in published) == [
        (False, "ping", "COMPLETED"), (False, "ping", "STARTED"), (False, "pong", "COMPLETED"), (False, "pong", "STARTED"),
        (True, "extract", "COMPLETED"), (True, "extract", "STARTED"), (True, "transform", "FAILED"),
        (True, "transform", "STARTED")]  # each once: nothing emitted twice, the skipped step never started

    reports = drain_into_table(spark, settings)
    url, proc = start_bff(settings)
    try:
        deadline = time.monotonic() + 30
        while True:
            body = httpx.get(f"{url}/api/events", params={"correlationId": failed.run_id}, timeout=30).json()
            if body.get("latestCommit") and body["latestCommit"] >= reports[-1].instant or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        rows = {e["stageName"]: e for e in body["events"]}
        assert {s: r["status"] for s, r in rows.items()} == {"extract": "COMPLETED", "transform": "FAILED"}
        assert {r["pipelineName"] for r in rows.values()} == {"nightly_orders"}
        transform_row = rows["transform"]
        assert "bad row 17 of 1200: amount is negative" in transform_row["errorMessage"]
        assert transform_row["eventId"] == f"{failed.run_id}:transform"
        assert transform_row["attributes"]["dagster.eventType"] == "STEP_FAILURE"
        assert transform_row["eventTimestamp"] >= rows["extract"]["eventTimestamp"]

        journey = httpx.get(f"{url}/api/correlations/{failed.run_id}", timeout=30).json()
        assert journey["status"] == "FAILED" and journey["pipelines"] == ["nightly_orders"]
        assert [s["stageName"] for s in journey["stages"]] == ["extract", "transform"]
        assert "amount is negative" in journey["stages"][1]["errorMessage"]
        assert journey["stages"][0]["durationSeconds"] is not None

        at_failure = httpx.get(f"{url}/api/events/{failed.run_id}:transform/at-failure", timeout=30)
        assert at_failure.status_code == 200, at_failure.text
        state = at_failure.json()
        assert state["event"]["status"] == "FAILED" and state["pipelineName"] == "nightly_orders"
        assert {e["stageName"] for e in state["pipelineState"]["events"]} == {"extract", "transform"}

        ok = httpx.get(f"{url}/api/correlations/{healthy.run_id}", timeout=30).json()
        assert ok["status"] == "COMPLETED" and [s["stageName"] for s in ok["stages"]] == ["ping", "pong"]
    finally:
        proc.terminate()
        proc.wait(10)
