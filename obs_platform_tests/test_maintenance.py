"""Table services on a real table written by the real ingestion: clustering, cleaning within the horizon,
savepoints that survive cleaning, archival, and maintenance beside a live writer."""

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hudi import HudiReadOptions, HudiTable

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.errors import InvalidInput
from obs_platform.lakehouse.table import TableSpec
from obs_platform.maintenance.inventory import completed_instants, scan
from obs_platform.maintenance.services import TableServices
from obs_platform.query.base import AsOf, EventQuery
from obs_platform.query.embedded import EmbeddedReader
from obs_platform.sdk import EventEmitter
from obs_platform.settings import IndexType, TableType
from obs_platform_tests.conftest import drain_into_table
from obs_platform_tests.test_ingestion_faults import Traffic, start_ingestion_process, wait_for

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

T0 = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


def write_commits(spark, settings, commits: int, keys: int = 20, failed_at: int | None = None,
                  new_keys: bool = False, after_each=None) -> list[str]:
    """``commits`` commits; commit i sets every key's status to RUNNING with processedRecordCount=i
    (FAILED at commit ``failed_at``); with ``new_keys`` each commit inserts its own keys instead.
    Keys spread over 3 day partitions. Returns the commit instants, oldest first."""
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    instants = []
    for i in range(commits):
        for k in range(keys):
            emitter.emit({"eventId": f"c{i}-k{k:03d}" if new_keys else f"k{k:03d}", "correlationId": f"c{k}", "pipelineName": "orders",
                          "stageName": "load", "status": "FAILED" if i == failed_at else "RUNNING",
                          "eventTimestamp": T0 + timedelta(days=k % 3), "processedRecordCount": i,
                          "errorMessage": "disk full" if i == failed_at else None,
                          "lastUpdatedAt": T0 + timedelta(minutes=i)})
        emitter.flush()
        reports = drain_into_table(spark, settings)
        instants.append(reports[-1].instant)
        if after_each:
            after_each()
    return instants


def stream_commits(settings) -> int:
    """Completed delta commits (the stream's; compaction completes as a commit)."""
    return sum(1 for _, _, action in completed_instants(settings.table_path) if action == "deltacommit")


def snapshot(settings, as_of: str | None = None) -> dict[str, tuple]:
    options = HudiReadOptions().with_as_of_timestamp(as_of) if as_of else HudiReadOptions()
    rows = pa.Table.from_batches(HudiTable(settings.table_uri).read(options)).to_pylist()
    return {r["eventId"]: (r["status"], r["processedRecordCount"]) for r in rows}


def test_clustering_merges_small_files_and_rows_are_unchanged(spark, settings):
    settings = settings.model_copy(update={"table_type": TableType.COPY_ON_WRITE, "table_index": IndexType.SIMPLE})
    write_commits(spark, settings, commits=4, keys=30, new_keys=True)
    before_rows = snapshot(settings)
    services = TableServices(spark, TableSpec.from_settings(settings))
    run = services.optimize()
    assert run.service == "clustering"
    assert run.before.live_files == 12 and run.after.live_files == 3  # 4 commits x 3 days -> 1 file per day
    assert run.after.small_live_files < run.before.small_live_files
    assert snapshot(settings) == before_rows
    assert len(before_rows) == 120
    meta = run.metadata()
    assert meta["live_files_before"] == run.before.live_files and meta["instants"]
    assert any(action == "replacecommit" for _, _, action in completed_instants(settings.table_path))


def test_compaction_merges_log_files_and_every_read_is_unchanged(spark, settings):
    """Merge-on-read (the default): 4 commits update 30 keys over 3 days, so each day's bucket file groups
    carry log files; compaction merges them into new base files. Snapshot, the BFF's view, time travel to an
    older commit and "what changed since" answer exactly as before."""
    instants = write_commits(spark, settings, commits=4, keys=30)
    reader = EmbeddedReader(settings.table_uri)
    before_rows = snapshot(settings)
    before_view = reader.events(EventQuery(limit=100)).events
    at_second = snapshot(settings, instants[1])
    assert {v for v in before_rows.values()} == {("RUNNING", 3)} and len(before_rows) == 30
    run = TableServices(spark, TableSpec.from_settings(settings)).optimize()
    assert run.service == "compaction" and run.details["file_slices_compacted"] > 0
    assert run.before.live_log_files > 0 and run.after.live_log_files == 0
    assert run.after.live_files == run.before.live_files  # same file groups (buckets), new base files
    meta = run.metadata()
    assert meta["log_files_before"] == run.before.live_log_files and meta["log_files_after"] == 0
    assert any(action == "commit" for _, _, action in completed_instants(settings.table_path))
    assert snapshot(settings) == before_rows
    assert snapshot(settings, instants[1]) == at_second == {k: ("RUNNING", 1) for k in before_rows}
    assert EmbeddedReader(settings.table_uri).events(EventQuery(limit=100)).events == before_view
    reader.refresh()  # a view that lived through the compaction
    assert reader.events(EventQuery(limit=100)).events == before_view
    assert reader.incremental(instants[-1], EventQuery(limit=100)).total == 0
    assert reader.events(EventQuery(limit=100), as_of=instants[1]).total == 30


def test_cleaning_keeps_exactly_the_horizon_and_a_savepoint_survives(spark, settings):
    """5 commits over the same 20 keys, each compacted (merge-on-read: compaction makes the new file slices
    that cleaning can release); the FAILED state is in commit 2 (index 1), which is savepointed. Horizon: the
    newest 2 commits, compactions included (they are commits on the timeline). After cleaning: the newest
    commit reads, the savepointed failure commit still does, and time travel past the horizon is refused by
    name, never answered from whatever older files remain."""
    settings = settings.model_copy(update={"time_travel_horizon_commits": 2})
    services = TableServices(spark, TableSpec.from_settings(settings))
    instants = write_commits(spark, settings, commits=5, failed_at=1, after_each=services.compact)
    assert services.savepoint(instants[1], "FAILED event k000")
    assert services.savepoints() == [instants[1]]
    run = services.clean()
    assert run.details["files_deleted"] > 0
    assert run.after.data_files < run.before.data_files and run.metadata()["bytes_freed"] > 0
    assert snapshot(settings, instants[4])["k000"] == ("RUNNING", 4)
    assert snapshot(settings, instants[1])["k000"] == ("FAILED", 1)  # savepointed: survives cleaning
    reader = EmbeddedReader(settings.table_uri)
    assert reader.oldest_retained_commit() == run.details["earliest_commit_to_retain"] == instants[4]
    assert reader.resolve_as_of(AsOf.parse(instants[1])) == instants[1]
    assert reader.events(EventQuery(event_ids=("k000",)), as_of=instants[1]).events[0]["status"] == "FAILED"
    for gone in (instants[0], instants[3]):
        with pytest.raises(InvalidInput, match="older than the oldest retained commit"):
            reader.resolve_as_of(AsOf.parse(gone))
    assert services.release_savepoint(instants[1]) and services.savepoints() == []


def test_archival_trims_the_active_timeline_after_cleaning(spark, settings):
    """Hudi archives only instants the cleaner is done with and that the metadata table has compacted,
    so archival runs after cleaning."""
    settings = settings.model_copy(update={"time_travel_horizon_commits": 2})
    write_commits(spark, settings, commits=13, keys=3)  # past the metadata table's compaction (every 10)
    services = TableServices(spark, TableSpec.from_settings(settings))
    services.clean()
    run = services.archive(min_commits=3, max_commits=4, retain_commits=2)
    assert run.after.completed_instants < run.before.completed_instants
    assert EmbeddedReader(settings.table_uri).events(EventQuery()).total == 3  # reads unaffected


def test_maintenance_beside_the_live_writer_loses_nothing(spark, settings, tmp_path):
    """The stream runs in its own process with traffic flowing while compaction and cleaning run here,
    under optimistic concurrency. In the end every stage run is in the table once, in its last state."""
    ensure_topic_and_subscription(settings)
    traffic = Traffic(settings, rate=30, runs=300)  # ~30 s of traffic
    proc = start_ingestion_process(settings, tmp_path / "ingestion.log")
    services = TableServices(spark, TableSpec.from_settings(settings.model_copy(
        update={"time_travel_horizon_commits": 3})))
    runs = []
    try:
        traffic.start()
        wait_for(lambda: (settings.table_path / ".hoodie").exists() and len(completed_instants(settings.table_path)) >= 1,
                 120, "the stream's first commit")
        # driven by events, not by how long the traffic lasts: the services run until the stream has committed
        # at least 3 times beside them and the traffic is over; if the traffic ends first, a trickle of extra
        # stage runs keeps the stream committing
        first = stream_commits(settings)
        deadline = time.monotonic() + 600
        extra = 0
        while traffic.is_alive() or stream_commits(settings) - first < 3:
            assert time.monotonic() < deadline, "the stream stopped committing beside the table services"
            runs.append(services.optimize())
            runs.append(services.clean())
            if not traffic.is_alive():
                extra += 1
                event = {"eventId": f"trickle-{extra}", "correlationId": "trickle", "pipelineName": "orders",
                         "stageName": "load", "status": "COMPLETED", "eventTimestamp": T0,
                         "lastUpdatedAt": T0 + timedelta(hours=1, seconds=extra)}
                traffic.emitter.emit(event)
                traffic.emitter.flush()
                traffic.expected[event["eventId"]] = ("COMPLETED", event["lastUpdatedAt"])
            time.sleep(1)
        traffic.join()

        def converged():
            page = EmbeddedReader(settings.table_uri).events(EventQuery(limit=10_000))
            return {e["eventId"]: (e["status"], e["lastUpdatedAt"]) for e in page.events} == traffic.expected

        wait_for(converged, 180, "the table to hold every event's last state", interval=1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, (tmp_path / "ingestion.log").read_text()[-3000:]
    # table services really ran beside the writer (whether clustering found small files to merge depends on
    # how the stream's batches fell; what must hold regardless is that nothing was lost or doubled)
    assert {r.service for r in runs} == {"compaction", "cleaning"}
    keys = [r["eventId"] for r in pa.Table.from_batches(HudiTable(settings.table_uri).read()).to_pylist()]
    assert len(keys) == len(set(keys)) == len(traffic.expected) >= 300
    assert scan(settings.table_path).commits > 0


def _rows(schema, writer_name: str, version: int, keys: int = 40) -> pa.Table:
    at = T0 + timedelta(minutes=version)
    return pa.table({
        "eventId": [f"k{k:03d}" for k in range(keys)], "correlationId": ["c"] * keys,
        "pipelineName": ["orders"] * keys, "stageName": [writer_name] * keys, "status": ["RUNNING"] * keys,
        "eventTimestamp": [T0] * keys, "processedRecordCount": [version] * keys,
        "sourceRecordCount": [version] * keys, "errorMessage": [None] * keys,
        "lastUpdatedAt": [at] * keys, "dataQualityScore": [None] * keys, "attributes": [[]] * keys,
        "schemaVersion": [2] * keys, "eventDate": [T0.strftime("%Y/%m/%d")] * keys,
    }, schema=schema)


@pytest.mark.parametrize("layout", ["cow", "mor"])
def test_two_writers_on_the_same_file_groups_at_once_lose_nothing(spark, settings, tmp_path, layout):
    """Two writers commit to the same file groups at once (the stream and a dead-letter replay, say), three
    rounds started together on a barrier: every commit lands and the newest lastUpdatedAt wins. Observed with
    Hudi 1.2 and the file-system lock: the second writer waits for the lock ("acquire lock failed ... will
    retry") and commits after the first, on both layouts, so no HoodieWriteConflictException was raised in
    8 rounds; TableWriter still retries one if Hudi reports it (counted in ``conflicts``)."""
    import threading

    from obs_platform.events.codec import EventCodec
    from obs_platform.ingestion.batch import row_schema
    from obs_platform.lakehouse.writer import TableWriter

    if layout == "cow":
        settings = settings.model_copy(update={"table_type": TableType.COPY_ON_WRITE,
                                               "table_index": IndexType.SIMPLE})
    spec = TableSpec.from_settings(settings)
    schema = row_schema(EventCodec().reader.parsed)
    writers = {name: TableWriter(spark, spec, tmp_path / f"staging-{name}") for name in ("stream", "replay")}
    writers["stream"].upsert(_rows(schema, "stream", 0), "seed")
    version = 0
    for _ in range(3):
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)

        def write(name: str, v: int, barrier=barrier, errors=errors) -> None:
            try:
                barrier.wait()
                writers[name].upsert(_rows(schema, name, v), f"{name}-{v}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(name, version + 1 + i)) for i, name in enumerate(writers)]
        version += 2
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
    rows = {r["eventId"]: r for r in pa.Table.from_batches(HudiTable(settings.table_uri).read()).to_pylist()}
    assert len(rows) == 40
    # the replay wrote the newest version in the last round: it wins, whichever commit completed last
    assert {(r["stageName"], r["processedRecordCount"]) for r in rows.values()} == {("replay", version)}
