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
    """Pulls from the ingestion subscription; the caller acks what it committed."""

    def __init__(self, settings: Settings, first_wait_s: float = 1.0):
        self.settings = settings
        self.subscription = subscription_path(settings)
        self.first_wait_s = first_wait_s
        self._client = subscriber(settings)
        self.stats = PullStats()

    def close(self) -> None:
        self._client.close()

    def pull(self, max_messages: int) -> list[PulledMessage]:
        """Up to ``max_messages`` messages: waits up to ``first_wait_s`` for the first page, then keeps
        taking pages while they come back non-empty (the backlog), so an idle stream returns quickly.
        (Pub/Sub and its emulators may return fewer messages than asked even with a backlog.)"""
        out: list[PulledMessage] = []
        while len(out) < max_messages:
            want = min(PULL_PAGE, max_messages - len(out))
            try:
                response = self._client.pull(
                    request={"subscription": self.subscription, "max_messages": want},
                    timeout=self.first_wait_s if not out else 0.5,
                    retry=None,
                )
            except (gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
                log.debug("pull returned nothing (%s)", type(exc).__name__)
                break
            self.stats.pulls += 1
            page = response.received_messages
            for received in page:
                msg = received.message
                publish_time = msg.publish_time
                if not isinstance(publish_time, datetime):
                    publish_time = datetime.fromtimestamp(publish_time.timestamp(), tz=UTC)
                out.append(
                    PulledMessage(
                        ack_id=received.ack_id, message_id=msg.message_id, data=bytes(msg.data),
                        attributes=dict(msg.attributes), publish_time=publish_time,
                        delivery_attempt=received.delivery_attempt,
                    )
                )
            if not page:
                break
        self.stats.pulled += len(out)
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
