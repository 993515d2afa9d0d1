"""The rules, evaluated over decoded PipelineEvents (``observe``) and the clock (``tick``).

Each event and each tick is one SQLite transaction (``Store``): the event's key (eventId, lastUpdatedAt,
status) is recorded as evaluated, the alerts it opens, grows or resolves are written, and the deliveries each
transition owes go into the outbox — all or nothing. An event seen again (Pub/Sub redelivers after a crash
between the commit and the ack) finds its key and changes nothing, so a transition happens once.

Rules (knobs in ``config.DEFAULTS``):

1. ``failed`` — a stage run FAILED. Fingerprint: pipeline + stage + error signature (the message with
   UUIDs, hex and digit runs replaced); further failures with that fingerprint while the alert is not resolved
   and within ``window_seconds`` of its last one grow its ``count`` (distinct stage runs) instead of paging
   again. Resolves when that pipeline+stage later COMPLETES.
2. ``retry_loop`` — RETRYING messages of one stage in one batch (distinct states, whether the stage keeps its
   eventId or takes a new one per attempt) above ``max_retries``. Resolves when the stage ends in that batch.
3. ``stuck`` — a stage run STARTED/RUNNING/RETRYING since its eventTimestamp for longer than its limit:
   ``limit_seconds`` if set, else the ``percentile`` of that stage's last ``history`` durations × ``factor`` once
   ``min_samples`` exist (at least ``min_seconds``), else ``fallback_seconds``. Resolves when the run ends.
4. ``rows`` — consecutive stages of a batch (ordered by eventTimestamp, as the journey does): the next stage's
   sourceRecordCount (or, once it has completed, its processedRecordCount) differs from the previous
   stage's final processedRecordCount by more than ``tolerance`` × that count. Resolves when corrected, or
   when a later batch hands the same stages over within the tolerance.
5. ``silence`` — no new batch (a correlationId seen for the first time) for ``limit_seconds`` if set, else the
   median interval of the pipeline's last ``history`` batch starts × ``factor`` once ``min_samples`` intervals
   exist; not for a pipeline silent longer than ``retired_after_seconds`` (7 days). Resolves when a batch
   starts.
6. ``volume`` — a COMPLETED stage's processedRecordCount with robust z = 0.6745·(x − median)/MAD over the
   stage's last ``history`` counts above ``threshold`` (MAD floored at ``min_relative_mad`` × median, and 1).
   Resolves when the stage's next count is typical again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from obs_platform.alerts import payloads
from obs_platform.alerts.config import AlertConfig
from obs_platform.alerts.store import Store

log = logging.getLogger(__name__)

ACTIVE = ("open", "acknowledged")
TERMINAL = ("COMPLETED", "FAILED")
SEEN_KEEP_SECONDS = 7 * 24 * 3600
HISTORY_KEEP_SECONDS = 30 * 24 * 3600

_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX = re.compile(r"\b(?:0x[0-9a-fA-F]+|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,})\b")
_DIGITS = re.compile(r"\d+")


def signature(message: str | None) -> str:
    """An error message with what varies between repeats (ids, hex, numbers) replaced, spaces collapsed."""
    if not message:
        return "(no message)"
    text = _UUID.sub("<id>", message)
    text = _HEX.sub("<hex>", text)
    text = _DIGITS.sub("#", text)
    return " ".join(text.split())[:500]


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return float(value) / 1000.0  # epoch millis


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class AlertEngine:
    def __init__(self, store: Store, config: AlertConfig, clock: Callable[[], float] = time.time):
        self.store = store
        self.config = config
        self.clock = clock
        self._quiet = False

    # --- events ---------------------------------------------------------------------------------------
    def observe(self, records: Iterable[dict[str, Any]], learn_only: bool = False,
                meta: dict[str, str] | None = None) -> int:
        """Evaluate decoded events in one transaction; returns how many were new (not evaluated before).

        ``learn_only``: remember them (evaluated keys, history, runs started within the last day) without
        opening or resolving anything: the table's state when the alerter first starts. ``meta``: positions
        to store in the same transaction (the table cursor)."""
        new = 0
        # Pub/Sub does not keep order: evaluate a pulled batch oldest state first
        ordered = sorted(records, key=lambda r: (_seconds(r["lastUpdatedAt"]), r["status"] in TERMINAL))
        self._quiet = learn_only
        try:
            with self.store.tx() as db:
                for record in ordered:
                    if self._observe(db, record):
                        new += 1
                if not learn_only:
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('observed_at', ?)", (repr(self.clock()),))
                for key, value in (meta or {}).items():
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        finally:
            self._quiet = False
        return new

    def _observe(self, db: sqlite3.Connection, r: dict[str, Any]) -> bool:
        updated = _seconds(r["lastUpdatedAt"])
        key = (r["eventId"], round(updated * 1000), r["status"])
        cur = db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)", (*key, self.clock()))
        if cur.rowcount == 0:
            return False
        pipeline, stage, batch, status = r["pipelineName"], r["stageName"], r["correlationId"], r["status"]
        started = _seconds(r["eventTimestamp"])
        db.execute("INSERT OR REPLACE INTO meta VALUES ('last_event_time', ?)", (repr(updated),))
        if status == "RETRYING":  # each retry counts, even one arriving after a newer state
            self._retrying(db, r, pipeline, stage, batch, updated)
        prev = db.execute("SELECT * FROM runs WHERE event_id = ?", (r["eventId"],)).fetchone()
        if prev is not None and prev["updated"] > updated:
            return True  # an older state arriving late: the newest state wins, as in the table
        if self._quiet and status not in TERMINAL and started < self.clock() - 86400:
            return True  # an old run left unfinished in the table: not a page on the alerter's first start
        db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (r["eventId"], pipeline, stage, batch, status, started, updated,
                    r.get("processedRecordCount"), r.get("sourceRecordCount")))
        # a new batch: silence ends, the cadence learns
        fresh = db.execute("INSERT OR IGNORE INTO batches VALUES (?, ?, ?)", (pipeline, batch, started)).rowcount
        if fresh:
            self._resolve(db, f"silence|{pipeline}", f"batch {batch} started", at=started)
        if status == "FAILED":
            self._failed(db, r, pipeline, stage, updated)
        if status in TERMINAL:
            finished_first = prev is None or prev["status"] not in TERMINAL
            self._resolve(db, f"stuck|{r['eventId']}", f"stage run ended {status}", at=updated)
            self._resolve(db, f"retry_loop|{pipeline}|{batch}|{stage}", f"stage ended {status}", at=updated)
            if status == "COMPLETED":
                for row in db.execute("SELECT fingerprint FROM alerts WHERE rule = 'failed' AND pipeline = ? AND "
                                      "stage IS ? AND status IN ('open', 'acknowledged') AND last_seen <= ?",
                                      (pipeline, stage, updated)).fetchall():
                    self._resolve(db, row[0], f"{stage} completed (batch {batch})", at=updated)
                if finished_first:
                    db.execute("INSERT INTO durations VALUES (?, ?, ?, ?)", (pipeline, stage, updated - started, updated))
                    if r.get("processedRecordCount") is not None:
                        self._volume(db, r, pipeline, stage, updated)
        if r.get("processedRecordCount") is not None or r.get("sourceRecordCount") is not None:
            self._rows(db, pipeline, batch, updated)
        return True

    def _failed(self, db, r, pipeline, stage, at) -> None:
        knobs = self.config.rule("failed", pipeline, stage)
        if not knobs["enabled"]:
            return
        sig = signature(r.get("errorMessage"))
        fp = f"failed|{pipeline}|{stage}|{hashlib.sha1(sig.encode()).hexdigest()[:16]}"
        alert = self._active(db, fp)
        if alert is not None and at - alert["last_seen"] <= knobs["window_seconds"]:
            if db.execute("INSERT OR IGNORE INTO alert_members VALUES (?, ?)", (alert["id"], r["eventId"])).rowcount:
                db.execute("UPDATE alerts SET count = count + 1, last_seen = max(last_seen, ?), event_id = ?, "
                           "correlation_id = ? WHERE id = ?", (at, r["eventId"], r["correlationId"], alert["id"]))
            return
        summary = f"{stage} failed: {(r.get('errorMessage') or '(no message)')[:300]}"
        alert_id = self._open(db, fp, "failed", knobs["severity"], pipeline, stage, r["correlationId"], r["eventId"],
                              summary, sig, {"errorMessage": (r.get("errorMessage") or "")[:2000]}, at)
        if alert_id is not None:
            db.execute("INSERT OR IGNORE INTO alert_members VALUES (?, ?)", (alert_id, r["eventId"]))

    def _retrying(self, db, r, pipeline, stage, batch, at) -> None:
        db.execute("INSERT INTO retries VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
                   (pipeline, batch, stage))
        n = db.execute("SELECT n FROM retries WHERE pipeline = ? AND correlation_id = ? AND stage = ?",
                       (pipeline, batch, stage)).fetchone()[0]
        knobs = self.config.rule("retry_loop", pipeline, stage)
        if not knobs["enabled"] or n <= knobs["max_retries"]:
            return
        fp = f"retry_loop|{pipeline}|{batch}|{stage}"
        alert = self._active(db, fp)
        if alert is not None:
            db.execute("UPDATE alerts SET count = ?, last_seen = ? WHERE id = ?", (n, at, alert["id"]))
            return
        if db.execute("SELECT 1 FROM alerts WHERE fingerprint = ?", (fp,)).fetchone():
            return  # resolved by hand for this batch: not again
        self._open(db, fp, "retry_loop", knobs["severity"], pipeline, stage, batch, r["eventId"],
                   f"{stage} retried {n} times in batch {batch} (more than {knobs['max_retries']})",
                   signature(r.get("errorMessage")), {"retries": n, "maxRetries": knobs["max_retries"],
                                                      "lastError": (r.get("errorMessage") or "")[:2000]},
                   at, count=n)

    def _volume(self, db, r, pipeline, stage, at) -> None:
        knobs = self.config.rule("volume", pipeline, stage)
        x = int(r["processedRecordCount"])
        history = [row[0] for row in db.execute(
            "SELECT count FROM volumes WHERE pipeline = ? AND stage = ? ORDER BY at DESC LIMIT ?",
            (pipeline, stage, int(knobs["history"])))]
        db.execute("INSERT OR IGNORE INTO volumes VALUES (?, ?, ?, ?, ?)", (pipeline, stage, r["eventId"], x, at))
        if not knobs["enabled"] or len(history) < knobs["min_samples"]:
            return
        median = statistics.median(history)
        mad = statistics.median(abs(v - median) for v in history)
        scale = max(mad, knobs["min_relative_mad"] * abs(median), 1.0)
        z = 0.6745 * (x - median) / scale
        fp = f"volume|{pipeline}|{stage}"
        if abs(z) <= knobs["threshold"]:
            self._resolve(db, fp, f"{x} rows is typical again (median {median:g})", at=at)
            return
        alert = self._active(db, fp)
        details = {"processed": x, "median": median, "mad": mad, "robustZ": round(z, 2), "samples": len(history)}
        if alert is not None:
            db.execute("UPDATE alerts SET count = count + 1, last_seen = ?, event_id = ?, correlation_id = ?, "
                       "details = ? WHERE id = ?", (at, r["eventId"], r["correlationId"], json.dumps(details), alert["id"]))
            return
        direction = "above" if z > 0 else "below"
        self._open(db, fp, "volume", knobs["severity"], pipeline, stage, r["correlationId"], r["eventId"],
                   f"{stage} processed {x} rows, far {direction} its typical {median:g} (robust z {z:.1f})",
                   None, details, at)

    def _rows(self, db, pipeline, batch, at) -> None:
        runs = db.execute("SELECT * FROM runs WHERE correlation_id = ? AND pipeline = ? ORDER BY started, updated, "
                          "stage, event_id", (batch, pipeline)).fetchall()
        for prev, nxt in zip(runs, runs[1:], strict=False):
            if prev["status"] != "COMPLETED" or prev["processed"] is None:
                continue
            if nxt["source"] is not None:
                compared, count = "sourceRecordCount", nxt["source"]
            elif nxt["processed"] is not None and nxt["status"] == "COMPLETED":
                compared, count = "processedRecordCount", nxt["processed"]
            else:
                continue
            knobs = self.config.rule("rows", pipeline, nxt["stage"])
            handover = f"{prev['stage']}->{nxt['stage']}"
            fp = f"rows|{pipeline}|{batch}|{handover}"
            delta = count - prev["processed"]
            within = abs(delta) <= knobs["tolerance"] * prev["processed"]
            if within:
                self._resolve(db, fp, f"{handover}: counts agree now ({count})", at=at)
                for row in db.execute("SELECT fingerprint FROM alerts WHERE rule = 'rows' AND pipeline = ? AND "
                                      "status IN ('open', 'acknowledged') AND json_extract(details, '$.handover') = ? "
                                      "AND last_seen < ?", (pipeline, handover, nxt["started"])).fetchall():
                    self._resolve(db, row[0], f"batch {batch} handed {handover} over within tolerance", at=at)
                continue
            if not knobs["enabled"] or self._active(db, fp) is not None:
                continue
            if db.execute("SELECT 1 FROM alerts WHERE fingerprint = ?", (fp,)).fetchone():
                continue  # resolved by hand for this batch
            what = "lost" if delta < 0 else "multiplied"
            self._open(db, fp, "rows", knobs["severity"], pipeline, nxt["stage"], batch, nxt["event_id"],
                       f"{abs(delta)} rows {what} between {prev['stage']} ({prev['processed']} out) and "
                       f"{nxt['stage']} ({count} {compared})", None,
                       {"handover": handover, "fromStage": prev["stage"], "toStage": nxt["stage"],
                        "fromEventId": prev["event_id"], "previousProcessed": prev["processed"],
                        "nextCount": count, "comparedField": compared, "delta": delta,
                        "tolerance": knobs["tolerance"]}, at)

    # --- the clock ------------------------------------------------------------------------------------
    def tick(self) -> None:
        """The time-based rules (stuck, silence), without new events; and some pruning."""
        now = self.clock()
        with self.store.tx() as db:
            for run in db.execute("SELECT * FROM runs WHERE status NOT IN ('COMPLETED', 'FAILED')").fetchall():
                limit, how = self._stuck_limit(db, run["pipeline"], run["stage"])
                if limit is None or now - run["started"] <= limit:
                    continue
                fp = f"stuck|{run['event_id']}"
                if db.execute("SELECT 1 FROM alerts WHERE fingerprint = ?", (fp,)).fetchone():
                    continue
                knobs = self.config.rule("stuck", run["pipeline"], run["stage"])
                self._open(db, fp, "stuck", knobs["severity"], run["pipeline"], run["stage"], run["correlation_id"],
                           run["event_id"], f"{run['stage']} {run['status']} for {now - run['started']:.0f} s "
                           f"(limit {limit:.0f} s, {how})", None,
                           {"status": run["status"], "runningSeconds": round(now - run["started"], 1),
                            "limitSeconds": round(limit, 1), "limitFrom": how}, now)
            for (pipeline,) in db.execute("SELECT DISTINCT pipeline FROM batches").fetchall():
                knobs = self.config.rule("silence", pipeline)
                if not knobs["enabled"]:
                    continue
                starts = [row[0] for row in db.execute(
                    "SELECT started FROM batches WHERE pipeline = ? ORDER BY started DESC LIMIT ?",
                    (pipeline, int(knobs["history"]) + 1))]
                last = starts[0]
                if knobs["limit_seconds"] is not None:
                    limit, how = float(knobs["limit_seconds"]), "configured"
                else:
                    intervals = [a - b for a, b in zip(starts, starts[1:], strict=False)]
                    if len(intervals) < knobs["min_samples"]:
                        continue
                    limit = max(statistics.median(intervals) * knobs["factor"], knobs["min_seconds"])
                    how = f"learned: median interval of {len(intervals)} × {knobs['factor']}"
                fp = f"silence|{pipeline}"
                if now - last > knobs["retired_after_seconds"]:
                    continue  # silent this long: retired, not late (its open alert, if any, stays until a batch)
                if now - last <= limit or self._active(db, fp) is not None:
                    continue
                if db.execute("SELECT 1 FROM alerts WHERE fingerprint = ? AND first_seen >= ?", (fp, last)).fetchone():
                    continue  # this silence was resolved by hand: wait for the next batch
                self._open(db, fp, "silence", knobs["severity"], pipeline, None, None, None,
                           f"{pipeline}: no new batch for {now - last:.0f} s (limit {limit:.0f} s, {how})", None,
                           {"lastBatchStartedAt": payloads.iso(last), "silentSeconds": round(now - last, 1),
                            "limitSeconds": round(limit, 1), "limitFrom": how}, now)
            db.execute("DELETE FROM seen WHERE at < ?", (now - SEEN_KEEP_SECONDS,))
            # what the rules no longer need: ended runs and their batches' retry counts after the same 7 days,
            # learned history after 30 (each rule reads only its newest `history` values)
            db.execute("DELETE FROM retries WHERE correlation_id IN (SELECT correlation_id FROM runs WHERE "
                       "status IN ('COMPLETED', 'FAILED') AND updated < ?)", (now - SEEN_KEEP_SECONDS,))
            db.execute("DELETE FROM runs WHERE status IN ('COMPLETED', 'FAILED') AND updated < ?",
                       (now - SEEN_KEEP_SECONDS,))
            for table in ("durations", "volumes"):
                db.execute(f"DELETE FROM {table} WHERE at < ?", (now - HISTORY_KEEP_SECONDS,))  # noqa: S608
            db.execute("DELETE FROM batches WHERE started < ? AND started < (SELECT max(started) FROM batches b "
                       "WHERE b.pipeline = batches.pipeline)", (now - HISTORY_KEEP_SECONDS,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('ticked_at', ?)", (repr(now),))

    def _stuck_limit(self, db, pipeline: str, stage: str) -> tuple[float | None, str]:
        knobs = self.config.rule("stuck", pipeline, stage)
        if not knobs["enabled"]:
            return None, "off"
        if knobs["limit_seconds"] is not None:
            return float(knobs["limit_seconds"]), "configured"
        durations = [row[0] for row in db.execute(
            "SELECT seconds FROM durations WHERE pipeline = ? AND stage = ? ORDER BY at DESC LIMIT ?",
            (pipeline, stage, int(knobs["history"])))]
        if len(durations) >= knobs["min_samples"]:
            p = _percentile(durations, knobs["percentile"])
            return (max(p * knobs["factor"], knobs["min_seconds"]),
                    f"learned: p{knobs['percentile']} of {len(durations)} runs × {knobs['factor']}")
        return float(knobs["fallback_seconds"]), "fallback"

    # --- transitions ----------------------------------------------------------------------------------
    def _active(self, db, fingerprint: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM alerts WHERE fingerprint = ? AND status IN ('open', 'acknowledged') "
                          "ORDER BY id DESC LIMIT 1", (fingerprint,)).fetchone()

    def _open(self, db, fingerprint, rule, severity, pipeline, stage, batch, event_id, summary, sig, details, at,
              count: int = 1) -> int | None:
        if self._quiet:
            return None
        now = self.clock()
        alert_id = db.execute(
            "INSERT INTO alerts (fingerprint, rule, pipeline, stage, correlation_id, event_id, severity, status, "
            "summary, signature, details, count, first_seen, last_seen, opened_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)",
            (fingerprint, rule, pipeline, stage, batch, event_id, severity, summary, sig, json.dumps(details), count,
             at, at, now)).lastrowid
        log.info("alert %d opened: %s", alert_id, summary)
        self._transition(db, alert_id, "open", None, now)
        return alert_id

    def _resolve(self, db, fingerprint: str, why: str, at: float, by: str = "auto") -> None:
        if self._quiet:
            return
        for alert in db.execute("SELECT id FROM alerts WHERE fingerprint = ? AND status IN ('open', 'acknowledged')",
                                (fingerprint,)).fetchall():
            resolve_alert(db, alert["id"], by, why, self.clock(), self.config)

    def _transition(self, db, alert_id: int, kind: str, by: str | None, now: float) -> None:
        transition(db, alert_id, kind, by, now, self.config)


def transition(db: sqlite3.Connection, alert_id: int, kind: str, by: str | None, now: float,
               config: AlertConfig) -> None:
    """Record a transition and put what each routed receiver is owed into the outbox (same transaction).
    Open and resolve go to every receiver routed to the alert; acknowledge only to PagerDuty ones (so the
    incident there follows)."""
    tid = db.execute("INSERT INTO transitions (alert_id, kind, at, by) VALUES (?, ?, ?, ?)",
                     (alert_id, kind, now, by)).lastrowid
    alert = dict(db.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone())
    for receiver in config.receivers_for(alert["pipeline"], alert["severity"]):
        if kind == "acknowledge" and receiver.kind != "pagerduty":
            continue
        key, body = payloads.build(receiver, alert, kind, tid, by)
        db.execute("INSERT OR IGNORE INTO deliveries (transition_id, alert_id, receiver, dedup_key, payload, next_at, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (tid, alert_id, receiver.name, key, body, now, now))


def resolve_alert(db, alert_id: int, by: str, why: str, now: float, config: AlertConfig) -> bool:
    changed = db.execute("UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ? "
                         "WHERE id = ? AND status IN ('open', 'acknowledged')", (now, by, why, alert_id)).rowcount
    if changed:
        log.info("alert %d resolved (%s): %s", alert_id, by, why)
        transition(db, alert_id, "resolve", by, now, config)
    return bool(changed)


def acknowledge_alert(db, alert_id: int, by: str, now: float, config: AlertConfig) -> bool:
    changed = db.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = ?, acknowledged_at = ? "
                         "WHERE id = ? AND status = 'open'", (by, now, alert_id)).rowcount
    if changed:
        transition(db, alert_id, "acknowledge", by, now, config)
    return bool(changed)
