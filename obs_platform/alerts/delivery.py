"""Delivering the outbox: one worker thread per receiver, so a dead or slow receiver holds up nobody else
(and never the evaluation, which only writes rows into the outbox).

A worker takes its receiver's due deliveries oldest first (one alert's transitions stay in order: a later one
waits while an earlier one is undelivered), leases the row (``lease_until``) in a transaction, POSTs the stored
body with a per-request timeout, and records the attempt in ``delivery_attempts``. 2xx: delivered. Connection
errors, timeouts, 408/429 and 5xx: retried with exponential backoff (``backoff_seconds`` × 2^(attempt − 1), at
most ``max_backoff_seconds``) up to ``max_attempts``, then ``failed``. Another 4xx: ``failed`` at once (the body
will not get better).

A process killed after the receiver took a body but before the row says delivered sends it again once the
lease ends: at-least-once, with the same body and dedup key, so a receiver that remembers keys sees it once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import httpx

from obs_platform.alerts.config import AlertConfig, Receiver
from obs_platform.alerts.store import Store

log = logging.getLogger(__name__)

RETRYABLE = {408, 425, 429}


@dataclass
class DeliveryWorkers:
    store: Store
    config: AlertConfig
    poll_seconds: float = 0.5
    wake: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wakes: dict[str, threading.Event] = {}

    def start(self) -> DeliveryWorkers:
        for receiver in self.config.receivers:
            wake = threading.Event()
            self._wakes[receiver.name] = wake
            thread = threading.Thread(target=self._run, args=(receiver, wake), name=f"alerts-deliver-{receiver.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def notify(self) -> None:
        """New rows in the outbox: look now rather than at the next poll."""
        for wake in self._wakes.values():
            wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.notify()
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, receiver: Receiver, wake: threading.Event) -> None:
        client = httpx.Client(timeout=httpx.Timeout(receiver.timeout_seconds), follow_redirects=False)
        try:
            while not self._stop.is_set():
                try:
                    sent = deliver_due(self.store, receiver, client)
                except Exception:
                    log.exception("alerts: delivery to %s failed unexpectedly", receiver.name)
                    sent = 0
                if not sent:
                    wake.wait(self.poll_seconds)
                    wake.clear()
        finally:
            client.close()
            self.store.close()


def _claim(store: Store, receiver: Receiver) -> dict | None:
    now = time.time()
    with store.tx() as db:
        rows = db.execute("SELECT * FROM deliveries WHERE receiver = ? AND state = 'pending' ORDER BY id",
                          (receiver.name,)).fetchall()
        blocked: set[int] = set()
        for row in rows:
            if row["alert_id"] in blocked:
                continue
            blocked.add(row["alert_id"])  # an alert's later transitions wait for this one
            if row["next_at"] <= now and row["lease_until"] <= now:
                lease = now + receiver.timeout_seconds + 2  # a killed sender's row is free again soon
                db.execute("UPDATE deliveries SET lease_until = ? WHERE id = ?", (lease, row["id"]))
                return dict(row)
    return None


def deliver_due(store: Store, receiver: Receiver, client: httpx.Client) -> int:
    """Send this receiver's due deliveries now; returns how many were attempted."""
    attempted = 0
    while (row := _claim(store, receiver)) is not None:
        attempted += 1
        started = time.time()
        status, error = None, None
        try:
            response = client.post(receiver.url, content=row["payload"].encode(), headers={
                "Content-Type": "application/json", "Idempotency-Key": row["dedup_key"],
                "X-Obs-Dedup-Key": row["dedup_key"], **dict(receiver.headers)})
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = time.time()
        attempts = row["attempts"] + 1
        with store.tx() as db:
            db.execute("INSERT INTO delivery_attempts VALUES (?, ?, ?, ?, ?, ?)",
                       (row["id"], now, int(error is None), status, error, round(now - started, 4)))
            if error is None:
                db.execute("UPDATE deliveries SET state = 'delivered', delivered_at = ?, attempts = ?, lease_until = 0, "
                           "last_error = NULL WHERE id = ?", (now, attempts, row["id"]))
                continue
            permanent = status is not None and 400 <= status < 500 and status not in RETRYABLE
            if permanent or attempts >= receiver.max_attempts:
                db.execute("UPDATE deliveries SET state = 'failed', attempts = ?, last_error = ?, lease_until = 0 "
                           "WHERE id = ?", (attempts, error, row["id"]))
                log.error("alerts: giving up on delivery %d to %s after %d attempts: %s", row["id"], receiver.name,
                          attempts, error)
            else:
                delay = min(receiver.backoff_seconds * 2 ** (attempts - 1), receiver.max_backoff_seconds)
                db.execute("UPDATE deliveries SET attempts = ?, last_error = ?, next_at = ?, lease_until = 0 "
                           "WHERE id = ?", (attempts, error, now + delay, row["id"]))
                log.warning("alerts: delivery %d to %s failed (%s); retry in %.1f s", row["id"], receiver.name, error,
                            delay)
        if error is not None:
            return attempted  # back off: wait for the next due time
    return attempted


def configured_receivers(config: AlertConfig) -> list[str]:
    return [r.name for r in config.receivers]
