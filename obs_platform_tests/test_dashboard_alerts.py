"""The open-alerts strip, in real headless Chromium over the real BFF (the alerter inside it), bus and writer,
with the BFF's token on (the page reads GET /api/alerts server-side with it; the browser's stream goes through
the dashboard's /bff proxy). A FAILED stage run published while the page is open shows in the strip, as text,
with links to the dashboard's state-at-failure and journey pages that work once the table holds the run (and
a page loaded then renders it server-side, as text); after a COMPLETED of that stage run the alert is
resolved and leaves the strip, in the same document. The browser steps are frontend/tests/alerts.mjs."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT
from obs_platform_tests.conftest import drain_into_table
from obs_platform_tests.test_alerts_bff import wait_subscribed
from obs_platform_tests.test_dashboard_browser import dashboard_stack

pytestmark = [pytest.mark.browser, pytest.mark.spark, pytest.mark.pubsub]

FRONTEND = REPO_ROOT / "frontend"
DRIVER = FRONTEND / "tests" / "alerts.mjs"
HOSTILE = '<img src=x onerror="window.__pwned=1"> Disk full on /data'


def event(event_id: str, stage: str, status: str, updated: datetime, error: str | None = None) -> dict:
    return {"eventId": event_id, "correlationId": "b-alert", "pipelineName": "orders", "stageName": stage,
            "status": status, "eventTimestamp": updated - timedelta(minutes=1), "lastUpdatedAt": updated,
            "sourceRecordCount": 100, "processedRecordCount": 100 if status == "COMPLETED" else None,
            "errorMessage": error}


def line(driver: subprocess.Popen) -> dict:
    text = driver.stdout.readline()
    assert text, f"the browser driver ended: {driver.stderr.read()[-3000:]}"
    return json.loads(text)


def test_a_failed_stage_run_shows_in_the_strip_with_working_links_and_leaves_when_it_completes(settings, spark,
                                                                                                tmp_path):
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    now = datetime.now(UTC).replace(microsecond=0)
    emitter.emit(event("ord-extract-1", "extract", "COMPLETED", now - timedelta(minutes=5)))
    emitter.flush()
    drain_into_table(spark, settings)
    config = tmp_path / "alerts.toml"
    config.write_text("tick_seconds = 0.5\n")
    env = {"OBS_TOPIC": settings.topic, "OBS_SUBSCRIPTION": settings.subscription, "OBS_ALERTS_FILE": str(config),
           "OBS_BFF_TOKEN": "strip-test-token"}
    with dashboard_stack(settings, **env) as (dash, _):
        wait_subscribed(settings)
        driver = subprocess.Popen(["node", str(DRIVER), "strip", json.dumps({"url": f"{dash}/", "where": "orders / load"})],
                                  cwd=FRONTEND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        try:
            ready = line(driver)["ready"]
            assert ready == {"items": [], "count": "0"}  # nothing open yet
            failed_at = datetime.now(UTC)
            emitter.emit(event("ord-load-1", "load", "FAILED", failed_at, HOSTILE))
            emitter.flush()
            shown = line(driver)["shown"]
            # the table holds it now: the links lead to pages that show it
            drain_into_table(spark, settings)
            driver.stdin.write("links\n")
            driver.stdin.flush()
            links = line(driver)["links"]
            emitter.emit(event("ord-load-1", "load", "COMPLETED", failed_at + timedelta(seconds=5)))
            emitter.flush()
            final = line(driver)
            driver.wait(60)
        finally:
            driver.kill()
    assert final["pageErrors"] == []
    # shown as the user sees it: rule, where, the error as text (no element made of it), a count of one
    assert (shown["rule"], shown["where"], shown["count"], shown["times"], shown["visible"]) == (
        "failed", "orders / load", "1", None, True)
    assert shown["summary"] == f"load failed: {HOSTILE}" and shown["imgs"] == 0
    assert shown["severity"] in ("info", "warning", "critical")
    assert shown["afterMs"] < 20_000
    # the links are the dashboard's own pages, and they work
    assert shown["atFailure"] == "/events/ord-load-1/at-failure/" and shown["journey"] == "/journeys/b-alert/"
    failure, journey = links["atFailure"], links["journey"]
    assert failure["status"] == 200 and failure["url"].endswith("/events/ord-load-1/at-failure/")
    assert failure["error"] == HOSTILE
    assert journey["status"] == 200 and "b-alert" in journey["title"]
    assert {(s["stage"], s["status"]) for s in journey["stages"]} == {("extract", "COMPLETED"), ("load", "FAILED")}
    # a page loaded while it is open renders it server-side, the same way, and nothing runs from its text
    rendered = links["rendered"]
    assert rendered["count"] == "1" and rendered["pwned"] is None
    assert [(i["where"], i["summary"], i["atFailure"], i["imgs"]) for i in rendered["items"]] == [
        ("orders / load", f"load failed: {HOSTILE}", "/events/ord-load-1/at-failure/", 0)]
    # resolved by the completion: gone from the strip, in the same document; nothing ran from the error text
    result = final["result"]
    assert result["gone"] and result["items"] == [] and result["count"] == "0" and result["empty"]
    assert result["sameDocument"] and result["pwned"] is None
