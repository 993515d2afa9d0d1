"""The BFF over HTTP (uvicorn in its own process) against a table written by the real ingestion."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.sdk import EventEmitter
from obs_platform.settings import Settings
from obs_platform_tests.conftest import drain_into_table

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

T0 = datetime(2026, 11, 26, 8, 0, 0, tzinfo=UTC)


def emit(emitter, event_id, status, minute, pipeline="orders", stage="load", **extra):
    emitter.emit({"eventId": event_id, "correlationId": f"corr-{event_id[-1]}", "pipelineName": pipeline,
                  "stageName": stage, "status": status, "eventTimestamp": T0,
                  "lastUpdatedAt": T0 + timedelta(minutes=minute), **extra})


@pytest.fixture(scope="module")
def table(tmp_path_factory, emulator, spark):
    """Two commits. First: a1 RUNNING (min 1), b2 FAILED (min 2, clickstream), c3 COMPLETED (min 3).
    Second: a1 COMPLETED (min 4). Expected now: a1 COMPLETED, b2 FAILED, c3 COMPLETED; newest first a1, c3, b2."""
    home = tmp_path_factory.mktemp("bff")
    host, port = emulator.split(":")
    settings = Settings(home=home, bind_host=host, pubsub_port=int(port), topic="bff-events",
                        subscription="bff-events-hudi", ack_deadline_seconds=10)
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "a1", "RUNNING", 1, processedRecordCount=5, sourceRecordCount=10)
    emit(emitter, "b2", "FAILED", 2, pipeline="clickstream", errorMessage="disk full")
    emit(emitter, "c3", "COMPLETED", 3, stage="extract")
    emitter.flush()
    first = drain_into_table(spark, settings)
    emit(emitter, "a1", "COMPLETED", 4, processedRecordCount=10, sourceRecordCount=10)
    emitter.flush()
    second = drain_into_table(spark, settings)
    return settings, first[-1].instant, second[-1].instant


@pytest.fixture(scope="module")
def bff(table):
    import os
    import subprocess
    import sys

    from obs_platform.settings import REPO_ROOT
    from obs_platform_tests.conftest import free_port, wait_http

    settings = table[0]
    port = free_port()
    env = {**os.environ, "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "bff"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/api/health", 30)
    yield httpx.Client(base_url=url, timeout=30)
    proc.terminate()
    proc.wait(10)


def test_full_load_is_newest_first_with_commit_times(bff, table):
    _, first, second = table
    body = bff.get("/api/events").json()
    assert body["latestCommit"] == second
    assert body["total"] == 3
    assert [e["eventId"] for e in body["events"]] == ["a1", "c3", "b2"]
    by_id = {e["eventId"]: e for e in body["events"]}
    assert by_id["a1"]["status"] == "COMPLETED" and by_id["a1"]["commitTime"] == second
    assert by_id["b2"]["commitTime"] == first and by_id["b2"]["errorMessage"] == "disk full"
    assert by_id["a1"]["lastUpdatedAt"].startswith("2026-11-26T08:04:00")
    expected_fields = {"eventId", "correlationId", "pipelineName", "stageName", "status", "eventTimestamp",
                       "processedRecordCount", "sourceRecordCount", "errorMessage", "lastUpdatedAt", "commitTime"}
    assert expected_fields <= set(by_id["a1"])


def test_filters_and_paging(bff):
    assert [e["eventId"] for e in bff.get("/api/events", params={"status": "FAILED"}).json()["events"]] == ["b2"]
    assert [e["eventId"] for e in bff.get("/api/events", params={"pipeline": "orders", "stage": "extract"}).json()["events"]] == ["c3"]
    page = bff.get("/api/events", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [e["eventId"] for e in page["events"]] == ["c3"]
    multi = bff.get("/api/events", params=[("status", "FAILED"), ("status", "COMPLETED")]).json()
    assert multi["total"] == 3


def test_incremental_returns_only_what_changed_after_the_cursor(bff, table):
    _, first, second = table
    body = bff.get("/api/events/incremental", params={"since": first}).json()
    assert [e["eventId"] for e in body["events"]] == ["a1"]
    assert body["events"][0]["status"] == "COMPLETED"
    assert body["latestCommit"] == second
    caught_up = bff.get("/api/events/incremental", params={"since": second}).json()
    assert caught_up == {"events": [], "latestCommit": second, "total": 0, "asOf": second}


@pytest.mark.parametrize("since", ["yesterday", "2026-11-26", "1' OR '1'='1", "2026112608000", ""])
def test_malformed_cursor_is_a_422_naming_the_parameter(bff, since):
    response = bff.get("/api/events/incremental", params={"since": since})
    assert response.status_code == 422
    assert "since" in response.text


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": "many"}, {"status": "PAUSED"}, {"offset": -1}])
def test_bad_parameters_are_4xx_not_5xx(bff, params):
    response = bff.get("/api/events", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_health_reports_the_latest_commit(bff, table):
    body = bff.get("/api/health").json()
    assert body["status"] == "ok" and body["latestCommit"] == table[2]
