"""The live path: events from the bus, shown as pending before the table commits them.

The Hudi table stays the source of truth; its commits follow a cadence tuned for cost (up to
``OBS_COMMIT_MAX_DELAY_SECONDS``). Beside it, each BFF process reads the events topic through a Pub/Sub
subscription of its own (Pub/Sub gives every subscription every message, so several replicas each see
every event), decodes each message with the platform's codec, and offers the rows to its SSE clients as
``pending`` events (no SSE id: they are not in a commit, so not resumable by ``Last-Event-ID``). When the
commit that holds them arrives, the ``commit`` event carries the same rows with their ``commitTime``.

- The subscription: ``<topic>-live-<host>-<pid>-<random>``, created at start with an expiration policy
  (``OBS_BFF_LIVE_SUBSCRIPTION_TTL_HOURS``; Pub/Sub deletes a subscription nobody pulled from for that
  long, 24 h at least) and a 10-minute message retention (a view needs no backlog); deleted on a clean
  shutdown. Messages are acked on arrival: the live path is a view, the table keeps every event.
- A message the codec refuses (the table's ingestion keeps it as a dead letter) is dropped here, counted.
- Newest ``lastUpdatedAt`` wins, as in the table: a pending row is offered only if it is newer than the
  committed row for its eventId and than the newest pending row already offered for it. A row whose
  ``eventTimestamp`` moved to another day than the stored row's is not offered either (the ingestion's
  partition guard makes it a dead letter).
- Rows arriving together are sent as one message: the first row of a quiet moment waits ``batch_ms``
  at most, so at 1,000 events/s clients get ~20 messages a second, not 1,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from bff.models import PendingEvent
from obs_platform.bus.client import subscriber, topic_path
from obs_platform.events.codec import DecodeError, EventCodec
from obs_platform.query.base import MAX_PAGE, EventQuery, EventReader
from obs_platform.settings import Settings

log = logging.getLogger(__name__)

_PENDING = TypeAdapter(list[PendingEvent])
RETENTION_SECONDS = 600       # Pub/Sub's minimum message retention: a live view needs no backlog
REMEMBERED_PENDING = 100_000  # eventIds whose newest offered pending state is kept (LRU)


@dataclass(frozen=True)
class PendingMessage:
    """One ``pending`` SSE event: rows from the bus that no commit holds yet."""

    data: str
    count: int
    commit: None = None  # the feed's queues carry commits and these; a pending message never has an id


def live_subscription_name(settings: Settings) -> str:
    """A name of this process's own: ``<topic>-live-<host>-<pid>-<6 hex>`` (Pub/Sub's charset, ≤ 255)."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
    return f"{settings.topic}-live-{host}-{os.getpid()}-{secrets.token_hex(3)}"[:255]


def _row(record: dict[str, Any], publish_time: datetime | None) -> dict[str, Any]:
    row = dict(record)
    row["attributes"] = dict(row.get("attributes") or {})
    row["commitTime"] = None
    row["pending"] = True
    row["publishTime"] = publish_time
    return row


def _day(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass
class LiveStats:
    received: int = 0
    undecodable: int = 0
    offered: int = 0
    superseded: int = 0   # older than the committed or an already offered pending state
    messages: int = 0


@dataclass
class LivePath:
    """This process's subscription to the events topic, feeding ``feed.publish_pending``."""

    settings: Settings
    reader: EventReader
    feed: Any                       # bff.live.CommitFeed
    ttl_hours: int = 24
    batch_ms: float = 50.0
    name: str = ""
    stats: LiveStats = field(default_factory=LiveStats)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.name = self.name or live_subscription_name(self.settings)
        self.path = pubsub_v1.SubscriberClient.subscription_path(self.settings.gcp_project, self.name)
        self._codec = EventCodec()
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._offered_lock = threading.Lock()  # the flush's worker thread and the commit watcher
        self._wake = asyncio.Event()
        self._newest_offered: OrderedDict[str, datetime] = OrderedDict()
        self._client: pubsub_v1.SubscriberClient | None = None
        self._future = None
        self._created = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- the subscription ------------------------------------------------------------------------------
    def _create(self) -> None:
        self._client = self._client or subscriber(self.settings)
        self._client.create_subscription(request={
            "name": self.path, "topic": topic_path(self.settings), "ack_deadline_seconds": 10,
            "expiration_policy": {"ttl": {"seconds": self.ttl_hours * 3600}},
            "message_retention_duration": {"seconds": RETENTION_SECONDS},
            "labels": {"obs-platform": "bff-live-path"},
        })
        self._created = True
        log.info("live path: subscribed to %s as %s (expires after %d h unused)", topic_path(self.settings),
                 self.path, self.ttl_hours)

    def _on_message(self, message) -> None:
        """In the client's callback threads: ack, decode, hand the row to the event loop."""
        message.ack()
        self.stats.received += 1
        try:
            record = self._codec.decode(message.data)
        except DecodeError:
            self.stats.undecodable += 1  # a dead letter in the table's ingestion; never a row here
            return
        publish_time = message.publish_time
        row = _row(record, publish_time if isinstance(publish_time, datetime) else None)
        with self._lock:
            self._buffer.append(row)
            first = len(self._buffer) == 1
        if first and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Create the subscription (retrying while the topic does not exist yet), then pull until cancelled."""
        self._loop = asyncio.get_running_loop()
        delay, warned = 1.0, False
        while not self._created:
            try:
                await run_in_threadpool(self._create)
            except gexc.NotFound:
                if not warned:
                    log.warning("live path: topic %s does not exist yet; retrying", topic_path(self.settings))
                    warned = True
            except Exception:
                if not warned:
                    log.exception("live path: cannot create the subscription yet; retrying")
                    warned = True
            if not self._created:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self._future = self._client.subscribe(
            self.path, self._on_message,
            flow_control=pubsub_v1.types.FlowControl(max_messages=5_000, max_lease_duration=60))
        self.subscribed.set()
        await self._flush_forever()

    def close(self) -> None:
        """Stop pulling and delete the subscription (a clean shutdown leaves nothing behind)."""
        if self._future is not None:
            self._future.cancel()
            try:
                self._future.result(timeout=5)
            except Exception:  # noqa: BLE001 - cancelled, or the bus is gone already
                pass
        if self._created and self._client is not None:
            try:
                self._client.delete_subscription(request={"subscription": self.path}, timeout=5)
                log.info("live path: deleted %s", self.path)
            except Exception:  # noqa: BLE001 - it expires by itself (expiration policy)
                log.warning("live path: could not delete %s; it expires after %d h unused", self.path,
                            self.ttl_hours)
        if self._client is not None:
            self._client.close()

    # --- rows to clients -------------------------------------------------------------------------------
    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.batch_ms / 1000)
            self._wake.clear()
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                continue
            try:
                message = await run_in_threadpool(self.pending_message, rows)
            except Exception:
                log.exception("live path: could not offer %d rows", len(rows))
                continue
            if message is not None:
                self.stats.messages += 1
                self.feed.publish_pending(message)

    def pending_message(self, rows: list[dict[str, Any]]) -> PendingMessage | None:
        """The rows worth showing: per eventId the newest, and only if newer than what is committed and what
        was offered before. Runs in a worker thread (the committed lookup reads the table's view)."""
        newest: dict[str, dict[str, Any]] = {}
        for row in rows:
            seen = newest.get(row["eventId"])
            if seen is None or row["lastUpdatedAt"] >= seen["lastUpdatedAt"]:
                newest[row["eventId"]] = row
        self.stats.superseded += len(rows) - len(newest)
        committed = self._committed(list(newest))
        keep = []
        with self._offered_lock:
            keep = self._newer(newest, committed)
        if not keep:
            return None
        keep.sort(key=lambda r: r["lastUpdatedAt"], reverse=True)  # the table's order: newest first
        self.stats.offered += len(keep)
        events = _PENDING.dump_json(_PENDING.validate_python(keep)).decode()
        received = json.dumps(datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        return PendingMessage(f'{{"receivedAt": {received}, "events": {events}}}', len(keep))

    def _newer(self, newest: dict[str, dict[str, Any]], committed: dict[str, dict[str, Any]]) -> list[dict]:
        keep = []
        for event_id, row in newest.items():
            stored = committed.get(event_id)
            offered = self._newest_offered.get(event_id)
            if stored is not None and (stored["lastUpdatedAt"] >= row["lastUpdatedAt"]
                                       or _day(stored["eventTimestamp"]) != _day(row["eventTimestamp"])):
                self.stats.superseded += 1
                continue
            if offered is not None and offered >= row["lastUpdatedAt"]:
                self.stats.superseded += 1
                continue
            self._newest_offered[event_id] = row["lastUpdatedAt"]
            self._newest_offered.move_to_end(event_id)
            keep.append(row)
        while len(self._newest_offered) > REMEMBERED_PENDING:
            self._newest_offered.popitem(last=False)
        return keep

    def _committed(self, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(event_ids), MAX_PAGE):
            chunk = tuple(event_ids[start:start + MAX_PAGE])
            try:
                page = self.reader.events(EventQuery(event_ids=chunk, limit=len(chunk)))
            except Exception:  # noqa: BLE001 - no table yet (or not readable now): nothing is committed
                log.debug("live path: committed lookup failed", exc_info=True)
                continue
            out.update({e["eventId"]: e for e in page.events})
        return out

    def forget_committed(self, rows: list[dict[str, Any]]) -> None:
        """A commit holds these rows: pending states it covers need no remembering."""
        with self._offered_lock:
            for row in rows:
                offered = self._newest_offered.get(row["eventId"])
                if offered is not None and offered <= row["lastUpdatedAt"]:
                    del self._newest_offered[row["eventId"]]

    def describe(self) -> dict[str, Any]:
        return {"subscription": self.path, "subscribed": self.subscribed.is_set(), **self.stats.__dict__,
                "at": time.time()}


@asynccontextmanager
async def live_path(feed, reader: EventReader, settings: Settings, enabled: bool, ttl_hours: int = 24,
                    batch_ms: float = 50.0) -> AsyncIterator[LivePath | None]:
    """Run the live path beside ``feed`` for the app's lifetime (nothing when not ``enabled``); on the way
    out stop pulling and delete the subscription."""
    if not enabled:
        yield None
        return
    path = LivePath(settings, reader, feed, ttl_hours=ttl_hours, batch_ms=batch_ms)
    feed.live_path = True
    feed.on_commit = path.forget_committed
    task = asyncio.create_task(path.run(), name="live-path")
    try:
        yield path
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await run_in_threadpool(path.close)
