"""The alerter's state in one SQLite file (``<home>/alerts/alerts.db``, WAL): alerts, their transitions, the
outbox of deliveries and its log, the events already evaluated, and what the learned rules remember.

Every change an evaluation makes (alert opened/grown/resolved, the deliveries it owes, the evaluated event's
key) is written in one transaction, so a process killed at any point leaves either all of it or none of it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    stage TEXT,
    correlation_id TEXT,
    event_id TEXT,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,                 -- open | acknowledged | resolved
    summary TEXT NOT NULL,
    signature TEXT,
    details TEXT NOT NULL DEFAULT '{}',  -- JSON
    count INTEGER NOT NULL DEFAULT 1,
    first_seen REAL NOT NULL,             -- epoch seconds (event time for event rules, clock for timed ones)
    last_seen REAL NOT NULL,
    opened_at REAL NOT NULL,              -- clock
    acknowledged_by TEXT,
    acknowledged_at REAL,
    resolved_at REAL,
    resolved_by TEXT,                     -- 'auto' or who
    resolution TEXT
);
CREATE INDEX IF NOT EXISTS alerts_fingerprint ON alerts (fingerprint, status);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts (status, id);
CREATE TABLE IF NOT EXISTS alert_members (
    alert_id INTEGER NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (alert_id, event_id)
);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    kind TEXT NOT NULL,                   -- open | acknowledge | resolve
    at REAL NOT NULL,
    by TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    transition_id INTEGER NOT NULL,
    alert_id INTEGER NOT NULL,
    receiver TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    payload TEXT NOT NULL,                -- the exact body, built once: a resend is byte-identical
    state TEXT NOT NULL DEFAULT 'pending',-- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    delivered_at REAL,
    UNIQUE (transition_id, receiver)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (receiver, state, next_at);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    delivery_id INTEGER NOT NULL, at REAL NOT NULL, ok INTEGER NOT NULL, status_code INTEGER, error TEXT,
    seconds REAL
);
CREATE TABLE IF NOT EXISTS seen (
    event_id TEXT NOT NULL, last_updated_ms INTEGER NOT NULL, status TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (event_id, last_updated_ms, status)
);
CREATE TABLE IF NOT EXISTS runs (             -- each stage run's newest state
    event_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, stage TEXT NOT NULL, correlation_id TEXT NOT NULL,
    status TEXT NOT NULL, started REAL NOT NULL, updated REAL NOT NULL,
    processed INTEGER, source INTEGER
);
CREATE INDEX IF NOT EXISTS runs_open ON runs (status);
CREATE INDEX IF NOT EXISTS runs_batch ON runs (correlation_id);
CREATE TABLE IF NOT EXISTS retries (
    pipeline TEXT NOT NULL, correlation_id TEXT NOT NULL, stage TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (pipeline, correlation_id, stage)
);
CREATE TABLE IF NOT EXISTS durations (pipeline TEXT, stage TEXT, seconds REAL, at REAL);
CREATE INDEX IF NOT EXISTS durations_stage ON durations (pipeline, stage, at);
CREATE TABLE IF NOT EXISTS batches (
    pipeline TEXT NOT NULL, correlation_id TEXT NOT NULL, started REAL NOT NULL,
    PRIMARY KEY (pipeline, correlation_id)
);
CREATE INDEX IF NOT EXISTS batches_started ON batches (pipeline, started);
CREATE TABLE IF NOT EXISTS volumes (pipeline TEXT, stage TEXT, event_id TEXT PRIMARY KEY, count INTEGER, at REAL);
CREATE INDEX IF NOT EXISTS volumes_stage ON volumes (pipeline, stage, at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class Store:
    """One SQLite file shared by the evaluator, the delivery workers and the BFF's alert routes (each thread its
    own connection; writers serialise on ``BEGIN IMMEDIATE``)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.connect().executescript(SCHEMA)  # idempotent; executescript commits by itself

    def connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def tx(self):
        return _Tx(self.connect())

    def meta(self, key: str) -> str | None:
        row = self.connect().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        for attempt in range(50):
            try:
                self.db.execute("BEGIN IMMEDIATE")
                return self.db
            except sqlite3.OperationalError as exc:  # locked beyond busy_timeout
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
