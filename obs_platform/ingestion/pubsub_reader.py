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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.api_core import exceptions as gexc

from obs_platform.bus.client import subscriber, subscription_path
from obs_platform.settings import Settings

log = logging.getLogger(__name__)

PULL_PAGE = 1000  # Pub/Sub returns at most 1,000 messages per pull
ACK_CHUNK = 1000  # ack/modack requests are limited to 512 KB


@dataclass(frozen=True)
class PulledMessage:
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: datetime
    delivery_attempt: int = 0


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
    being written, so pulling leaves the critical path. ``pull()`` then hands over what is buffered.
    """

    def __init__(self, settings: Settings, first_wait_s: float = 1.0, prefetch: bool = False,
                 pull_threads: int = 4, min_rows: int | None = None, max_delay_s: float | None = None,
                 idle_return_s: float = 30.0):
        self.settings = settings
        # adaptive cadence (prefetch only): hand over a batch once min_rows wait, or once the oldest waiting
        # message was published max_delay_s ago; with nothing at all, return empty after idle_return_s
        self.min_rows = min_rows if min_rows is not None else settings.commit_min_rows
        self.max_delay_s = max_delay_s if max_delay_s is not None else settings.commit_max_delay_seconds
        self.idle_return_s = idle_return_s
        self._oldest_publish: float | None = None  # epoch seconds of the oldest buffered message
        self._woken = False
        self.subscription = subscription_path(settings)
        self.first_wait_s = first_wait_s
        self._client = subscriber(settings)
        self.stats = PullStats()
        self._buffer: list[PulledMessage] = []
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
                while len(self._buffer) >= limit and not self._closing.is_set():
                    self._cond.wait(0.5)  # back-pressure: the batch in flight has not taken them yet
            if self._closing.is_set():
                return
            try:
                page = self._pull_page(PULL_PAGE, timeout=5.0)
            except gexc.GoogleAPICallError as exc:
                log.warning("prefetch pull failed: %s", exc)
                self._closing.wait(1.0)
                continue
            if page:
                oldest = min(m.publish_time.timestamp() for m in page)
                with self._cond:
                    self._buffer.extend(page)
                    if self._oldest_publish is None or oldest < self._oldest_publish:
                        self._oldest_publish = oldest
                    self._cond.notify_all()

    def _buffer_lease_loop(self) -> None:
        """Buffered messages keep at least 3/4 of an ack deadline ahead of them."""
        deadline = self.settings.ack_deadline_seconds
        while not self._closing.wait(deadline / 4):
            with self._cond:
                buffered = list(self._buffer)
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
        out = self._take_buffered(max_messages) if self._threads else self._pull_now(max_messages)
        self.stats.pulled += len(out)
        return out

    def wake(self) -> None:
        """End a ``pull`` that is waiting for rows; it returns nothing (the caller is stopping)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def _take_buffered(self, max_messages: int) -> list[PulledMessage]:
        enough = max(1, min(self.min_rows, max_messages))
        with self._cond:
            idle_until = time.monotonic() + self.idle_return_s
            while not (self._woken or self._closing.is_set()):
                if len(self._buffer) >= enough:
                    break
                if self._buffer:
                    due = self._oldest_publish + self.max_delay_s - time.time()
                    if due <= 0:
                        break
                    self._cond.wait(min(due, 1.0))
                else:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        return []
                    self._cond.wait(min(left, 1.0))
            if self._woken or self._closing.is_set():
                return []
            out, self._buffer = self._buffer[:max_messages], self._buffer[max_messages:]
            self._oldest_publish = (min(m.publish_time.timestamp() for m in self._buffer) if self._buffer
                                    else None)
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
