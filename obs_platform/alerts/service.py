"""The alerter as it runs: the evaluator fed from a durable Pub/Sub subscription, a tick for the time-based
rules, and the delivery workers, around one ``Store``.

Where it runs: inside the BFF process (``OBS_BFF_ALERTS_ENGINE``, on by default; ``bff/main.py``), or alone
with ``python -m obs_platform.alerts``. Either way the state is ``<home>/alerts/alerts.db``, which the BFF's
``/api/alerts`` routes read and change.

Its input is the events topic through the subscription ``<topic>-alerts`` — one durable subscription (not the
live path's per-process one, which is acked on arrival and gone after a restart): a message is acked only
after the transaction that evaluated it committed, so a crash re-delivers it and the evaluated-event keys make
the re-delivery a no-op. While the alerter is down, Pub/Sub keeps the messages (7 days by default).
Several processes may pull from it on the same ``alerts.db`` (SQLite serialises their transactions).
"""

from __future__ import annotations

import logging
import threading
import time
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

    def start(self, pull: bool = True) -> AlertService:
        self.workers.start()
        targets = [self._tick_loop] + ([self._pull_loop] if pull else [])
        for target in targets:
            thread = threading.Thread(target=target, name=f"alerts-{target.__name__.strip('_')}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def notify(self) -> None:
        """A transition was written outside the evaluator (acknowledge/resolve by hand): deliver now."""
        self.workers.notify()

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
                self.workers.notify()
            except Exception:
                log.exception("alerts: tick failed")
            self._stop.wait(self.config.tick_seconds)

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
        if newest is not None:
            lag = time.time() - newest
            with self.store.tx() as db:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('lag_seconds', ?)", (repr(round(lag, 3)),))
        client.acknowledge(request={"subscription": self.path,
                                    "ack_ids": [m.ack_id for m in response.received_messages]})
        self.evaluated += len(records)
        self.workers.notify()
        return len(response.received_messages)
