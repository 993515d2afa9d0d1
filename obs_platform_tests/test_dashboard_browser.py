"""The dashboard in real headless Chromium, over a real BFF on a real Hudi table written by the real writer.

What a user sees: the timeline renders the table newest first with coloured statuses; a URL with filters
reproduces the view; an event committed after the page loaded appears without a reload (SSE); time travel
shows an older status; a batch id opens its journey with every stage; a FAILED row opens its state at
failure; the page's serialized state stays within a budget (QwikDev/qwik#5173).

The browser steps are frontend/tests/browser.mjs (playwright-core, /usr/bin/chromium); each test runs one
scenario and asserts on what it reports. Needs the dashboard built (`make frontend`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from obs_platform.bus.client import ensure_topic_and_subscription, publisher, topic_path
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT, Settings
from obs_platform_tests.conftest import drain_into_table, free_port, wait_http

pytestmark = [pytest.mark.browser, pytest.mark.spark, pytest.mark.pubsub]

FRONTEND = REPO_ROOT / "frontend"
SERVER = FRONTEND / "server" / "entry.node-server.js"
DRIVER = FRONTEND / "tests" / "browser.mjs"
CHROMIUM = "/usr/bin/chromium"
DAGSTER_URL = "http://127.0.0.1:3999"
STATE_BUDGET_CHARS = 2500  # a few KB: primitives only; the events must never be serialized (qwik#5173)
FAILED_RED = "rgb(254, 226, 226)"  # .badge-failed background

# minutes before now; recent, so the charts' default window (6 h) shows them
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def emit(emitter, event_id, pipeline, stage, batch, status, started, updated, source=None, processed=None, error=None):
    emitter.emit({"eventId": event_id, "correlationId": batch, "pipelineName": pipeline, "stageName": stage,
                  "status": status, "eventTimestamp": at(started), "lastUpdatedAt": at(updated),
                  "sourceRecordCount": source, "processedRecordCount": processed, "errorMessage": error})


def commit(spark, settings, emitter) -> str:
    emitter.flush()
    instants = [r.instant for r in drain_into_table(spark, settings) if r.instant]
    assert instants, "the writer made no commit"
    return instants[-1]


@pytest.fixture(scope="module")
def table(tmp_path_factory, emulator, spark):
    """Three commits through Pub/Sub and the real writer (times: minutes after T0, eventTimestamp -> lastUpdatedAt).

    c1: ord-extract-1   orders/extract       b1 COMPLETED 0 -> 1    source 100 processed 100
        ord-validate-1  orders/validate      b1 RUNNING   2 -> 3    source 100 processed 40
        click-load-2    clickstream/load     b2 COMPLETED 5 -> 6    source 10  processed 10
        + one undecodable message (a dead letter)
    c2: ord-validate-1 FAILED (10, processed 70, "Disk full on /data")
    c3: ord-validate-1 COMPLETED (15, processed 100); ord-load-1 orders/load b1 COMPLETED 16 -> 18 source 90
        processed 90 (10 rows lost after validate); click-extract-4 clickstream/extract b4 FAILED 30 -> 31
        "Schema mismatch in column amount"

    Expected now, newest first: click-extract-4, ord-load-1, ord-validate-1, click-load-2, ord-extract-1.
    """
    host, port = emulator.split(":")
    settings = Settings(home=tmp_path_factory.mktemp("dash"), bind_host=host, pubsub_port=int(port),
                        topic="dash-events", subscription="dash-events-hudi", ack_deadline_seconds=10)
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emit(emitter, "ord-extract-1", "orders", "extract", "b1", "COMPLETED", 0, 1, 100, 100)
    emit(emitter, "ord-validate-1", "orders", "validate", "b1", "RUNNING", 2, 3, 100, 40)
    emit(emitter, "click-load-2", "clickstream", "load", "b2", "COMPLETED", 5, 6, 10, 10)
    publisher(settings).publish(topic_path(settings), b"this is not avro", source="dashboard-test").result(30)
    c1 = commit(spark, settings, emitter)
    emit(emitter, "ord-validate-1", "orders", "validate", "b1", "FAILED", 2, 10, 100, 70, "Disk full on /data")
    c2 = commit(spark, settings, emitter)
    emit(emitter, "ord-validate-1", "orders", "validate", "b1", "COMPLETED", 2, 15, 100, 100)
    emit(emitter, "ord-load-1", "orders", "load", "b1", "COMPLETED", 16, 18, 90, 90)
    emit(emitter, "click-extract-4", "clickstream", "extract", "b4", "FAILED", 30, 31, 20, None,
         "Schema mismatch in column amount")
    c3 = commit(spark, settings, emitter)
    return {"settings": settings, "emitter": emitter, "c1": c1, "c2": c2, "c3": c3}


@contextlib.contextmanager
def dashboard_stack(settings: Settings, log_dir=None, **env: str):
    """The real BFF (stream watcher at 0.2 s) and the built dashboard for the table in ``settings``; yields
    (dashboard URL, BFF URL). ``env`` goes to both (e.g. OBS_BFF_TOKEN); with ``log_dir`` their output is kept
    in bff.log and dashboard.log there."""
    if not SERVER.exists() or not (FRONTEND / "node_modules" / "playwright-core").exists():
        pytest.fail("the dashboard is not built: run `make frontend`")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (or `make chromium`)")
    dash_port, bff_port = free_port(), free_port()
    dash, bff = f"http://127.0.0.1:{dash_port}", f"http://127.0.0.1:{bff_port}"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("OBS_BFF_")}

    def out(name: str):
        return open(log_dir / f"{name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115

    procs = [subprocess.Popen(
        [sys.executable, "-m", "bff"], cwd=REPO_ROOT, stdout=out("bff"), stderr=subprocess.STDOUT,
        env={**inherited, "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(bff_port), "OBS_BIND_HOST": "127.0.0.1",
             "OBS_TABLE": settings.table, "OBS_DATABASE": settings.database, "OBS_BFF_CORS_ORIGINS": dash,
             "OBS_BFF_STREAM_POLL_SECONDS": "0.2", **env})]
    try:
        wait_http(f"{bff}/api/health", 30)
        procs.append(subprocess.Popen(
            ["node", str(SERVER)], cwd=FRONTEND, stdout=out("dashboard"), stderr=subprocess.STDOUT,
            env={**os.environ, "OBS_BFF_URL": bff, "OBS_DASHBOARD_PORT": str(dash_port),
                 "OBS_DASHBOARD_HOST": "127.0.0.1", "OBS_DAGSTER_URL": DAGSTER_URL, **env}))
        wait_http(f"{dash}/", 30)
        yield dash, bff
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def dashboard(table):
    with dashboard_stack(table["settings"]) as (dash, _):
        yield dash


def browser(scenario: str, **args) -> dict:
    """Run one scenario of frontend/tests/browser.mjs; return what it saw (fails on page errors)."""
    done = subprocess.run(["node", str(DRIVER), scenario, json.dumps(args)], cwd=FRONTEND, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"{scenario} failed:\n{done.stderr[-3000:]}"
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["pageErrors"] == [], last["pageErrors"]
    return last["result"]


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


NEWEST_FIRST = ["click-extract-4", "ord-load-1", "ord-validate-1", "click-load-2", "ord-extract-1"]


def test_the_page_renders_the_table_from_the_bff(dashboard, table):
    seen = browser("view", url=f"{dashboard}/")
    assert ids(seen["rows"]) == NEWEST_FIRST
    by_id = {r["id"]: r for r in seen["rows"]}
    assert by_id["click-extract-4"]["status"] == "FAILED" and by_id["click-extract-4"]["badgeColor"] == FAILED_RED
    assert by_id["click-extract-4"]["error"] == "Schema mismatch in column amount"
    assert by_id["click-extract-4"]["hasAtFailure"] and not by_id["ord-load-1"]["hasAtFailure"]
    assert by_id["ord-validate-1"]["status"] == "COMPLETED" and by_id["ord-validate-1"]["badgeColor"] != FAILED_RED
    assert seen["count"].startswith("5 events") and seen["latestCommit"] == table["c3"]
    assert seen["deadLetters"] == "1 pending" and seen["deadLetterReasons"] == ["bad_header"]
    assert "time travel reaches" in seen["maintenance"] and "last clean" in seen["maintenance"]
    assert seen["dagsterHref"] == DAGSTER_URL
    assert {"events", "failures", "recordsProcessed"} <= set(seen["charts"])


def test_serialized_state_stays_within_budget(dashboard):
    """QwikDev/qwik#5173: a routeLoader's rows must not be serialized into the page; only primitives are."""
    state = browser("view", url=f"{dashboard}/")["qwikJson"]
    assert 0 < len(state) <= STATE_BUDGET_CHARS, f"qwik/json is {len(state)} chars (budget {STATE_BUDGET_CHARS})"
    for event_id in NEWEST_FIRST:
        assert event_id not in state, f"{event_id} serialized into the page state"


def test_pages_and_scripts_are_compressed(dashboard):
    def get(path: str, encodings: str):
        with urlopen(Request(f"{dashboard}{path}", headers={"Accept-Encoding": encodings}), timeout=30) as r:
            return r.headers, r.read()

    headers, _ = get("/", "br, gzip")
    assert headers["Content-Encoding"] == "br" and "Accept-Encoding" in headers["Vary"]
    assert headers["Cache-Control"].startswith("no-store")
    headers, body = get("/", "gzip")
    assert headers["Content-Encoding"] == "gzip"
    html = get("/", "identity")[1].decode()
    script = re.search(r'/build/q-[\w-]+\.js', html).group(0)
    headers, _ = get(script, "gzip")
    assert headers["Content-Encoding"] == "gzip" and "immutable" in headers["Cache-Control"]


def test_filters_come_from_the_url(dashboard):
    failed = browser("view", url=f"{dashboard}/?status=FAILED")
    assert ids(failed["rows"]) == ["click-extract-4"] and failed["form"]["statuses"] == ["FAILED"]
    validate = browser("view", url=f"{dashboard}/?" + urlencode({"pipeline": "orders", "stage": "validate"}))
    assert ids(validate["rows"]) == ["ord-validate-1"] and validate["form"]["pipeline"] == "orders"
    search = browser("view", url=f"{dashboard}/?q=schema+MISMATCH")
    assert ids(search["rows"]) == ["click-extract-4"] and search["form"]["q"] == "schema MISMATCH"
    window = browser("view", url=f"{dashboard}/?" + urlencode({"from": at(2).strftime("%Y-%m-%dT%H:%M"),
                                                                "to": at(16).strftime("%Y-%m-%dT%H:%M")}))
    assert ids(window["rows"]) == ["ord-validate-1", "click-load-2"]  # from inclusive, to exclusive, eventTimestamp


def test_a_row_click_shows_its_details(dashboard):
    seen = browser("details", url=f"{dashboard}/", eventId="ord-load-1")
    assert seen["selected"] == ["ord-load-1"]
    assert "orders / load" in seen["detail"] and "journey of batch b1" in seen["detail"]


def test_time_travel_shows_the_older_status(dashboard, table):
    seen = browser("time-travel", url=f"{dashboard}/", asOf=table["c2"])
    assert f"as_of={table['c2']}" in seen["url"]
    by_id = {r["id"]: r["status"] for r in seen["rows"]}
    assert by_id["ord-validate-1"] == "FAILED"  # COMPLETED now
    assert set(by_id) == {"ord-validate-1", "click-load-2", "ord-extract-1"}  # c3's new rows are not there yet
    assert table["c2"] in seen["banner"] and seen["liveState"] == "time-travel"


def test_a_batch_opens_its_journey_with_every_stage(dashboard):
    seen = browser("journey", url=f"{dashboard}/", eventId="ord-load-1")
    assert seen["url"].endswith("/journeys/b1/")
    assert [(s["stage"], s["status"]) for s in seen["stages"]] == [
        ("extract", "COMPLETED"), ("validate", "COMPLETED"), ("load", "COMPLETED")]
    assert "source 100 → processed 100" in seen["stages"][0]["text"]
    assert [s["kind"] for s in seen["steps"]] == ["equal", "loss"]
    assert "10 rows lost (100 → 90)" in seen["steps"][1]["text"]


def test_a_failed_row_opens_its_state_at_failure(dashboard, table):
    seen = browser("at-failure", url=f"{dashboard}/", eventId="click-extract-4")
    assert seen["url"].endswith("/events/click-extract-4/at-failure/")
    assert seen["error"] == "Schema mismatch in column amount"
    assert table["c3"] in seen["failureCommit"] and table["c2"] in seen["healthyCommit"]
    assert [(c["id"], c["change"]) for c in seen["changes"]] == [("click-extract-4", "added")]
    assert {(r["id"], r["status"]) for r in seen["pipelineState"]} == {("click-extract-4", "FAILED"),
                                                                      ("click-load-2", "COMPLETED")}


def test_an_event_committed_after_load_appears_without_reload(dashboard, table, spark):
    """Runs last: it adds a commit. One page follows the SSE stream, one the polling fallback (`?live=poll`);
    the new row must appear in both, in the same document."""
    pages = [{"url": f"{dashboard}/", "state": "live"}, {"url": f"{dashboard}/?live=poll", "state": "polling"}]
    driver = subprocess.Popen(["node", str(DRIVER), "live", json.dumps({"pages": pages, "eventId": "live-5"})],
                              cwd=FRONTEND, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(driver.stdout.readline() or "{}")
        assert ready.get("ready"), driver.stderr.read()[-3000:]
        emitter = table["emitter"]
        emit(emitter, "live-5", "orders", "extract", "b5", "RUNNING", 40, 41, 50, 5)
        committed_at = time.monotonic()
        c4 = commit(spark, table["settings"], emitter)
        out, err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode == 0, err[-3000:]
    stream, polled = json.loads(out.strip().splitlines()[-1])["result"]
    for seen, state in ((stream, "live"), (polled, "polling")):
        assert seen["sameDocument"], "the page was reloaded"
        assert ids(seen["rows"])[0] == "live-5" and seen["rows"][0]["status"] == "RUNNING"
        assert seen["liveState"] == state and seen["latestCommit"] == c4
        assert seen["count"].startswith("6 events")
    print(f"commit -> row on screen: {time.monotonic() - committed_at:.1f}s")
