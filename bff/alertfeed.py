"""Alert changes on /api/stream: an ``alert`` event (no SSE id) whenever an alert opens, grows, is
acknowledged or is resolved.

The state is the alerter's SQLite file (``<home>/alerts/alerts.db``), written by the alerter in this process
(``OBS_BFF_ALERTS_ENGINE``), by a separate ``python -m obs_platform.alerts``, or by this BFF's acknowledge and
resolve routes. One watcher per BFF process reads it with a connection of its own: ``PRAGMA data_version``
(a counter SQLite moves when another connection commits) every ``poll_seconds``, and at once when this
process's alerter or routes say they wrote something (``wake``). When the file changed it compares the
alerts that are open or acknowledged, and any newer than the last one seen, with what it sent before: each
alert whose status, count or last occurrence moved goes to every SSE client as one ``alert`` event, the
alert as ``GET /api/alerts`` shows it. Like ``pending``, these are not resumable: after a reconnect a client
reads ``GET /api/alerts`` again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from obs_platform.alerts import payloads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertMessage:
    """One ``alert`` SSE event (the feed's queues carry it beside commits and pending rows)."""

    data: str
    commit: None = None   # never an SSE id: not resumable
    event: str = "alert"


def _key(row: sqlite3.Row) -> tuple:
    return (row["status"], row["count"], row["last_seen"], row["acknowledged_by"], row["event_id"])


def _change(before: tuple | None, row: sqlite3.Row) -> str:
    if before is None:
        return "opened" if row["status"] == "open" else row["status"]
    if before[0] != row["status"]:
        return row["status"]  # acknowledged | resolved
    return "grown"


class AlertWatcher:
    def __init__(self, path: Path, feed: Any, poll_seconds: float = 0.5):
        self.path = Path(path)
        self.feed = feed
        self.poll_seconds = poll_seconds
        self._db: sqlite3.Connection | None = None
        self._version: int | None = None
        self._known: dict[int, tuple] = {}   # active alerts as last sent
        self._max_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.sent = 0

    def wake(self) -> None:
        """Something wrote to the file (any thread): look now rather than at the next poll."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            self._db = db
        return self._db

    def _active(self, db: sqlite3.Connection) -> list[sqlite3.Row]:
        ids = list(self._known)
        marks = ", ".join("?" * len(ids))
        extra = f" OR id IN ({marks})" if ids else ""
        return db.execute(f"SELECT * FROM alerts WHERE status IN ('open', 'acknowledged') OR id > ?{extra} "  # noqa: S608
                          "ORDER BY id", [self._max_id, *ids]).fetchall()

    def start_state(self) -> None:
        """What exists when the BFF starts is not news: remember it without sending anything."""
        db = self._connect()
        self._version = db.execute("PRAGMA data_version").fetchone()[0]
        self._max_id = db.execute("SELECT coalesce(max(id), 0) FROM alerts").fetchone()[0]
        for row in self._active(db):
            self._known[row["id"]] = _key(row)

    def changes(self, force: bool = False) -> list[str]:
        """The ``alert`` event bodies for what changed since the last call (runs in a worker thread)."""
        db = self._connect()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version and not force:
            return []
        self._version = version
        out = []
        for row in self._active(db):
            self._max_id = max(self._max_id, row["id"])
            before = self._known.get(row["id"])
            key = _key(row)
            if before == key:
                continue
            if row["status"] == "resolved":
                self._known.pop(row["id"], None)
            else:
                self._known[row["id"]] = key
            out.append(json.dumps({"change": _change(before, row), "alert": payloads.alert_json(dict(row))}))
        return out

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            try:
                await run_in_threadpool(self.start_state)
                break
            except Exception:  # noqa: BLE001 - the file is created by the alerter's store; retry
                log.debug("alert watcher: alerts.db not readable yet", exc_info=True)
                await asyncio.sleep(self.poll_seconds)
        while True:
            woken = False
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                woken = True
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                for data in await run_in_threadpool(self.changes, woken):
                    self.sent += 1
                    self.feed.publish(AlertMessage(data))
            except Exception:
                log.exception("alert watcher: could not read alerts.db; retrying")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
