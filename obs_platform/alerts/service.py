"""The alerter as it runs: the evaluator fed from a durable Pub/Sub subscription, a tick for the time-based
rules, and the delivery workers, around one ``Store``.

Where it runs: inside the BFF process (``OBS_BFF_ALERTS_ENGINE``, on by default; ``bff/main.py``), or alone
with ``python -m obs_platform.alerts``. Either way the state is ``<home>/alerts/alerts.db``, which the BFF's
``/api/alerts`` routes read and change.

Its input is the events topic through the subscription ``<topic>-alerts`` — one durable subscription (not the
live path's per-process one, which is acked on arrival and gone after a restart): a message is acked only
after the transaction that evaluated it committed, so a crash re-delivers it and the evaluated-event keys make
the re-delivery a no-op. While the alerter is down, Pub/Sub keeps the messages (7 days by default). The subscription's ack deadline
is 10 s: a pull in flight when the process died holds its messages that long.

Beside it, the table (``reader``, in the BFF its own): on the first start the alerter learns the history-based
rules' history (durations, cadence, volumes) from the table's newest states without opening anything; after
that it reads every new commit from a stored cursor and evaluates its rows too — a state already evaluated
from the bus is a no-op, one the bus path never saw is evaluated late rather than lost.
Several processes may pull from it on the same ``alerts.db`` (SQLite serialises their transactions).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from obs_platform.alerts.config import AlertConfig, load_config
from obs_platform.alerts.delivery import DeliveryWorkers
from obs_platform.alerts.engine import AlertEngine
from obs_platform.alerts.store import Store
from obs_platform.bus.client import subscriber, topic_path
from obs_platform.events.codec import DecodeError, EventCodec
from obs_platform.query.base import MAX_PAGE, EventQuery, EventReader
from obs_platform.settings import Settings

log = logging.getLogger(__name__)


def db_path(settings: Settings) -> Path:
    return Path(settings.home) / "alerts" / "alerts.db"


def subscription_name(settings: Settings) -> str:
    return f"{settings.topic}-alerts"


@dataclass
class AlertService:
    settings: Settings
    config: AlertConfig = field(default_factory=load_config)
    pull_max: int = 1000
    reader: EventReader | None = None  # the table: learned history on first start, then every commit after it
    table_poll_seconds: float = 5.0
    seed_rows: int = 50_000

    def __post_init__(self) -> None:
        self.store = Store(db_path(self.settings))
        self.engine = AlertEngine(self.store, self.config)
        self.workers = DeliveryWorkers(self.store, self.config)
        self.codec = EventCodec()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.path = pubsub_v1.SubscriberClient.subscription_path(self.settings.gcp_project,
                                                                 subscription_name(self.settings))
        self.subscribed = threading.Event()
        self.evaluated = 0
        self.listeners: list[Callable[[], None]] = []  # told after each write (the BFF's alert stream)

    def start(self, pull: bool = True) -> AlertService:
        self.workers.start()
        targets = ([self._tick_loop] + ([self._pull_loop] if pull else [])
                   + ([self._table_loop] if self.reader is not None else []))
        for target in targets:
            thread = threading.Thread(target=target, name=f"alerts-{target.__name__.strip('_')}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def notify(self) -> None:
        """Something was written (an evaluation, a tick, acknowledge/resolve by hand): deliver now, and tell
        the listeners."""
        self.workers.notify()
        for listener in self.listeners:
            listener()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.workers.stop()
        self.store.close()

    # --- the tick -------------------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.engine.tick()
                self.notify()
            except Exception:
                log.exception("alerts: tick failed")
            self._stop.wait(self.config.tick_seconds)

    # --- the table ------------------------------------------------------------------------------------
    def _table_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.follow_table_once():
                    self.notify()
            except Exception as exc:  # no table yet, or not readable now
                log.debug("alerts: table not read: %s", exc)
            self._stop.wait(self.table_poll_seconds)
        self.store.close()

    def follow_table_once(self) -> int:
        """Read the table from the stored cursor (``meta.table_cursor``, a commit instant, moved in the same
        transaction as the evaluation). With no cursor yet (first start), learn from the table's newest
        ``seed_rows`` states without opening anything; after that, evaluate each new commit's rows: states
        already evaluated from the bus (same eventId, lastUpdatedAt, status) are no-ops, states the bus path
        never saw (published before the subscription existed, or expired from it) are evaluated here."""
        latest = self.reader.latest_commit()
        cursor = self.store.meta("table_cursor")
        if latest is None or (cursor is not None and latest <= cursor):
            return 0
        if cursor is None:
            rows: list[dict] = []
            while len(rows) < self.seed_rows:
                limit = min(MAX_PAGE, self.seed_rows - len(rows))
                page = self.reader.events(EventQuery(limit=limit, offset=len(rows)))
                rows.extend(page.events)
                if len(page.events) < limit:
                    break
            self.engine.observe(rows, learn_only=True, meta={"table_cursor": latest})
            log.info("alerts: learned from %d rows of the table up to commit %s", len(rows), latest)
            return 0
        new = 0
        commits = sorted(c.instant for c in self.reader.commits() if cursor < c.instant <= latest)
        for commit in commits:
            new += self.engine.observe(self.reader.changes_in(commit), meta={"table_cursor": commit})
        return new

    # --- the input ------------------------------------------------------------------------------------
    def _pull_loop(self) -> None:
        client = subscriber(self.settings)
        delay = 1.0
        try:
            while not self._stop.is_set() and not self.subscribed.is_set():
                try:
                    client.create_subscription(request={
                        "name": self.path, "topic": topic_path(self.settings), "ack_deadline_seconds": 10,
                        "labels": {"obs-platform": "alerts"}})
                    log.info("alerts: created subscription %s", self.path)
                    self.subscribed.set()
                except gexc.AlreadyExists:
                    self.subscribed.set()
                except Exception as exc:  # the topic does not exist yet, or the bus is not up
                    log.debug("alerts: cannot subscribe yet: %s", exc)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 30.0)
            while not self._stop.is_set():
                try:
                    if not self.pull_once(client):
                        self._stop.wait(0.2)
                except Exception:
                    log.exception("alerts: pull failed; retrying")
                    self._stop.wait(2.0)
        finally:
            client.close()
            self.store.close()

    def pull_once(self, client) -> int:
        try:
            response = client.pull(request={"subscription": self.path, "max_messages": self.pull_max}, timeout=3)
        except (gexc.DeadlineExceeded, gexc.RetryError):
            return 0
        if not response.received_messages:
            return 0
        records, newest = [], None
        for received in response.received_messages:
            try:
                records.append(self.codec.decode(received.message.data))
            except DecodeError:
                continue  # a dead letter for the table's ingestion; nothing to evaluate
            published = received.message.publish_time
            if isinstance(published, datetime):
                newest = max(newest or published.timestamp(), published.timestamp())
        self.engine.observe(records)  # one transaction, committed before the ack
        self.notify()  # its outbox rows and alert changes are committed: deliver and show them now
        if newest is not None:
            lag = time.time() - newest
            with self.store.tx() as db:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('lag_seconds', ?)", (repr(round(lag, 3)),))
        client.acknowledge(request={"subscription": self.path,
                                    "ack_ids": [m.ack_id for m in response.received_messages]})
        self.evaluated += len(records)
        return len(response.received_messages)
