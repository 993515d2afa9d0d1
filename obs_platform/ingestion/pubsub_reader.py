"""Driver-side Pub/Sub reader for the micro-batch stream: pull a bounded batch, ack after the commit.

This is the shape of Spark 4's Python ``DataSourceStreamReader`` (pull in ``latestOffset``, ack in
``commit``) on Spark 3.5, which has no Python streaming source API: Hudi's Spark bundle on Maven Central
stops at Spark 3.5, so the platform runs Spark 3.5 and its Structured Streaming query calls this reader
from ``foreachBatch`` on the driver. Nothing is acked before the Hudi commit that holds it; anything
pulled but not acked is redelivered by Pub/Sub after its ack deadline, and the upsert absorbs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.api_core import exceptions as gexc

from obs_platform.bus.client import subscriber, subscription_path
from obs_platform.settings import Settings

log = logging.getLogger(__name__)

PULL_PAGE = 1000  # Pub/Sub returns at most 1,000 messages per pull
ACK_CHUNK = 1000  # ack/modack requests are limited to 512 KB
# a pull page this small means the bus has (almost) nothing waiting; Pub/Sub and the emulators return short
# pages under a backlog too, but not this short
DRAINED_PAGE = 100


@dataclass(frozen=True)
class PulledMessage:
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: datetime
    delivery_attempt: int = 0


@dataclass(frozen=True)
class Page:
    """One pull's messages and, when the reader has a ``decode`` function, what it made of them in the pulling
    thread (so decoding overlaps the previous batch's write instead of adding to it)."""

    messages: list[PulledMessage]
    decoded: object | None = None


@dataclass
class PullStats:
    pulled: int = 0
    acked: int = 0
    extended: int = 0
    pulls: int = 0
    seen_message_ids: set[str] = field(default_factory=set, repr=False)


class PubSubBatchReader:
    """Pulls from the ingestion subscription; the caller acks what it committed.

    With ``prefetch=True`` a few threads keep pulling into a bounded buffer (at most
    ``max_messages_per_batch`` messages, whose ack deadlines they keep extending) while the previous batch is
    being written, so pulling leaves the critical path; with ``decode`` they also decode each page as it
    arrives. ``pull()`` / ``pull_pages()`` then hand over what is buffered.
    """

    def __init__(self, settings: Settings, first_wait_s: float = 1.0, prefetch: bool = False,
                 pull_threads: int = 4, min_rows: int | None = None, max_delay_s: float | None = None,
                 idle_return_s: float = 30.0, decode: Callable[[Sequence[PulledMessage]], object] | None = None):
        self.settings = settings
        self.decode = decode
        # adaptive cadence (prefetch only): hand over a batch once min_rows wait, or once the oldest waiting
        # message was published max_delay_s ago; with nothing at all, return empty after idle_return_s
        self.min_rows = min_rows if min_rows is not None else settings.commit_min_rows
        self.max_delay_s = max_delay_s if max_delay_s is not None else settings.commit_max_delay_seconds
        self.idle_return_s = idle_return_s
        self._oldest_publish: float | None = None  # epoch seconds of the oldest buffered message
        # the last pull came back (nearly) empty: the bus has nothing more right now. With a backlog
        # (full pages) a due batch still waits for the buffer to fill, up to backlog_fill_s: an old backlog
        # is always "due", and taking it a page at a time would pay the commit's fixed cost per page
        self._bus_drained = True
        self.backlog_fill_s = 3.0
        self._woken = False
        self.subscription = subscription_path(settings)
        self.first_wait_s = first_wait_s
        self._client = subscriber(settings)
        self.stats = PullStats()
        self._pages: list[Page] = []
        self._buffered = 0  # messages in self._pages
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        if prefetch:
            for i in range(pull_threads):
                self._spawn(self._prefetch_loop, f"pubsub-prefetch-{i}")
            self._spawn(self._buffer_lease_loop, "pubsub-buffer-lease")

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._client.close()

    def _pull_page(self, want: int, timeout: float) -> list[PulledMessage]:
        """One pull RPC; [] when nothing came within ``timeout``."""
        try:
            response = self._client.pull(
                request={"subscription": self.subscription, "max_messages": want}, timeout=timeout, retry=None
            )
        except (gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
            log.debug("pull returned nothing (%s)", type(exc).__name__)
            return []
        self.stats.pulls += 1
        page = []
        for received in response.received_messages:
            msg = received.message
            publish_time = msg.publish_time
            if not isinstance(publish_time, datetime):
                publish_time = datetime.fromtimestamp(publish_time.timestamp(), tz=UTC)
            page.append(
                PulledMessage(
                    ack_id=received.ack_id, message_id=msg.message_id, data=bytes(msg.data),
                    attributes=dict(msg.attributes), publish_time=publish_time,
                    delivery_attempt=received.delivery_attempt,
                )
            )
        return page

    def _prefetch_loop(self) -> None:
        limit = self.settings.max_messages_per_batch
        while not self._closing.is_set():
            with self._cond:
                while self._buffered >= limit and not self._closing.is_set():
                    self._cond.wait(0.5)  # back-pressure: the batch in flight has not taken them yet
            if self._closing.is_set():
                return
            try:
                page = self._pull_page(PULL_PAGE, timeout=5.0)
            except gexc.GoogleAPICallError as exc:
                log.warning("prefetch pull failed: %s", exc)
                self._closing.wait(1.0)
                continue
            if not page:
                self._bus_drained = True
            else:
                oldest = min(m.publish_time.timestamp() for m in page)
                decoded = self.decode(page) if self.decode else None
                with self._cond:
                    self._bus_drained = len(page) < DRAINED_PAGE
                    self._pages.append(Page(page, decoded))
                    self._buffered += len(page)
                    if self._oldest_publish is None or oldest < self._oldest_publish:
                        self._oldest_publish = oldest
                    self._cond.notify_all()

    def _buffer_lease_loop(self) -> None:
        """Buffered messages keep at least 3/4 of an ack deadline ahead of them."""
        deadline = self.settings.ack_deadline_seconds
        while not self._closing.wait(deadline / 4):
            with self._cond:
                buffered = [m for page in self._pages for m in page.messages]
            if buffered:
                try:
                    self.extend(buffered, deadline)
                except gexc.GoogleAPICallError as exc:
                    log.warning("could not extend buffered messages: %s", exc)

    def pull(self, max_messages: int) -> list[PulledMessage]:
        """Up to ``max_messages`` messages. With prefetch: once ``min_rows`` are buffered, or once the oldest
        buffered message was published ``max_delay_s`` ago (adaptive cadence; [] after ``idle_return_s`` with
        nothing). Without: waits up to ``first_wait_s`` for the first ones, then takes what the backlog holds
        (Pub/Sub and its emulators return fewer than asked per call even with a backlog)."""
        return [m for page in self.pull_pages(max_messages) for m in page.messages]

    def pull_pages(self, max_messages: int) -> list[Page]:
        """``pull``, as the pages the pulling threads made (decoded when the reader has ``decode``)."""
        pages = self._take_buffered(max_messages) if self._threads else [Page(self._pull_now(max_messages))]
        pages = [p for p in pages if p.messages]
        self.stats.pulled += sum(len(p.messages) for p in pages)
        return pages

    def wake(self) -> None:
        """End a ``pull`` that is waiting for rows; it returns nothing (the caller is stopping)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _take_buffered(self, max_messages: int) -> list[Page]:
        """A batch is *eligible* once ``min_rows`` wait or the oldest waiting message is ``max_delay_s`` old;
        it is taken once eligible and either the buffer is full, or the bus has nothing more right now, or it
        has been eligible for ``backlog_fill_s`` (a backlog drains in full batches, a trickle at once)."""
        enough = max(1, min(self.min_rows, max_messages))
        with self._cond:
            idle_until = time.monotonic() + self.idle_return_s
            eligible_since: float | None = None
            while not (self._woken or self._closing.is_set()):
                if self._buffered >= max_messages:
                    break
                if self._pages:
                    due = self._oldest_publish + self.max_delay_s - time.time()
                    if self._buffered >= enough or due <= 0:
                        eligible_since = eligible_since or time.monotonic()
                        filling = time.monotonic() - eligible_since
                        if self._bus_drained or filling >= self.backlog_fill_s:
                            break
                        self._cond.wait(min(0.2, self.backlog_fill_s - filling))
                    else:
                        self._cond.wait(min(due, 1.0))
                else:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        return []
                    self._cond.wait(min(left, 1.0))
            if self._woken or self._closing.is_set():
                return []
            out: list[Page] = []
            taken = 0
            while self._pages and taken < max_messages:
                page = self._pages[0]
                room = max_messages - taken
                if len(page.messages) <= room:
                    out.append(self._pages.pop(0))
                    taken += len(page.messages)
                else:  # a batch smaller than a pull page: split it (the halves are decoded by the caller)
                    out.append(Page(page.messages[:room]))
                    self._pages[0] = Page(page.messages[room:])
                    taken += room
            self._buffered -= taken
            self._oldest_publish = (min(m.publish_time.timestamp() for p in self._pages for m in p.messages)
                                    if self._pages else None)
            self._cond.notify_all()
        return out

    def _pull_now(self, max_messages: int) -> list[PulledMessage]:
        out: list[PulledMessage] = []
        while len(out) < max_messages:
            page = self._pull_page(min(PULL_PAGE, max_messages - len(out)),
                                   self.first_wait_s if not out else 0.5)
            if not page:
                break
            out.extend(page)
        return out

    def ack(self, messages: Sequence[PulledMessage]) -> None:
        ids = [m.ack_id for m in messages]
        for i in range(0, len(ids), ACK_CHUNK):
            self._client.acknowledge(request={"subscription": self.subscription, "ack_ids": ids[i : i + ACK_CHUNK]})
        self.stats.acked += len(ids)

    def extend(self, messages: Sequence[PulledMessage], seconds: int) -> None:
        ids = [m.ack_id for m in messages]
        for i in range(0, len(ids), ACK_CHUNK):
            self._client.modify_ack_deadline(
                request={"subscription": self.subscription, "ack_ids": ids[i : i + ACK_CHUNK],
                         "ack_deadline_seconds": seconds}
            )
        self.stats.extended += len(ids)

    @contextmanager
    def leased(self, messages: Sequence[PulledMessage]) -> Iterator[None]:
        """Keep extending the ack deadline of ``messages`` while the block runs (a slow commit must not
        let Pub/Sub redeliver what is being written)."""
        deadline = self.settings.ack_deadline_seconds
        stop = threading.Event()

        def keep_alive() -> None:
            while not stop.wait(deadline / 2):
                try:
                    self.extend(messages, deadline)
                except gexc.GoogleAPICallError as exc:  # the next tick tries again
                    log.warning("could not extend ack deadlines: %s", exc)

        thread = threading.Thread(target=keep_alive, name="ack-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
