"""The live feed's fan-out, in process: bounded per-client queues, a slow client closed without holding up the
others, nothing delivered twice. (The stream over HTTP on a real table is in test_bff_conformance.py.)"""

import asyncio

import pytest

from bff.live import CommitFeed, commit_message
from obs_platform.query.embedded import EmbeddedReader


def message(n: int):
    instant = f"2026112608{n:02d}00000"
    row = {"eventId": f"e{n}", "correlationId": "c", "pipelineName": "p", "stageName": "s", "status": "RUNNING",
           "eventTimestamp": "2026-11-26T08:00:00Z", "lastUpdatedAt": f"2026-11-26T08:{n:02d}:00Z",
           "commitTime": instant}
    return commit_message(instant, "commit", [row])


def test_a_slow_client_is_closed_and_the_others_get_every_commit_once(tmp_path):
    async def scenario():
        # a real reader on a table that does not exist yet: the feed's backlog path has nothing to replay
        feed = CommitFeed(EmbeddedReader(str(tmp_path / "no-table")), queue_size=2)
        feed.started.set()
        slow, fast = feed.messages(None), feed.messages(None)
        assert (await anext(slow))["event"] == "ready" and (await anext(fast))["event"] == "ready"
        assert len(feed.subscribers) == 2
        received = []
        for n in range(1, 6):
            feed.publish(message(n))  # never waits, whoever is slow
            received.append(await asyncio.wait_for(anext(fast), 1))
        assert [m["id"] for m in received] == [f"2026112608{n:02d}00000" for n in range(1, 6)]
        assert all(m["event"] == "commit" and f'"e{n}"' in m["data"] for n, m in zip(range(1, 6), received, strict=True))
        # the slow one overflowed at the third commit: its stream ends (it reconnects with Last-Event-ID)
        assert len(feed.subscribers) == 1
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(slow), 1)
        # a message the feed re-offers (e.g. after a restart of the watcher) is not sent twice
        feed.publish(message(5))
        feed.publish(message(6))
        assert (await asyncio.wait_for(anext(fast), 1))["id"] == "20261126080600000"
        await fast.aclose()
        assert feed.subscribers == set()

    asyncio.run(scenario())


def test_the_message_body_is_the_event_shape():
    body = message(7).data
    assert body.startswith('{"commit": "20261126080700000", "action": "commit", "events": [')
    assert '"eventTimestamp":"2026-11-26T08:00:00Z"' in body and '"attributes":{}' in body
