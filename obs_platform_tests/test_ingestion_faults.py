"""Ingestion that loses nothing, on real parts: kill -9 mid-batch, hostile messages, replay, schema evolution."""

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hudi import HudiTable

from obs_platform.bus.client import ensure_topic_and_subscription, publisher, topic_path
from obs_platform.events.codec import EventCodec, SchemaRegistry
from obs_platform.ingestion.dead_letters import DeadLetterStore
from obs_platform.query.base import EventQuery
from obs_platform.query.embedded import EmbeddedReader
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT
from obs_platform_tests.conftest import drain_into_table

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def table_rows(settings) -> list[dict]:
    """Every row of the table as stored (no dedup), via hudi-rs."""
    batches = HudiTable(settings.table_uri).read()
    return pa.Table.from_batches(batches).to_pylist() if batches else []


class Traffic(threading.Thread):
    """Publishes stage runs whose states move STARTED -> RUNNING -> COMPLETED|FAILED, remembering the last
    state sent for each eventId: that is what the table must hold in the end."""

    def __init__(self, settings, rate: float, runs: int):
        super().__init__(daemon=True)
        self.emitter = EventEmitter.from_settings(settings)
        self.rate, self.runs = rate, runs
        self.expected: dict[str, tuple[str, datetime]] = {}
        self.sent = 0

    def run(self):
        rng = random.Random(3)
        open_runs: dict[str, int] = {}
        started = time.monotonic()
        next_id = 0
        while next_id < self.runs or open_runs:
            if next_id < self.runs and (len(open_runs) < 20 or not open_runs):
                event_id, step = f"ev-{next_id:05d}", 0
                next_id += 1
            else:
                event_id = rng.choice(list(open_runs))
                step = open_runs[event_id]
            status = ["STARTED", "RUNNING", rng.choice(["COMPLETED", "FAILED"])][step]
            updated = T0 + timedelta(milliseconds=self.sent)
            self.emitter.emit({"eventId": event_id, "correlationId": "kill-test", "pipelineName": "orders",
                               "stageName": "load", "status": status, "eventTimestamp": T0,
                               "lastUpdatedAt": updated, "processedRecordCount": step})
            self.expected[event_id] = (status, updated)
            self.sent += 1
            if step == 2:
                open_runs.pop(event_id, None)
            else:
                open_runs[event_id] = step + 1
            ahead = self.sent / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        self.emitter.flush()


def start_ingestion_process(settings, log_path):
    env = {**os.environ, "OBS_HOME": str(settings.home), "OBS_TOPIC": settings.topic,
           "OBS_SUBSCRIPTION": settings.subscription, "OBS_ACK_DEADLINE_SECONDS": str(settings.ack_deadline_seconds),
           "OBS_TRIGGER_SECONDS": "1", "OBS_PUBSUB_PORT": str(settings.pubsub_port), "OBS_SPARK_MASTER": "local[2]",
           "OBS_SPARK_DRIVER_MEMORY": "1g"}
    return subprocess.Popen([sys.executable, "-m", "obs_platform.ingestion"], cwd=REPO_ROOT, env=env,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def test_kill_9_mid_batch_five_times_loses_nothing_and_doubles_nothing(settings, tmp_path):
    """Traffic flows while the streaming process is killed with SIGKILL in the middle of a Hudi write, five
    times, and restarted each time. In the end every stage run is in the table exactly once, in the last
    state its producer sent."""
    ensure_topic_and_subscription(settings)
    traffic = Traffic(settings, rate=60, runs=400)  # 1,200 events over ~20 s... and beyond, while we kill
    traffic.start()
    staging = settings.home / "staging"
    log_path = tmp_path / "ingestion.log"
    kills = 0
    try:
        for _ in range(5):
            proc = start_ingestion_process(settings, log_path)
            try:
                wait_for(lambda: staging.exists() and any(staging.iterdir()), 90, "a micro-batch in flight")
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
                proc.wait(30)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            shutil.rmtree(staging, ignore_errors=True)  # what a killed batch leaves; a restart ignores it too
        traffic.join(300)
        assert not traffic.is_alive()
        final = start_ingestion_process(settings, log_path)
        try:
            def converged():
                page = EmbeddedReader(settings.table_uri).events(EventQuery(limit=10_000))
                got = {e["eventId"]: (e["status"], e["lastUpdatedAt"]) for e in page.events}
                return got == traffic.expected

            wait_for(converged, 240, "the table to hold every event's last state", interval=1.0)
        finally:
            final.send_signal(signal.SIGTERM)
            final.wait(120)
    except Exception:
        print(log_path.read_text()[-5000:])
        raise
    assert kills == 5
    rows = table_rows(settings)
    keys = [r["eventId"] for r in rows]
    assert len(keys) == len(set(keys)) == 400, "a record key is stored twice"
    assert final.returncode == 0, "graceful stop on SIGTERM"


def test_1000_hostile_messages_go_to_dead_letters_and_good_ones_land(spark, settings):
    ensure_topic_and_subscription(settings)
    rng = random.Random(11)
    good_codec = EventCodec()
    v1 = SchemaRegistry().version(1)
    hostile = []
    for i in range(1000):
        kind = i % 5
        if kind == 0:
            hostile.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60))))  # noise
        elif kind == 1:
            hostile.append(b"\xc3\x01" + rng.randbytes(8) + b"\x02ab")  # unknown fingerprint
        elif kind == 2:  # valid header, body truncated (missing required fields)
            hostile.append(good_codec.encode(_event(f"h{i}"))[:14])
        elif kind == 3:  # enum index out of range: an unknown status
            hostile.append(b"\xc3\x01" + v1.fingerprint + b"\x04h3\x02c\x02p\x02s\x14")
        else:  # negative count, schema-valid
            hostile.append(_raw(v1, _event(f"neg{i}", processedRecordCount=-5)))
    pub = publisher(settings)
    topic = topic_path(settings)
    emitter = EventEmitter.from_settings(settings)
    futures = []
    for i, data in enumerate(hostile):
        futures.append(pub.publish(topic, data, n=str(i)))
        if i % 10 == 0:
            emitter.emit(_event(f"good-{i}"))
    for f in futures:
        f.result(30)
    emitter.flush()
    reports = drain_into_table(spark, settings, max_batches=50)
    rows = {e["eventId"] for e in EmbeddedReader(settings.table_uri).events(EventQuery(limit=10_000)).events}
    assert rows == {f"good-{i}" for i in range(0, 1000, 10)}
    store = DeadLetterStore(settings.dead_letter_path)
    assert store.pending().num_rows == 1000
    assert sum(r.dead_letters for r in reports) == 1000
    reasons = store.count_by_reason()
    assert set(reasons) <= {"bad_header", "unknown_schema", "corrupt_body", "invalid_value"}
    assert reasons["invalid_value"] == 200 and reasons["unknown_schema"] >= 200
    assert all(store.pending().column("detail").to_pylist())


def test_dead_letter_replay_lands_once_the_cause_is_fixed(spark, settings, tmp_path):
    """A producer on a schema v3 the platform doesn't know yet: its event is a dead letter (unknown_schema).
    After v3 is registered, a replay republishes it and it lands in the table."""
    v3_dir = tmp_path / "schemas-v3"
    shutil.copytree(REPO_ROOT / "schemas", v3_dir)
    v2_text = (v3_dir / "PipelineEvent.v2.avsc").read_text()
    (v3_dir / "PipelineEvent.v3.avsc").write_text(v2_text.replace(
        '"doc": "Free-form labels (e.g. source system, owner)."}',
        '"doc": "Free-form labels (e.g. source system, owner)."},\n    {"name": "owner", "type": ["null", "string"], "default": null}'))
    ensure_topic_and_subscription(settings)
    v3 = EventEmitter(lambda d, a: publisher(settings).publish(topic_path(settings), d, **a),
                      EventCodec(SchemaRegistry(v3_dir), writer_version=3))
    v3.emit(_event("from-v3", owner="team-x"))
    v3.flush()
    drain_into_table(spark, settings)
    store = DeadLetterStore(settings.dead_letter_path)
    assert store.count_by_reason() == {"unknown_schema": 1}

    fixed = settings.model_copy(update={"schema_dir": v3_dir})  # the fix: v3 is now registered
    pub = publisher(settings)
    assert store.replay(lambda d, a: pub.publish(topic_path(settings), d, **a), reason="unknown_schema") == 1
    drain_into_table(spark, fixed)
    rows = {e["eventId"]: e for e in EmbeddedReader(settings.table_uri).events(EventQuery()).events}
    assert rows["from-v3"]["schemaVersion"] == 3
    assert store.pending().num_rows == 0
    assert "owner" in HudiTable(settings.table_uri).get_schema().names  # the table grew the v3 column


def test_table_evolves_from_v1_to_v2_without_rewrite_and_old_rows_read_null(spark, settings, tmp_path):
    v1_only = tmp_path / "schemas-v1"
    v1_only.mkdir()
    shutil.copy(REPO_ROOT / "schemas" / "PipelineEvent.avsc", v1_only)
    ensure_topic_and_subscription(settings)
    old = settings.model_copy(update={"schema_dir": v1_only})
    EventEmitter.from_settings(settings, schema_version=1).emit(_event("old-row"))
    time.sleep(0.5)
    drain_into_table(spark, old)
    assert "dataQualityScore" not in HudiTable(settings.table_uri).get_schema().names
    files_before = {p.name for p in settings.table_path.rglob("*.parquet") if ".hoodie" not in p.parts}

    v2 = EventEmitter.from_settings(settings, schema_version=2)
    v2.emit(_event("new-row", dataQualityScore=0.9, attributes={"owner": "a"}, eventTimestamp=T0 + timedelta(days=1)))
    v2.flush()
    drain_into_table(spark, settings)
    names = HudiTable(settings.table_uri).get_schema().names
    assert {"dataQualityScore", "attributes"} <= set(names)
    rows = {e["eventId"]: e for e in EmbeddedReader(settings.table_uri).events(EventQuery()).events}
    assert rows["old-row"]["dataQualityScore"] is None and rows["old-row"]["attributes"] == {}
    assert rows["new-row"]["dataQualityScore"] == 0.9 and rows["new-row"]["attributes"] == {"owner": "a"}
    # the v1 row's file (another partition) was not rewritten
    files_after = {p.name for p in settings.table_path.rglob("*.parquet") if ".hoodie" not in p.parts}
    assert files_before <= files_after


def _event(event_id, **extra):
    return {"eventId": event_id, "correlationId": "c", "pipelineName": "p", "stageName": "s",
            "status": "COMPLETED", "eventTimestamp": T0, "lastUpdatedAt": T0, **extra}


def _raw(schema, record):
    import io

    import fastavro

    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + schema.fingerprint)
    fastavro.schemaless_writer(buf, schema.parsed, {k: v for k, v in record.items()})
    return buf.getvalue()
