"""The SQL endpoint on real parts: a Hudi table written by Spark in a temp folder, a private PostgreSQL
holding the Hive metastore, Hudi's Hive sync in its own Spark JVM (as the Hive-sync job runs), and the Spark
Thrift Server queried over PyHive. What a client reads through the Thrift Server must equal what hudi-rs
reads from the files, and the server (started before the sync) must see what the sync registered, without a
restart: the metastore is shared by two JVMs through PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hudi import HudiTable

from obs_platform.lakehouse.table import TableSpec
from obs_platform.lakehouse.timeline import latest_write_instant
from obs_platform.settings import REPO_ROOT, Settings
from obs_platform.sqlendpoint import (
    PostgresConfig,
    ThriftServerConfig,
    ensure_metastore_schema,
    ensure_postgres,
    start_thrift_server,
    stop_postgres,
)
from obs_platform.sqlendpoint.hive_sync import metastore_columns, metastore_partitions
from obs_platform.sqlendpoint.thrift_server import group_members
from obs_platform_tests.conftest import free_port

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600)]

T0 = datetime(2026, 11, 25, 23, 59, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema([
    pa.field("eventId", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("eventTimestamp", TS, nullable=False),
    pa.field("lastUpdatedAt", TS, nullable=False),
    pa.field("eventDate", pa.string(), nullable=False),
])


def events(*rows: tuple[str, str, timedelta, int]) -> pa.Table:
    """(eventId, status, start offset from T0, lastUpdatedAt offset in ms) -> rows, partitioned by start day."""
    out = {name: [] for name in SCHEMA.names}
    for event_id, status, start, updated_ms in rows:
        started = T0 + start
        out["eventId"].append(event_id)
        out["status"].append(status)
        out["eventTimestamp"].append(started)
        out["lastUpdatedAt"].append(started + timedelta(milliseconds=updated_ms))
        out["eventDate"].append(started.strftime("%Y/%m/%d"))
    return pa.table(out, schema=SCHEMA)


def upsert(spark, spec: TableSpec, table: pa.Table) -> None:
    df = spark.createDataFrame(table.to_pandas())
    df.write.format("hudi").options(**spec.upsert_options()).mode("append").save(spec.base_uri)


def hudi_rs_rows(path: str) -> list[tuple[str, str]]:
    batches = HudiTable(path).read()
    table = pa.Table.from_batches(batches).select(["eventId", "status"]).sort_by("eventId")
    return [(r["eventId"], r["status"]) for r in table.to_pylist()]


def test_thrift_server_serves_the_hudi_table_that_hive_sync_registered(spark, tmp_path):
    timings: dict[str, float] = {}
    settings = Settings(home=tmp_path)
    spec = TableSpec.from_settings(settings)
    pg = PostgresConfig.from_settings(settings, port=free_port())  # not 5433: a dev cluster may run there
    thrift = None
    try:
        t = time.monotonic()
        server = ensure_postgres(pg)
        assert server.initialised and server.started
        timings["postgres init+start"] = time.monotonic() - t
        schema = ensure_metastore_schema(settings, pg)
        assert schema.created and schema.tables > 40
        assert not ensure_metastore_schema(settings, pg).created  # idempotent
        timings["metastore schema"] = schema.seconds

        # The server starts first, on an empty metastore: it must pick up the table registered later.
        thrift = start_thrift_server(settings, pg, ThriftServerConfig.from_settings(settings, port=free_port()))
        timings["thrift server start"] = thrift.start_seconds
        # the metastore password reaches the server in a 0600 file, not in its command line
        assert pg.password.encode() not in open(f"/proc/{thrift.pid}/cmdline", "rb").read()

        # Two commits: e1 moves to FAILED (newest lastUpdatedAt wins over a late, older RUNNING), e3 lands in
        # the next day's partition.
        t = time.monotonic()
        upsert(spark, spec, events(("e1", "STARTED", timedelta(0), 0), ("e2", "STARTED", timedelta(0), 0),
                                   ("e3", "RUNNING", timedelta(minutes=2), 0)))
        upsert(spark, spec, events(("e1", "FAILED", timedelta(0), 300), ("e1", "RUNNING", timedelta(0), 200),
                                   ("e2", "COMPLETED", timedelta(0), 100)))
        timings["two hudi commits"] = time.monotonic() - t
        expected = hudi_rs_rows(spec.base_uri)
        assert expected == [("e1", "FAILED"), ("e2", "COMPLETED"), ("e3", "RUNNING")]

        # Hive sync in its own Spark JVM, through the CLI the Makefile and the Hive-sync job use.
        t = time.monotonic()
        env = {**os.environ, "OBS_HOME": str(tmp_path), "OBS_METASTORE_PG_PORT": str(pg.port),
               "PYSPARK_PYTHON": sys.executable}
        proc = subprocess.run([sys.executable, "-m", "obs_platform.sqlendpoint", "hive-sync"], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        report = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
        timings["hive sync (own JVM)"] = time.monotonic() - t
        timings["hive sync (HiveSyncTool only)"] = report["seconds"]
        assert report["table"] == "observability.pipeline_events" and report["created"]
        assert report["partitions_added"] == ["eventdate=2026-11-25", "eventdate=2026-11-26"]
        assert report["partitions"] == metastore_partitions(pg, "observability", "pipeline_events")
        columns = dict(metastore_columns(pg, "observability", "pipeline_events"))
        assert columns["eventtimestamp"] == "timestamp" and columns["eventdate"] == "string"
        assert report["last_commit_synced"] == latest_write_instant(spec.base_uri)[1]

        conn = thrift.connect(username="operator")
        try:
            cursor = conn.cursor()
            t = time.monotonic()
            cursor.execute("SELECT eventId, status FROM observability.pipeline_events ORDER BY eventId")
            rows = [tuple(r) for r in cursor.fetchall()]
            timings["first query"] = time.monotonic() - t
            assert rows == expected

            cursor.execute("SHOW PARTITIONS observability.pipeline_events")
            assert sorted(r[0] for r in cursor.fetchall()) == ["2026/11/25", "2026/11/26"]

            cursor.execute("SELECT count(*) FROM observability.pipeline_events WHERE eventDate = '2026/11/26'")
            assert cursor.fetchall() == [(1,)]

            latencies = []
            for _ in range(5):
                t = time.monotonic()
                cursor.execute("SELECT eventId, status FROM observability.pipeline_events ORDER BY eventId")
                assert [tuple(r) for r in cursor.fetchall()] == expected
                latencies.append(time.monotonic() - t)
            timings["query median (5)"] = sorted(latencies)[2]

            # Freshness: a new commit (and partition) is read through Hudi's timeline, no sync needed, by a
            # new connection (a new Spark session); an open connection keeps its cached relation until
            # REFRESH TABLE. Clients that hold connections must refresh (or reconnect) per read.
            upsert(spark, spec, events(("e4", "STARTED", timedelta(days=1, minutes=2), 0)))
            expected = hudi_rs_rows(spec.base_uri)
            assert expected[-1] == ("e4", "STARTED")
            fresh = thrift.connect(username="operator")
            try:
                other = fresh.cursor()
                other.execute("SELECT eventId, status FROM observability.pipeline_events ORDER BY eventId")
                assert [tuple(r) for r in other.fetchall()] == expected
                other.execute("SHOW PARTITIONS observability.pipeline_events")
                assert sorted(r[0] for r in other.fetchall()) == ["2026/11/25", "2026/11/26", "2026/11/27"]
            finally:
                fresh.close()
            cursor.execute("SELECT count(*) FROM observability.pipeline_events")
            assert cursor.fetchall() == [(3,)]  # the open connection's cached view
            cursor.execute("REFRESH TABLE observability.pipeline_events")
            cursor.execute("SELECT eventId, status FROM observability.pipeline_events ORDER BY eventId")
            assert [tuple(r) for r in cursor.fetchall()] == expected
        finally:
            conn.close()
        rss = thrift.rss_bytes()
    finally:
        if thrift is not None:
            thrift.stop()
        stop_postgres(pg)

    # Nothing left running: the server's whole process group and the cluster are gone.
    assert thrift.process.poll() is not None
    assert group_members(thrift.pid) == []
    assert not (pg.data_dir / "postmaster.pid").exists()
    print("\nSQL endpoint timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
          + f"; Thrift Server RSS {rss / 2**20:.0f} MiB")


def test_with_a_password_the_thrift_server_refuses_anonymous_and_wrong_logins(sql_endpoint):
    """OBS_THRIFT_PASSWORD set: HiveServer2 CUSTOM authentication. No password, another user or a wrong
    password cannot open a session; the configured user with the password runs SQL. The password is in no
    file the server writes and on no command line."""
    from pydantic import SecretStr

    settings = sql_endpoint.settings.model_copy(update={"thrift_password": SecretStr("s3cret-thrift"),
                                                        "thrift_user": "analyst"})
    server = start_thrift_server(settings, sql_endpoint.pg,
                                 ThriftServerConfig.from_settings(settings, port=free_port()))
    try:
        refused = []
        for attempt in ({"password": ""}, {"username": "analyst", "password": "wrong"},
                        {"username": "mallory", "password": "s3cret-thrift"}):
            try:
                server.connect(**attempt).close()
            except Exception as exc:  # noqa: BLE001 - thrift's TTransportException, or pyhive's
                refused.append(type(exc).__name__)
        assert len(refused) == 3, f"a login without the right user and password was accepted: {refused}"
        conn = server.connect()  # the configured user and password
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1 + 1")
            assert cursor.fetchall() == [(2,)]
        finally:
            conn.close()
        cmdlines = [open(f"/proc/{pid}/cmdline", "rb").read() for pid in group_members(server.pid)]
        assert not any(b"s3cret-thrift" in c for c in cmdlines)
        assert not any(b"s3cret-thrift" in f.read_bytes() for f in (settings.home / "thrift-server").rglob("*")
                       if f.is_file())
    finally:
        server.stop()
