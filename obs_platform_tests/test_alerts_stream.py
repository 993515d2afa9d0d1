"""Alert changes on /api/stream, over HTTP on real parts: events published to the Pub/Sub emulator, the alerter
inside the real BFF (a uvicorn process), the bearer token on. A FAILED stage run opens an alert and every
stream client gets an `alert` event (no SSE id) with status open; grown by a second failure; acknowledged
over POST: an `alert` event with status acknowledged and who; the completion that clears it: resolved."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from obs_platform_tests import test_alerts_bff
from obs_platform_tests.test_alerts_bff import AUTH, event, wait_subscribed
from obs_platform_tests.test_live_path import Sse

pytestmark = [pytest.mark.pubsub]

alert_env = test_alerts_bff.alert_env  # the fixture: a receiver, OBS_ALERTS_FILE, the token on


class Stream(Sse):
    """Reads /api/stream (with the token) in a thread; each parsed SSE event lands in a queue."""

    def __init__(self, url: str):
        super().__init__(url, headers=AUTH)

    def next_alert(self, timeout: float = 20) -> dict:
        """The next `alert` event (other events are skipped); asserts it has no SSE id."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            assert event is not None, "the stream ended"
            if event.get("event") == "alert":
                assert "id" not in event, "alert events are not resumable: no SSE id"
                return json.loads(event["data"])


def test_alert_opened_grown_acknowledged_and_resolved_arrive_on_the_stream(settings, bff_for, alert_env):
    receiver, emitter = alert_env
    bff = bff_for(settings)
    wait_subscribed(settings)
    assert httpx.get(f"{bff.url}/api/stream", timeout=5).status_code == 401  # the stream needs the token too
    streams = [Stream(bff.url), Stream(bff.url)]  # every client gets every change
    try:
        for s in streams:
            first = s.events.get(timeout=20)
            assert first is not None and first["event"] == "ready"

        emitter.emit(event("orders", "load", "FAILED", "batch-1", error="Timeout after 3000 ms"))
        emitter.flush()
        for s in streams:
            opened = s.next_alert()
            assert opened["change"] == "opened"
            alert = opened["alert"]
            assert (alert["status"], alert["rule"], alert["pipeline"], alert["stage"], alert["count"]) == (
                "open", "failed", "orders", "load", 1)
            assert alert["links"]["journeyPage"] == "/journeys/batch-1"
        alert_id = alert["id"]
        listed = httpx.get(f"{bff.url}/api/alerts", params={"status": "open"}, headers=AUTH, timeout=10).json()
        assert [a["id"] for a in listed["alerts"]] == [alert_id]  # what the stream said is what the API says

        emitter.emit(event("orders", "load", "FAILED", "batch-2", error="Timeout after 3100 ms"))
        emitter.flush()
        grown = streams[0].next_alert()
        assert (grown["change"], grown["alert"]["id"], grown["alert"]["count"]) == ("grown", alert_id, 2)
        assert grown["alert"]["correlationId"] == "batch-2"

        acked = httpx.post(f"{bff.url}/api/alerts/{alert_id}/acknowledge", json={"by": "alice"}, headers=AUTH,
                           timeout=10)
        assert acked.status_code == 200
        for s in streams:
            change = s.next_alert()
            while change["change"] == "grown":  # the second failure, on the stream not read above
                change = s.next_alert()
            assert change["change"] == "acknowledged"
            assert (change["alert"]["id"], change["alert"]["status"], change["alert"]["acknowledgedBy"]) == (
                alert_id, "acknowledged", "alice")

        emitter.emit(event("orders", "load", "COMPLETED", "batch-3"))
        emitter.flush()
        resolved = streams[0].next_alert()
        assert (resolved["change"], resolved["alert"]["id"], resolved["alert"]["status"]) == (
            "resolved", alert_id, "resolved")
        assert resolved["alert"]["resolvedBy"] == "auto"
    finally:
        for s in streams:
            s.close()
