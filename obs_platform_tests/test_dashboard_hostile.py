"""Hostile text in every string field of an event, rendered by the dashboard in real Chromium: shown as the
literal text it is, and no script runs (the timeline, a row's details, the journey and the state at failure)."""

from __future__ import annotations

import pytest

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.sdk import EventEmitter
from obs_platform.settings import Settings
from obs_platform_tests.test_dashboard_browser import at, browser, commit, dashboard_stack

pytestmark = [pytest.mark.browser, pytest.mark.spark, pytest.mark.pubsub]

PAYLOADS = {
    "eventId": "x<img src=x onerror=window.__pwned=1>",
    "pipelineName": "<script>window.__pwned=2</script>",
    "stageName": "<svg onload=window.__pwned=3>",
    "correlationId": "b<img src=y onerror=window.__pwned=4>",
    "errorMessage": "\"><img src=z onerror=window.__pwned=5><a href=\"javascript:window.__pwned=6\">x</a>",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, emulator, spark):
    home = tmp_path_factory.mktemp("xss")
    host, port = emulator.split(":")
    settings = Settings(home=home, bind_host=host, pubsub_port=int(port), topic="xss-events",
                        subscription="xss-events-hudi", ack_deadline_seconds=10)
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emitter.emit({**PAYLOADS, "status": "FAILED", "eventTimestamp": at(0), "lastUpdatedAt": at(1),
                  "attributes": {"<b>k</b>": "<script>window.__pwned=7</script>"}})
    commit(spark, settings, emitter)
    with dashboard_stack(settings) as (dash, _):
        yield dash


def test_script_in_every_field_is_text_on_the_timeline_and_runs_nowhere(hostile):
    seen = browser("view", url=f"{hostile}/")
    [row] = seen["rows"]
    assert row["id"] == PAYLOADS["eventId"] and row["status"] == "FAILED"
    assert (row["pipeline"], row["stage"], row["batch"], row["error"]) == (
        PAYLOADS["pipelineName"], PAYLOADS["stageName"], PAYLOADS["correlationId"], PAYLOADS["errorMessage"])
    assert seen["pwned"] is None and seen["injected"] == 0
    assert browser("details", url=f"{hostile}/", eventId=PAYLOADS["eventId"])["pwned"] is None
    journey = browser("journey", url=f"{hostile}/", eventId=PAYLOADS["eventId"])
    assert journey["pwned"] is None and PAYLOADS["correlationId"] in journey["title"]
    failure = browser("at-failure", url=f"{hostile}/", eventId=PAYLOADS["eventId"])
    assert failure["pwned"] is None and failure["error"] == PAYLOADS["errorMessage"]
