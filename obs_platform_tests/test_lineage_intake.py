"""The OpenLineage intake over HTTP: openlineage-python's real HTTP transport (plain, gzip, bearer token, its
retry on 5xx) and batches (JSON array, NDJSON) into the real BFF, published to the Pub/Sub emulator, upserted by
the real micro-batch writer, read back through the BFF's events, journey and at-failure endpoints."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import RunState
from openlineage.client.transport.http import (
    HttpCompression,
    HttpConfig,
    HttpTransport,
    create_token_provider,
)

from obs_platform.bus.client import ensure_topic_and_subscription, subscriber, subscription_path
from obs_platform.events.codec import EventCodec
from obs_platform.settings import REPO_ROOT, Settings
from obs_platform_tests.conftest import drain_into_table, free_port, wait_http
from obs_platform_tests.lineage_events import AirflowDagRun, as_json, event, uuid7, write

pytestmark = [pytest.mark.pubsub]
TOKEN = "intake-s3cret"


def start_bff(settings: Settings, **env) -> tuple[str, subprocess.Popen]:
    port = free_port()
    full_env = {**os.environ, "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(port), "OBS_BIND_HOST": "127.0.0.1",
                "OBS_TOPIC": settings.topic, "OBS_SUBSCRIPTION": settings.subscription,
                "OBS_PUBSUB_PORT": str(settings.pubsub_port), **env}
    proc = subprocess.Popen([sys.executable, "-m", "bff"], cwd=REPO_ROOT, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/health", 30)
    return url, proc


@pytest.fixture(scope="module")
def intake(tmp_path_factory, emulator):
    home = tmp_path_factory.mktemp("lineage")
    host, port = emulator.split(":")
    settings = Settings(home=home, bind_host=host, pubsub_port=int(port), topic="lineage-events",
                        subscription="lineage-events-hudi", ack_deadline_seconds=10)
    ensure_topic_and_subscription(settings)
    plain_url, plain = start_bff(settings)
    auth_url, auth = start_bff(settings, OBS_BFF_TOKEN=TOKEN)
    yield settings, plain_url, auth_url
    for proc in (plain, auth):
        proc.terminate()
        proc.wait(10)


def transport(url: str, **config) -> HttpTransport:
    return HttpTransport(HttpConfig.from_dict({"url": url, **config}))


def post(url: str, body: bytes | str, **headers) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/lineage", content=body, headers={"Content-Type": "application/json", **headers},
                      timeout=30)


def start_event(run_id: str, name: str = "adhoc.job", at: datetime | None = None, **extra) -> dict:
    return as_json(event(RunState.START, at or datetime.now(UTC) - timedelta(minutes=5), run_id, "adhoc-ns", name,
                         **extra))


# --- over HTTP, no table needed -------------------------------------------------------------------------------
def test_the_real_client_plain_and_gzip_get_a_2xx_after_the_publish(intake):
    _, url, _ = intake
    run_id = uuid7(datetime.now(UTC) - timedelta(minutes=3))
    for config in ({}, {"compression": "gzip"}):
        sent = transport(url, **config)
        assert sent.compression == (HttpCompression.GZIP if config else None)
        response = sent.emit(event(RunState.START, datetime.now(UTC) - timedelta(minutes=3), run_id, "adhoc-ns",
                                   "probe"))
        assert response.status_code == 200
        body = response.json()
        assert body == {"received": 1, "published": 1, "eventIds": [run_id], "notStored": []}


def test_with_auth_on_the_client_needs_the_bearer_token(intake):
    _, _, url = intake
    ev = event(RunState.START, datetime.now(UTC) - timedelta(minutes=3), str(uuid.uuid4()), "adhoc-ns", "auth")
    with pytest.raises(requests.HTTPError) as denied:
        transport(url).emit(ev)
    assert denied.value.response.status_code == 401
    with pytest.raises(requests.HTTPError):
        transport(url, auth={"type": "api_key", "apiKey": "wrong"}).emit(ev)
    ok = transport(url, auth={"type": "api_key", "apiKey": TOKEN}, compression="gzip").emit(ev)
    assert ok.status_code == 200 and ok.json()["published"] == 1
    # the OpenLineageClient facade with the same transport (what Airflow's provider builds from its config)
    client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=url, auth=create_token_provider(
        {"type": "api_key", "apiKey": TOKEN}))))
    client.emit(ev)


def test_the_clients_retry_on_503_delivers_once_the_topic_answers(tmp_path, emulator):
    """The BFF answers 503 while Pub/Sub cannot take the publish (here: its topic does not exist yet); the
    transport's own urllib3 retry (500/502/503/504, POST allowed, backoff 0.3 s) tries again and gets a 200."""
    host, port = emulator.split(":")
    settings = Settings(home=tmp_path, bind_host=host, pubsub_port=int(port), topic="lineage-late",
                        subscription="lineage-late-probe", ack_deadline_seconds=10)
    url, proc = start_bff(settings)
    try:
        run_id = uuid7(datetime.now(UTC) - timedelta(minutes=1))
        assert post(url, json.dumps(start_event(run_id))).status_code == 503  # no topic: not confirmed, not 2xx
        later = threading.Timer(1.0, ensure_topic_and_subscription, args=(settings,))
        later.start()
        response = transport(url).emit(event(RunState.START, datetime.now(UTC) - timedelta(minutes=1), run_id,
                                             "adhoc-ns", "late"))
        later.join()
        assert response.status_code == 200
        statuses = [h.status for h in response.raw.retries.history]
        assert statuses and set(statuses) == {503}, statuses
        sub = subscriber(settings)
        try:
            pulled = sub.pull(request={"subscription": subscription_path(settings), "max_messages": 10}, timeout=20)
        finally:
            sub.close()
        decoded = [EventCodec().decode(m.message.data) for m in pulled.received_messages]
        assert [(d["eventId"], d["stageName"], d["status"]) for d in decoded] == [(run_id, "late", "STARTED")]
        assert pulled.received_messages[0].message.attributes["source"] == "openlineage"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("body, headers, status, field", [
    (b"{not json", {}, 400, None),
    (b'{"a": 1}', {"Content-Encoding": "gzip"}, 400, "Content-Encoding"),
    (gzip.compress(b"{}"), {"Content-Encoding": "br"}, 415, "Content-Encoding"),
    (b"[]", {}, 400, None),
    (b'"a string"', {}, 422, "$"),
    (json.dumps({"eventTime": "2026-11-30T10:00:00Z", "producer": "https://x", "schemaURL": "https://x",
                 "dataset": {"namespace": "n", "name": "d"}}).encode(), {}, 422, "run"),
])
def test_malformed_bodies_are_4xx_with_a_reason(intake, body, headers, status, field):
    response = post(intake[1], body, **headers)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    if field:
        assert response.json()["field"] == field


def _broken(change) -> dict:
    ev = start_event(str(uuid.uuid4()))
    change(ev)
    return ev


@pytest.mark.parametrize("ev, field", [
    (_broken(lambda e: e.pop("eventType")), "eventType"),
    (_broken(lambda e: e.update(eventType="PAUSED")), "eventType"),
    (_broken(lambda e: e["run"].update(runId="run-42")), "run.runId"),
    (_broken(lambda e: e.update(eventTime="2026-11-30 10:00")), "eventTime"),
    (_broken(lambda e: e.update(eventTime="2026-11-30T10:00:00")), "eventTime"),  # no offset
    (_broken(lambda e: e.update(eventTime=(datetime.now(UTC) + timedelta(days=1)).isoformat())), "eventTime"),
    (_broken(lambda e: e.pop("producer")), "producer"),
    (_broken(lambda e: e["job"].pop("name")), "job.name"),
    (_broken(lambda e: e["run"].update(facets={"errorMessage": {"message": "x", "_producer": "https://x",
                                                                "_schemaURL": "https://x"}})),
     "run.facets.errorMessage.programmingLanguage"),
    (_broken(lambda e: e["run"].update(facets={"parent": {"run": {"runId": "nope"}, "job": {"namespace": "n", "name": "j"},
                                                          "_producer": "https://x", "_schemaURL": "https://x"}})),
     "run.facets.parent.run.runId"),
    (_broken(lambda e: e.update(outputs=[{"namespace": "s3://b", "name": "o", "outputFacets": {"outputStatistics": {
        "rowCount": -5, "_producer": "https://x", "_schemaURL": "https://x"}}}])),
     "outputs[0].outputFacets.outputStatistics.rowCount"),
])
def test_unmappable_events_are_422_naming_the_field(intake, ev, field):
    response = post(intake[1], json.dumps(ev))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and response.json()["index"] == 0
    assert field.split(".")[0].split("[")[0] in response.json()["detail"] or field == "$"


def test_other_is_accepted_but_not_stored_with_the_reason(intake):
    run_id = str(uuid.uuid4())
    ev = start_event(run_id)
    ev["eventType"] = "OTHER"
    response = post(intake[1], json.dumps(ev))
    assert response.status_code == 202
    body = response.json()
    assert body["published"] == 0 and body["eventIds"] == []
    assert body["notStored"][0]["runId"] == run_id and "not stored" in body["notStored"][0]["reason"]


# --- onto the table and back out through the BFF ------------------------------------------------------------------
@pytest.fixture(scope="module")
def landed(intake, spark):
    """Send an Airflow DAG run with a nested Spark app (plain, gzip, a JSON-array batch and a gzip NDJSON
    batch), a bad batch, and a uuid4 run across midnight; then drain the topic into the table."""
    settings, url, auth_url = intake
    now = datetime.now(UTC).replace(microsecond=0)
    dag = AirflowDagRun(now - timedelta(hours=2))
    events = dag.events()
    plain, gzipped = transport(url), transport(url, compression="gzip")
    for ev in events[:3]:
        plain.emit(ev)
    for ev in events[3:5]:
        gzipped.emit(ev)
    array = post(url, json.dumps([as_json(e) for e in events[5:9]]))
    assert array.status_code == 200 and array.json()["published"] == 4
    ndjson = "\n".join(json.dumps(as_json(e)) for e in events[9:]).encode()
    streamed = post(auth_url, gzip.compress(ndjson), **{"Content-Type": "application/x-ndjson",
                                                       "Content-Encoding": "gzip", "Authorization": f"Bearer {TOKEN}"})
    assert streamed.status_code == 200 and streamed.json()["published"] == 4

    never = uuid7(now - timedelta(hours=1))
    bad = start_event(str(uuid.uuid4()))
    bad["run"]["runId"] = "not-a-uuid"
    rejected = post(url, json.dumps([start_event(never, "never.stored"), bad]))
    assert rejected.status_code == 422 and rejected.json()["index"] == 1 and rejected.json()["field"] == "run.runId"

    # a uuid4 run (no time in its id, no nominal time): its START's eventTime is remembered for its COMPLETE
    midnight = (now - timedelta(days=1)).replace(hour=0, minute=0, second=0)
    v4 = str(uuid.uuid4())
    for state, at in ((RunState.START, midnight - timedelta(minutes=1)), (RunState.COMPLETE, midnight + timedelta(minutes=1))):
        assert post(url, json.dumps(as_json(event(state, at, v4, "cron-ns", "nightly.rollup",
                                                  outputs=[write("s3://lake", "rollup", 42)])))).status_code == 200
    reports = drain_into_table(spark, settings)
    assert reports, "nothing was committed"
    return dag, never, v4, midnight, reports[-1].instant


def _get(url: str, path: str, instant: str, **params) -> dict:
    """GET once the BFF's view reached the commit ``instant``."""
    deadline = time.monotonic() + 30
    while True:
        body = httpx.get(f"{url}{path}", params=params, timeout=30).json()
        if body.get("latestCommit", "") >= instant or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


@pytest.mark.spark
def test_the_dag_run_lands_on_the_timeline_with_the_mapping(intake, landed):
    _, url, _ = intake
    dag, _, _, _, instant = landed
    body = _get(url, "/api/events", instant, correlationId=dag.ids["dag"], limit=50)
    rows = {e["stageName"]: e for e in body["events"]}
    assert set(rows) == {"orders_daily", "orders_daily.extract", "orders_daily.transform", "orders_etl",
                         "orders_etl.insert_into_orders_clean", "orders_daily.load"}
    assert {e["eventId"] for e in body["events"]} == {dag.ids[k] for k in
                                                       ("dag", "extract", "transform", "spark_app", "spark_job", "load")}
    assert rows["orders_daily"]["pipelineName"] == "airflow-prod"  # no parent: its namespace, its own batch
    assert {rows[s]["pipelineName"] for s in rows if s != "orders_daily"} == {"orders_daily"}  # root parent's job
    assert {s: r["status"] for s, r in rows.items()} == {
        "orders_daily": "FAILED", "orders_daily.extract": "COMPLETED", "orders_daily.transform": "COMPLETED",
        "orders_etl": "COMPLETED", "orders_etl.insert_into_orders_clean": "COMPLETED", "orders_daily.load": "FAILED"}
    load = rows["orders_daily.load"]
    assert load["errorMessage"] == "psycopg2.errors.DiskFull: could not extend file"
    assert datetime.fromisoformat(load["lastUpdatedAt"]) == dag.t0 + timedelta(seconds=75)
    assert datetime.fromisoformat(load["eventTimestamp"]) == dag.t0 + timedelta(seconds=60)  # its uuid7's instant
    spark_job = rows["orders_etl.insert_into_orders_clean"]
    assert (spark_job["sourceRecordCount"], spark_job["processedRecordCount"]) == (1200, 1188)
    assert spark_job["attributes"]["ol.parentRunId"] == dag.ids["spark_app"]
    assert json.loads(spark_job["attributes"]["ol.outputs"]) == ["s3://lake/clean/orders"]
    assert spark_job["attributes"]["ol.producer"].endswith("/integration/spark")
    extract = rows["orders_daily.extract"]
    assert json.loads(extract["attributes"]["ol.inputs"]) == ["postgres://db:5432/shop.public.orders"]
    assert extract["attributes"]["ol.nominalStartTime"] == (dag.t0 - timedelta(hours=1)).isoformat()


@pytest.mark.spark
def test_the_journey_and_the_state_at_failure_of_the_dag_run(intake, landed):
    _, url, _ = intake
    dag, _, _, _, instant = landed
    _get(url, "/api/events", instant)
    journey = httpx.get(f"{url}/api/correlations/{dag.ids['dag']}", timeout=30).json()
    assert journey["status"] == "FAILED"
    assert journey["pipelines"] == ["airflow-prod", "orders_daily"]
    assert [s["stageName"] for s in journey["stages"]] == [
        "orders_daily", "orders_daily.extract", "orders_daily.transform", "orders_etl",
        "orders_etl.insert_into_orders_clean", "orders_daily.load"]  # in order of each run's start
    assert journey["stages"][-1]["errorMessage"].startswith("psycopg2.errors.DiskFull")
    assert journey["stages"][1]["durationSeconds"] == 14.0
    at_failure = httpx.get(f"{url}/api/events/{dag.ids['load']}/at-failure", timeout=30)
    assert at_failure.status_code == 200, at_failure.text
    body = at_failure.json()
    assert body["event"]["status"] == "FAILED" and body["pipelineName"] == "orders_daily"
    assert {e["stageName"] for e in body["pipelineState"]["events"]} >= {"orders_daily.extract", "orders_daily.load"}


@pytest.mark.spark
def test_a_rejected_batch_stored_nothing_and_a_run_keeps_one_start_across_midnight(intake, landed):
    _, url, _ = intake
    _, never, v4, midnight, instant = landed
    body = _get(url, "/api/events", instant, limit=500)
    assert never not in {e["eventId"] for e in body["events"]}
    rows = [e for e in body["events"] if e["eventId"] == v4]
    assert len(rows) == 1, rows  # one row: START and COMPLETE carried the same eventTimestamp (same partition)
    assert rows[0]["status"] == "COMPLETED" and rows[0]["processedRecordCount"] == 42
    assert datetime.fromisoformat(rows[0]["eventTimestamp"]) == midnight - timedelta(minutes=1)
    assert rows[0]["attributes"]["ol.startedFrom"] == "firstSeenEventTime"
    assert rows[0]["pipelineName"] == "cron-ns" and rows[0]["correlationId"] == v4

