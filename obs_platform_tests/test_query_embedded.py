"""The embedded reader against hudi-rs's own snapshot reads, across table services: its cached view and its
time travel must give, at every commit, exactly what a fresh hudi-rs read as of that commit gives, also
after clustering rewrote files, and it must report cleaning's horizon and savepoints from the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hudi import HudiReadOptions, HudiTable

from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.errors import InvalidInput
from obs_platform.lakehouse.table import TableSpec
from obs_platform.query.base import AsOf, EventQuery
from obs_platform.query.embedded import EmbeddedReader
from obs_platform.sdk import EventEmitter
from obs_platform.settings import IndexType, Settings, TableType
from obs_platform_tests.conftest import drain_into_table

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

T0 = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


def hudi_rs(uri: str, as_of: str) -> dict[str, tuple]:
    rows = pa.Table.from_batches(HudiTable(uri).read(HudiReadOptions().with_as_of_timestamp(as_of))).to_pylist()
    return {r["eventId"]: (r["status"], r["processedRecordCount"], r["_hoodie_commit_time"]) for r in rows}


def ours(reader: EmbeddedReader, as_of: str | None = None) -> dict[str, tuple]:
    page = reader.events(EventQuery(limit=10_000), as_of=as_of)
    return {e["eventId"]: (e["status"], e["processedRecordCount"], e["commitTime"]) for e in page.events}


def _options(spec: TableSpec, extra: dict[str, str] | None = None) -> str:
    return ",".join(f"{k}={v}" for k, v in {**spec.table_options(), **spec.concurrency_options(), **(extra or {})}.items())


@pytest.fixture(scope="module")
def history(tmp_path_factory, emulator, spark):
    """c1..c3 each insert 12 new stage runs (keys over 3 day partitions, small files); clustering merges the
    files (a replacecommit); c4 moves c1's even keys to COMPLETED, c5 c2's keys divisible by 3 to FAILED.
    A reader opened before the clustering is kept and refreshed after each step."""
    host, port = emulator.split(":")
    # clustering (a replacecommit rewriting files) is copy-on-write's file sizing; Hudi refuses it on a bucket
    # layout, and the merge-on-read default's compaction is covered in test_maintenance
    settings = Settings(home=tmp_path_factory.mktemp("query"), bind_host=host, pubsub_port=int(port),
                        topic="query-events", subscription="query-events-hudi", ack_deadline_seconds=10,
                        table_type=TableType.COPY_ON_WRITE, table_index=IndexType.SIMPLE)
    ensure_topic_and_subscription(settings)
    emitter = EventEmitter.from_settings(settings)
    spec = TableSpec.from_settings(settings)

    def write(n: int, keys: list[str], status: str) -> str:
        for key in keys:
            emitter.emit({"eventId": key, "correlationId": key[:2], "pipelineName": "orders", "stageName": "load",
                          "status": status, "eventTimestamp": T0 + timedelta(days=int(key[-2:]) % 3),
                          "processedRecordCount": n, "lastUpdatedAt": T0 + timedelta(minutes=n)})
        emitter.flush()
        return drain_into_table(spark, settings)[-1].instant

    commits = [write(n, [f"c{n}-{k:02d}" for k in range(12)], "RUNNING") for n in (1, 2, 3)]
    reader = EmbeddedReader(settings.table_uri)
    assert reader.refresh() == commits[-1]
    rows = spark.sql(f"CALL run_clustering(path => '{settings.table_uri}', op => 'scheduleAndExecute', options => '"
                     + _options(spec, {"hoodie.clustering.plan.strategy.small.file.limit": str(64 * 1024 * 1024),
                                       "hoodie.clustering.plan.strategy.max.num.groups": "100"}) + "')").collect()
    clustering = rows[0]["timestamp"]
    commits.append(write(4, [f"c1-{k:02d}" for k in range(0, 12, 2)], "COMPLETED"))
    commits.append(write(5, [f"c2-{k:02d}" for k in range(0, 12, 3)], "FAILED"))
    return settings, spec, reader, commits, clustering


def test_the_view_and_time_travel_equal_hudi_rs_at_every_commit_across_clustering(history):
    settings, _, reader, commits, clustering = history
    listed = {c.instant: c.action for c in reader.commits()}
    assert listed[clustering] == "replacecommit" and [c for c in listed if listed[c] == "commit"] == commits[::-1]
    assert reader.refresh() == commits[-1]
    assert ours(reader) == hudi_rs(settings.table_uri, commits[-1])
    assert len(ours(reader)) == 36
    for instant in [*commits, clustering]:
        assert ours(reader, instant) == hudi_rs(settings.table_uri, instant), instant
    assert ours(EmbeddedReader(settings.table_uri)) == ours(reader)  # a fresh reader agrees with the refreshed one
    assert reader.maintenance().last_clustering.instant == clustering


def test_changes_per_commit_and_history(history):
    _, _, reader, commits, clustering = history
    assert [len(reader.changes_in(c)) for c in commits] == [12, 12, 12, 6, 4]
    assert reader.changes_in(clustering) == []  # clustering rewrites files, not rows
    assert [(v["commitTime"], v["status"]) for v in reader.event_history("c2-03")] == [
        (commits[1], "RUNNING"), (commits[4], "FAILED")]
    found = reader.at_failure("c2-03")
    assert (found.failure_commit, found.healthy_commit, found.failed_in_pipeline, found.changes_total) == (
        commits[4], commits[3], 4, 4)


def test_cleaning_sets_the_horizon_and_a_savepoint_stays_readable(history, spark):
    settings, spec, reader, commits, _ = history
    saved = spark.sql(f"CALL create_savepoint(path => '{settings.table_uri}', commit_time => '{commits[0]}')").collect()
    assert saved and saved[0][0], saved
    spark.sql(f"CREATE TABLE IF NOT EXISTS query_clean USING hudi LOCATION '{settings.table_uri}'")
    rows = spark.sql("CALL run_clean(table => 'query_clean', clean_policy => 'KEEP_LATEST_COMMITS', "
                     f"retain_commits => 2, options => '{_options(spec)}')").collect()
    retained = rows[0]["earliest_commit_to_retain"]
    maintenance = reader.maintenance()
    assert maintenance.last_clean is not None and maintenance.earliest_commit_to_retain == retained
    assert maintenance.oldest_retained_commit == min(c for c in commits if c >= retained)
    assert maintenance.savepoints == [commits[0]], sorted(p.name for p in (settings.table_path / ".hoodie" / "timeline").iterdir())
    assert reader.resolve_as_of(AsOf(instant=commits[0])) == commits[0]
    assert ours(reader, commits[0]) == hudi_rs(settings.table_uri, commits[0])
    too_old = [c for c in commits if c < maintenance.oldest_retained_commit and c != commits[0]]
    assert too_old
    with pytest.raises(InvalidInput, match="oldest retained commit"):
        reader.resolve_as_of(AsOf(instant=too_old[-1]))
    assert ours(reader) == hudi_rs(settings.table_uri, commits[-1])
