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


@pytest.mark.parametrize("params, parameter", [
    ({"limit": 10**9}, "limit"), ({"offset": 10**9}, "offset"),
    ({"from": "2026-11-27T00:00:00Z", "to": "2026-11-26T00:00:00Z"}, "from"),
])
def test_hostile_paging_and_ranges_are_422_naming_the_parameter(bff, params, parameter):
    response = bff.get("/api/events", params=params)
    assert response.status_code == 422, response.text
    assert parameter in response.text


def test_an_offset_past_the_end_is_an_empty_page_with_the_total(bff):
    body = bff.get("/api/events", params={"offset": 10**8}).json()
    assert body["events"] == [] and body["total"] == 3


def _sse_events(url: str, headers: dict, count: int, timeout: float = 20) -> list[tuple[str, str, str]]:
    """The first ``count`` (event, id, data) of an SSE stream."""
    out, event, ident, data = [], "", "", ""
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("id:"):
                ident = line[3:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and event:
                out.append((event, ident, data))
                event, ident, data = "", "", ""
                if len(out) >= count:
                    return out
    return out


def test_a_last_event_id_from_the_future_gets_a_reset_not_a_silent_stream(bff, table):
    _, _, second = table
    url = str(bff.base_url) + "/api/stream"
    events = _sse_events(url, {"Last-Event-ID": "29991231235959999"}, 2)
    (ready, ready_id, _), (reset, _, data) = events
    assert ready == "ready" and ready_id == second  # a reconnect resumes from the newest commit, not the future
    assert reset == "reset" and "29991231235959999" in data and second in data


def test_200_sse_clients_connecting_and_dropping_leave_the_bff_serving(bff, table):
    import concurrent.futures

    url = str(bff.base_url) + "/api/stream"

    def connect_and_drop(i: int) -> str:
        with httpx.stream("GET", url, timeout=30) as response:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    return line[6:].strip()  # drop right after the first event
        return ""

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        first_events = list(pool.map(connect_and_drop, range(200)))
    assert first_events == ["ready"] * 200
    body = bff.get("/api/events", params={"limit": 1}).json()
    assert body["total"] == 3 and body["latestCommit"] == table[2]
    assert bff.get("/api/health").json()["status"] == "ok"
