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
from obs_platform.lakehouse.dead_letters import DeadLetterStore
from obs_platform.lakehouse.table import TableSpec
from obs_platform.maintenance.services import TableServices
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


def states(settings) -> dict[str, tuple[str, datetime]]:
    """eventId -> (status, lastUpdatedAt) of every stored row (hudi-rs snapshot: log files merged)."""
    def utc(ts: datetime) -> datetime:  # hudi-rs may hand Spark's timestamps back without a zone (they are UTC)
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)

    return {r["eventId"]: (r["status"], utc(r["lastUpdatedAt"])) for r in table_rows(settings)}


class Traffic(threading.Thread):
    """Publishes stage runs whose states move STARTED -> RUNNING -> COMPLETED|FAILED, remembering the last
    state sent for each eventId: that is what the table must hold in the end."""

    def __init__(self, settings, rate: float, runs: int | None = None):
        """``runs`` stage runs, or (None) new ones until ``finish()``: a test whose kills take longer on a
        loaded machine must not outlive its traffic."""
        super().__init__(daemon=True)
        self.emitter = EventEmitter.from_settings(settings)
        self.rate, self.runs = rate, runs
        self.expected: dict[str, tuple[str, datetime]] = {}
        self.sent = 0
        self._finishing = threading.Event()

    def finish(self) -> None:
        """Start no new stage run; the open ones still move to their final state."""
        self._finishing.set()

    def _more(self, next_id: int) -> bool:
        return not self._finishing.is_set() and (self.runs is None or next_id < self.runs)

    def run(self):
        rng = random.Random(3)
        open_runs: dict[str, int] = {}
        started = time.monotonic()
        next_id = 0
        while self._more(next_id) or open_runs:
            if self._more(next_id) and (len(open_runs) < 20 or not open_runs):
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


def start_ingestion_process(settings, log_path, **env_extra):
    env = {**os.environ, "OBS_HOME": str(settings.home), "OBS_TOPIC": settings.topic, "OBS_TABLE": settings.table,
           "OBS_SUBSCRIPTION": settings.subscription, "OBS_ACK_DEADLINE_SECONDS": str(settings.ack_deadline_seconds),
           "OBS_TRIGGER_SECONDS": "1", "OBS_COMMIT_MAX_DELAY_SECONDS": "1",
           "OBS_PUBSUB_PORT": str(settings.pubsub_port), "OBS_SPARK_MASTER": "local[2]",
           "OBS_SPARK_DRIVER_MEMORY": "1g", **env_extra}
    return subprocess.Popen([sys.executable, "-m", "obs_platform.ingestion"], cwd=REPO_ROOT, env=env,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def write_instants(settings) -> tuple[set[str], set[str]]:
    """(completed, inflight) data-commit instants on the timeline right now."""
    folder = settings.table_path / ".hoodie" / "timeline"
    completed, inflight = set(), set()
    for name in os.listdir(folder) if folder.exists() else []:
        if name.endswith((".deltacommit", ".commit")) and "_" in name:
            completed.add(name.split("_")[0])
        elif name.endswith((".deltacommit.inflight", ".commit.inflight")):
            inflight.add(name.split(".")[0])
    return completed, inflight - completed


def group_alive(pgid: int) -> list[int]:
    """Processes still in a process group (the driver and Spark's JVM share the ingestion's)."""
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        alive.append(int(entry))
            except (OSError, ValueError):
                continue
    return alive


KILLS = ["inflight", "before-ack"] * 5


@pytest.mark.timeout(1500)
def test_kill_9_of_the_whole_ingestion_mid_commit_and_before_ack_loses_nothing(spark, settings, tmp_path,
                                                                                  sql_endpoint):
    """Ten kill -9s of the ingestion's whole process group (Python driver and Spark JVM) on a table that already
    has history, with producers sending throughout: five while a Hudi commit is inflight on the timeline (seen
    there, and still not completed after the kill), five after the commit completed but before its messages
    were acked (inside the before-ack failpoint, the commit seen completed). In the end: every stage run
    exactly once, in the last state its producer sent; the failed writes rolled back; both backends (hudi-rs
    and the Spark Thrift Server) read the same table."""
    settings = settings.model_copy(update={"table": "kill_events"})  # its own name in the shared metastore
    ensure_topic_and_subscription(settings)
    traffic = Traffic(settings, rate=40)  # ~40 events/s until the last kill, however long the kills take
    traffic.start()
    log_path = tmp_path / "ingestion.log"
    landed: list[tuple[str, str]] = []

    def traffic_flowing() -> bool:
        before = traffic.sent
        time.sleep(0.3)
        return traffic.sent > before

    try:
        history = start_ingestion_process(settings, log_path)  # the table gets history before the first kill
        wait_for(lambda: len(write_instants(settings)[0]) >= 3, 180, "three commits of history", 0.5)
        history.send_signal(signal.SIGTERM)
        assert history.wait(120) == 0
        for kind in KILLS:
            failpoint = {"OBS_FAILPOINTS": "before-ack=4"} if kind == "before-ack" else {}
            mark = log_path.read_text(errors="replace").count("failpoint before-ack")
            before_inflight = write_instants(settings)[1]
            proc = start_ingestion_process(settings, log_path, **failpoint)
            try:
                if kind == "inflight":  # a commit of this process, not one an earlier kill left inflight
                    wait_for(lambda k=before_inflight: bool(write_instants(settings)[1] - k), 180,
                             "a commit inflight on the timeline", 0.01)
                else:
                    wait_for(lambda m=mark: log_path.read_text(errors="replace").count("failpoint before-ack") > m,
                             180, "a commit waiting for its ack", 0.05)
                assert traffic_flowing(), "producers must be sending at each kill" if kind == "before-ack" else True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
            wait_for(lambda p=proc.pid: not group_alive(p), 30, "the whole process group to die", 0.2)
            completed, inflight = write_instants(settings)
            if kind == "inflight":
                new = inflight - before_inflight
                assert len(new) == 1, f"the kill was to land while this process's commit was inflight: {new}"
                landed.append((kind, new.pop()))
            else:
                line = [ln for ln in log_path.read_text(errors="replace").splitlines() if "failpoint before-ack" in ln][-1]
                instant = line.split("'commit': '")[1][:17]
                assert instant in completed, f"the commit before the ack must be complete: {line}"
                landed.append((kind, instant))
            assert traffic.is_alive(), "the producers stopped before the kills did"
        traffic.finish()
        traffic.join(600)
        assert not traffic.is_alive()
        final = start_ingestion_process(settings, log_path)
        try:
            def converged():
                return states(settings) == traffic.expected

            wait_for(converged, 300, "the table to hold every event's last state", interval=1.0)
        finally:
            final.send_signal(signal.SIGTERM)
            final.wait(120)
    except Exception:
        print(log_path.read_text(errors="replace")[-5000:])
        raise
    assert [k for k, _ in landed] == KILLS and len({i for _, i in landed}) == len(KILLS)
    assert final.returncode == 0, "graceful stop on SIGTERM"
    rows = table_rows(settings)
    keys = [r["eventId"] for r in rows]
    runs = len(traffic.expected)
    assert runs > 1000, f"only {runs} stage runs were sent"
    assert len(keys) == len(set(keys)) == runs, "a record key is stored twice, or one is missing"
    # the killed commits are failed writes: the cleaner's rollback (lazy policy) removes them
    assert {i for k, i in landed if k == "inflight"} <= write_instants(settings)[1]
    # LAZY failed-writes cleaning rolls a write back once its writer's heartbeat expired (Hudi's default:
    # 60 s interval, 2 misses): a kill just before may need one more clean a little later
    services = TableServices(spark, TableSpec.from_settings(settings))
    deadline = time.monotonic() + 240
    while True:
        services.clean()
        left = write_instants(settings)[1]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(15)
    assert left == set(), "failed writes left inflight after cleaning past their heartbeat's expiry"
    assert states(settings) == traffic.expected
    sql_endpoint.sync(settings)
    conn = sql_endpoint.server.connect()
    try:
        cursor = conn.cursor()
        cursor.execute(f"SELECT count(1), count(DISTINCT eventId), sum(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) "
                       f"FROM {settings.database}.{settings.table}")
        count, distinct, failed = cursor.fetchall()[0]
    finally:
        conn.close()
    assert count == distinct == runs
    assert failed == sum(1 for status, _ in traffic.expected.values() if status == "FAILED")


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


def test_unlucky_but_well_formed_messages_are_dead_letters_and_nothing_stored_changes(spark, settings):
    """A lastUpdatedAt a year ahead (it would win every later merge and freeze the stage run), a message of
    several MB, an attributes map with thousands of entries and an eventId of 100k characters: each is a dead
    letter with its reason, kept whole; the stage run already stored keeps its state, and later states still
    move it."""
    ensure_topic_and_subscription(settings)
    v2 = SchemaRegistry().latest
    emitter = EventEmitter.from_settings(settings)
    emitter.emit(_event("run-1", status="RUNNING", lastUpdatedAt=T0 + timedelta(minutes=1)))
    emitter.flush()
    drain_into_table(spark, settings)
    future = datetime.now(UTC) + timedelta(days=365)
    hostile = {
        "future_timestamp": _raw(v2, _v2(_event("run-1", status="FAILED", lastUpdatedAt=future))),
        "too_large": _raw(v2, _v2(_event("run-2", errorMessage="x" * (3 * 1024 * 1024)))),
        "invalid_value": _raw(v2, _v2(_event("run-3", attributes={f"k{i}": "v" for i in range(5000)}))),
        "invalid_value ": _raw(v2, _v2(_event("r" * 100_000))),
    }
    pub = publisher(settings)
    for data in hostile.values():
        pub.publish(topic_path(settings), data).result(30)
    emitter.emit(_event("run-1", status="COMPLETED", lastUpdatedAt=T0 + timedelta(minutes=2)))
    emitter.flush()
    reports = drain_into_table(spark, settings)
    assert sum(r.dead_letters for r in reports) == 4
    store = DeadLetterStore(settings.dead_letter_path)
    pending = store.pending().to_pylist()
    assert sorted(d["reason"] for d in pending) == sorted(k.strip() for k in hostile)
    assert sorted(len(d["data"]) for d in pending) == sorted(len(v) for v in hostile.values())  # kept whole
    assert all(d["detail"] for d in pending)
    rows = table_rows(settings)
    assert [(r["eventId"], r["status"]) for r in rows] == [("run-1", "COMPLETED")]


def test_a_stage_run_never_moves_to_another_days_partition(spark, settings):
    """The same eventId with an eventTimestamp on another day would be a second row with the same key (the
    table is partitioned by that day and its index is per partition). Such a message is a dead letter
    (event_timestamp_changed), whether the run is stored already or arrives twice in one batch; the stored
    row keeps its state, later states with the stored eventTimestamp still move it, and every run is one
    row."""
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    emitter.emit(_event("run-1", status="RUNNING", lastUpdatedAt=T0 + timedelta(minutes=1)))
    emitter.flush()
    drain_into_table(spark, settings)
    next_day = T0 + timedelta(days=1)
    emitter.emit(_event("run-1", status="FAILED", eventTimestamp=next_day, lastUpdatedAt=T0 + timedelta(minutes=2)))
    # a new run seen with two days in one batch: the earliest state's day is kept
    emitter.emit(_event("run-2", status="STARTED", lastUpdatedAt=T0 + timedelta(minutes=1)))
    emitter.emit(_event("run-2", status="COMPLETED", eventTimestamp=next_day,
                        lastUpdatedAt=T0 + timedelta(minutes=3)))
    emitter.flush()
    reports = drain_into_table(spark, settings)
    assert sum(r.dead_letters for r in reports) == 2
    pending = DeadLetterStore(settings.dead_letter_path).pending().to_pylist()
    assert [d["reason"] for d in pending] == ["event_timestamp_changed"] * 2
    assert any("run-1" in d["detail"] and "2026/11/26" in d["detail"] for d in pending), pending
    emitter.emit(_event("run-1", status="COMPLETED", lastUpdatedAt=T0 + timedelta(minutes=4)))
    emitter.flush()
    drain_into_table(spark, settings)
    rows = sorted((r["eventId"], r["status"], r["eventDate"]) for r in table_rows(settings))
    assert rows == [("run-1", "COMPLETED", "2026/11/26"), ("run-2", "STARTED", "2026/11/26")]


def _v2(event):
    return {"processedRecordCount": None, "sourceRecordCount": None, "errorMessage": None,
            "dataQualityScore": None, "attributes": {}, **event}


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
