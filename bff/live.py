"""The live feed: one timeline watcher per BFF process, fanned out to every SSE client.

The watcher (a background task started with the app) polls the table's newest commit every
``OBS_BFF_STREAM_POLL_SECONDS``; for each new commit, in order, it reads the rows that commit wrote once,
serializes the message once, and offers it to every subscriber's bounded queue without waiting. A client
whose queue is full (it reads slower than commits arrive) is closed rather than allowed to hold anyone up;
its EventSource reconnects with ``Last-Event-ID`` and the backlog path replays what it missed.

Resuming exactly: a client subscribes and notes the watcher's last broadcast commit ``upto`` in one step on
the event loop (no await between them), replays the commits in ``(since, upto]`` from the table, then takes
live messages, skipping any instant it has already sent. So every commit after ``since`` arrives once, in
order.

Pending rows (the live path, ``bff/livebus.py``): rows read from the bus before any commit holds them go to
the same queues as ``pending`` events, without an SSE id (a reconnect resumes by commits only); so do alert
changes (``bff/alertfeed.py``) as ``alert`` events.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool

from bff.models import Event
from obs_platform.query.base import EventReader

log = logging.getLogger(__name__)

_EVENTS = TypeAdapter(list[Event])


@dataclass(frozen=True)
class CommitMessage:
    commit: str
    action: str
    data: str  # the JSON body, serialized once for every subscriber


def commit_message(commit: str, action: str, rows: list[dict]) -> CommitMessage:
    events = _EVENTS.dump_json(_EVENTS.validate_python(rows)).decode()
    return CommitMessage(commit, action, f'{{"commit": {json.dumps(commit)}, "action": {json.dumps(action)}, '
                                         f'"events": {events}}}')


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue
    closed: bool = False


@dataclass
class CommitFeed:
    reader: EventReader
    poll_seconds: float = 0.5
    queue_size: int = 256
    last: str | None = None                       # the newest commit broadcast
    subscribers: set[Subscriber] = field(default_factory=set)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    commits_seen: int = 0
    live_path: bool = False                       # pending rows from the bus are offered too
    on_commit: Callable[[list[dict]], None] | None = None  # told the rows of each commit broadcast

    # --- the one watcher ---------------------------------------------------------------------------------
    async def run(self) -> None:
        while not self.started.is_set():
            try:
                self.last = await run_in_threadpool(self.reader.latest_commit)
                self.started.set()
                await run_in_threadpool(self.reader.refresh)  # warm the view before the first request needs it
                # what exists now (modules, app, caches) lives as long as the process: keep it out of the
                # collector's full passes, which otherwise cost 50-100 ms on a page of 1,000 events (p95)
                gc.freeze()
            except Exception:
                log.exception("live feed: cannot read the table yet")
                await asyncio.sleep(self.poll_seconds)
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live feed: poll failed; retrying")

    async def poll(self) -> None:
        latest = await run_in_threadpool(self.reader.latest_commit)
        if latest is None or (self.last is not None and latest <= self.last):
            return
        await run_in_threadpool(self.reader.refresh)
        for commit, action in await self.commits_after(self.last, latest):
            rows = await run_in_threadpool(self.reader.changes_in, commit)
            message = await run_in_threadpool(commit_message, commit, action, rows)
            self.last = commit
            self.commits_seen += 1
            self.publish(message)
            if self.on_commit is not None:
                self.on_commit(rows)

    async def commits_after(self, since: str | None, upto: str) -> list[tuple[str, str]]:
        commits = await run_in_threadpool(self.reader.commits)
        return sorted((c.instant, c.action) for c in commits if (since is None or c.instant > since) and c.instant <= upto)

    def publish_pending(self, message) -> None:
        """Offer a ``bff.livebus.PendingMessage`` (rows not in a commit yet) to every client."""
        self.publish(message)

    def publish(self, message) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                self.close(sub)

    # --- subscribers ---------------------------------------------------------------------------------------
    def subscribe(self) -> tuple[Subscriber, str | None]:
        """Register, and the commit up to which the table (not the queue) has to be read: one atomic step."""
        sub = Subscriber(asyncio.Queue(maxsize=self.queue_size))
        self.subscribers.add(sub)
        return sub, self.last

    def close(self, sub: Subscriber) -> None:
        """Drop a subscriber that fell behind: empty its queue and leave a sentinel so its stream ends."""
        self.subscribers.discard(sub)
        sub.closed = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)
        log.warning("live feed: closed a client %d commits behind; it resumes with Last-Event-ID", self.queue_size)

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def messages(self, since: str | None) -> AsyncIterator[dict]:
        """SSE events for one client: a ``ready`` event, the backlog after ``since``, then live commits."""
        await self.started.wait()
        sub, upto = self.subscribe()
        try:
            ahead = since is not None and (upto is None or since > upto)
            sent = upto if since is None or ahead else since
            # the ready event carries the client's position as its id, so that a browser dropped before the
            # first commit still reconnects with a Last-Event-ID and misses nothing
            ready = {"event": "ready", "data": json.dumps({"latestCommit": upto, "resumedAfter": since,
                                                           "livePath": self.live_path})}
            yield {**ready, "id": sent} if sent else ready
            if ahead:
                # a position after the newest commit (a cursor from another table, a clock, or a forged id):
                # nothing would ever follow it; say so and follow from the newest commit instead
                yield {"event": "reset", "data": json.dumps({
                    "latestCommit": upto, "oldestRetainedCommit": None,
                    "detail": f"{since} is after the newest commit ({upto or 'none yet'}); reload the full state "
                              "(GET /api/events), then follow from latestCommit"})}
            elif since is not None and upto is not None and since < upto:
                oldest = await run_in_threadpool(self.reader.oldest_retained_commit)
                if oldest is not None and since < oldest:
                    # the commits in between are past the horizon: their changes cannot be replayed
                    yield {"event": "reset", "data": json.dumps({
                        "latestCommit": upto, "oldestRetainedCommit": oldest,
                        "detail": f"{since} is older than the oldest retained commit {oldest}; reload the full "
                                  "state (GET /api/events), then follow from latestCommit"})}
                    sent = upto
                else:
                    for commit, action in await self.commits_after(since, upto):
                        rows = await run_in_threadpool(self.reader.changes_in, commit)
                        message = await run_in_threadpool(commit_message, commit, action, rows)
                        yield {"id": commit, "event": "commit", "data": message.data}
                        sent = commit
            while True:
                message = await sub.queue.get()
                if message is None:
                    return  # fell behind: closed; the client reconnects with Last-Event-ID
                if message.commit is None:  # pending rows from the bus, alert changes: no id, not resumable
                    yield {"event": getattr(message, "event", "pending"), "data": message.data}
                    continue
                if sent is not None and message.commit <= sent:
                    continue
                yield {"id": message.commit, "event": "commit", "data": message.data}
                sent = message.commit
        finally:
            self.unsubscribe(sub)
