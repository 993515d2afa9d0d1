"""The whole path on real parts: SDK -> Pub/Sub emulator -> Structured Streaming -> Hudi -> BFF -> dashboard."""

import os
import subprocess
import threading
import time
import uuid

import httpx
import pytest

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.ingestion.stream import run_ingestion
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT
from obs_platform_tests.conftest import free_port, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.pubsub]

DASHBOARD_SERVER = REPO_ROOT / "frontend" / "server" / "entry.node-server.js"


@pytest.fixture
def dashboard():
    """The built dashboard (node) for a given BFF URL."""
    procs = []

    def start(bff_url: str) -> str:
        if not DASHBOARD_SERVER.exists():
            pytest.fail("the dashboard is not built: run `make frontend`")
        port = free_port()
        env = {**os.environ, "OBS_BFF_URL": bff_url, "OBS_DASHBOARD_PORT": str(port),
               "OBS_DASHBOARD_HOST": "127.0.0.1"}
        procs.append(subprocess.Popen(["node", str(DASHBOARD_SERVER)], cwd=REPO_ROOT / "frontend", env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", 30)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_published_events_reach_the_bff_and_the_dashboard(spark, settings, bff_for, dashboard):
    ensure_topic_and_subscription(settings)
    stop = threading.Event()
    commits = []
    stream = threading.Thread(target=run_ingestion, args=(settings, commits.append, stop, spark), daemon=True)
    stream.start()
    try:
        bff = bff_for(settings)
        emitter = EventEmitter.from_settings(settings)
        batch = f"e2e-{uuid.uuid4().hex[:8]}"
        published_at = time.monotonic()
        with emitter.stage_run("e2e-pipeline", "extract", correlation_id=batch, source_records=10) as run:
            run.progress(processed=10)
        with pytest.raises(RuntimeError):
            with emitter.stage_run("e2e-pipeline", "load", correlation_id=batch, source_records=10):
                raise RuntimeError("target table locked")
        emitter.flush()

        client = httpx.Client(base_url=bff.url, timeout=10)
        deadline = time.monotonic() + 90
        events = []
        while time.monotonic() < deadline:
            events = client.get("/api/events", params={"correlationId": batch}).json()["events"]
            if {e["status"] for e in events} == {"COMPLETED", "FAILED"}:
                break
            time.sleep(0.5)
        visible_after = time.monotonic() - published_at
        by_stage = {e["stageName"]: e for e in events}
        assert set(by_stage) == {"extract", "load"}, f"not visible after {visible_after:.1f}s: {events}"
        assert by_stage["extract"]["status"] == "COMPLETED" and by_stage["extract"]["processedRecordCount"] == 10
        assert by_stage["load"]["status"] == "FAILED"
        assert by_stage["load"]["errorMessage"] == "RuntimeError: target table locked"
        committed = {c.instant for c in commits if c.instant}
        assert {e["commitTime"] for e in events} <= committed

        html = httpx.get(dashboard(bff.url) + "/", timeout=30).text
        for event in events:
            assert f'data-event-id="{event["eventId"]}"' in html
        assert 'data-status="FAILED"' in html and "target table locked" in html
        print(f"publish -> visible in BFF: {visible_after:.1f}s")
    finally:
        stop.set()
        stream.join(120)
    assert not stream.is_alive(), "the stream did not stop on request"
