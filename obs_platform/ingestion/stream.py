"""The streaming ingestion: a Spark Structured Streaming query whose micro-batches pull from Pub/Sub,
upsert into the Hudi table, keep dead letters, and ack only after the Hudi commit.

    python -m obs_platform.ingestion        # runs until SIGINT/SIGTERM

Each micro-batch (at most one per ``trigger_seconds``):
  1. take at most ``max_messages_per_batch`` messages (back-pressure) from the prefetch buffer, waiting for
     rows when traffic is light (adaptive cadence: until ``commit_min_rows`` wait, or the oldest was
     published ``commit_max_delay_seconds`` ago), so a quiet stream commits rarely and a busy one at once;
  2. decode (done page by page in the pulling threads while the previous batch writes): good rows to the
     table, the rest to the dead-letter store with a reason;
  3. upsert the rows into Hudi (event-time ordering: the greatest lastUpdatedAt wins), while a lease thread
     extends the messages' ack deadlines;
  4. ack, on a thread of its own while the next batch is written (one ack in flight at most). A crash anywhere
     before 4 means Pub/Sub redelivers and the upsert absorbs the duplicates.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from obs_platform import failpoints
from obs_platform.events.codec import EventCodec, SchemaRegistry
from obs_platform.heartbeat import Heartbeat
from obs_platform.ingestion.batch import concat_batches, decode_batch
from obs_platform.ingestion.partition_guard import PartitionGuard
from obs_platform.ingestion.pubsub_reader import PubSubBatchReader
from obs_platform.lakehouse.dead_letters import DeadLetterStore
from obs_platform.lakehouse.spark import build_spark_session
from obs_platform.lakehouse.table import TableSpec
from obs_platform.lakehouse.timeline import CommitStats
from obs_platform.lakehouse.writer import TableWriter
from obs_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CommitReport:
    """What one micro-batch did; becomes the table's materialization metadata in Dagster."""

    batch_id: int
    instant: str | None         # the Hudi commit instant, None when only dead letters came
    rows_written: int
    rows_inserted: int
    rows_updated: int
    dead_letters: int
    bytes_written: int
    batch_seconds: float
    oldest_publish_to_commit_s: float | None  # the batch's worst publish -> commit latency
    median_publish_to_commit_s: float | None = None
    hit_batch_limit: bool = False  # the pull stopped at max_messages_per_batch: a backlog is waiting
    pull_seconds: float = 0.0
    decode_seconds: float = 0.0
    write_seconds: float = 0.0
    ack_seconds: float = 0.0


class MicroBatchWriter:
    """The body of ``foreachBatch``: everything one micro-batch does, in order."""

    def __init__(self, spark, settings: Settings, reader: PubSubBatchReader,
                 on_commit: Callable[[CommitReport], None] | None = None):
        self.spark = spark
        self.settings = settings
        self.spec = TableSpec.from_settings(settings)
        self.reader = reader
        self.codec = EventCodec(SchemaRegistry(settings.schema_dir))
        self.dead_letters = DeadLetterStore(settings.dead_letter_uri)
        self.table = TableWriter(spark, self.spec, settings.staging_uri)
        self.guard = PartitionGuard(settings.table_uri)
        self.on_commit = on_commit
        self.heartbeat = Heartbeat(settings.home)  # the keep-alive sensor's sign of life
        self.batches = 0
        self.draining = threading.Event()  # set: finish the batch in flight, start no other
        self._busy = threading.Lock()
        # a committed batch is acked on this thread while the next one is written (at most one ack in flight:
        # the next batch's ack waits for it, so acks and on_commit reports stay in commit order)
        self._acker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pubsub-ack")
        self._acking: Future | None = None

    def __call__(self, _ticks, batch_id: int) -> None:
        if self.draining.is_set():
            return
        with self._busy:
            self._run_batch(batch_id)
        self.heartbeat.turned()  # every turn, with or without rows

    def wait_idle(self, timeout: float) -> bool:
        """Drain: let the batch in flight commit and ack, and start no new one."""
        self.draining.set()
        self.reader.wake()  # a batch still waiting for rows starts no commit
        started = time.monotonic()
        if self._busy.acquire(timeout=timeout):
            try:
                self._wait_acked(max(0.0, timeout - (time.monotonic() - started)))
            finally:
                self._busy.release()
            return True
        return False

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the last batch written is acked and reported."""
        with self._busy:
            self._wait_acked(timeout)

    def _wait_acked(self, timeout: float | None = None) -> None:
        """Wait for the previous batch's ack; its failure fails this batch (the query stops, a supervisor
        restarts it, and Pub/Sub redelivers what was not acked: the upsert absorbs it)."""
        if self._acking is not None:
            acking, self._acking = self._acking, None
            acking.result(timeout=timeout)

    def _run_batch(self, batch_id: int) -> None:
        waiting = time.monotonic()
        pages = self.reader.pull_pages(self.settings.max_messages_per_batch)
        if not pages:
            return
        started = pulled = time.monotonic()  # waiting for rows (adaptive cadence) is not the batch's work
        messages = [m for page in pages for m in page.messages]
        # pages come decoded from the pulling threads (off the critical path); a split page is decoded here
        decoded = concat_batches([page.decoded or decode_batch(page.messages, self.codec) for page in pages])
        decoded = self.guard.apply(decoded)  # a stage run never moves to another day's partition
        decoded_at = time.monotonic()
        commit: CommitStats | None = None
        with self.reader.leased(messages):
            if decoded.bad:
                self.dead_letters.append(decoded.dead_letters, batch_id)
            if decoded.good:
                commit = self.table.upsert(decoded.rows, batch_id)
                self.guard.committed(decoded.rows)
        written = time.monotonic()
        self._wait_acked()
        self._acking = self._acker.submit(self._ack_and_report, batch_id, messages, decoded, commit,
                                          started, pulled - waiting, decoded_at - pulled, written - decoded_at)

    def _ack_and_report(self, batch_id: int, messages, decoded, commit: CommitStats | None, started: float,
                        pull_s: float, decode_s: float, write_s: float) -> None:
        instant = commit.instant if commit else None
        acking = time.monotonic()
        failpoints.pause("before-ack", batch=batch_id, commit=instant)  # crash tests only (OBS_FAILPOINTS)
        self.reader.ack(messages)
        self.batches += 1
        now_ms = time.time() * 1000
        publish_ms = sorted(m.publish_time.timestamp() * 1000 for m in messages)
        report = CommitReport(
            batch_id=batch_id, instant=instant, rows_written=decoded.good,
            rows_inserted=commit.rows_inserted if commit else 0, rows_updated=commit.rows_updated if commit else 0,
            dead_letters=decoded.bad, bytes_written=commit.bytes_written if commit else 0,
            batch_seconds=round(time.monotonic() - started, 3),
            oldest_publish_to_commit_s=round((now_ms - publish_ms[0]) / 1000, 3),
            median_publish_to_commit_s=round((now_ms - publish_ms[len(publish_ms) // 2]) / 1000, 3),
            hit_batch_limit=len(messages) >= self.settings.max_messages_per_batch,
            pull_seconds=round(pull_s, 3), decode_seconds=round(decode_s, 3),
            write_seconds=round(write_s, 3), ack_seconds=round(time.monotonic() - acking, 3),
        )
        log.info("batch %d: %d rows -> commit %s, %d dead letters, %.1fs (pull %.1f, decode %.1f, write %.1f, "
                 "ack %.1f)", batch_id, decoded.good, instant, decoded.bad, report.batch_seconds,
                 report.pull_seconds, report.decode_seconds, report.write_seconds, report.ack_seconds)
        if self.on_commit:
            self.on_commit(report)


def start_stream(spark, settings: Settings, writer: MicroBatchWriter):
    """Start the Structured Streaming query; one micro-batch per trigger interval.

    The ``rate-micro-batch`` source yields one tick row per batch; it is the query's clock, and the batch's
    data comes from Pub/Sub through ``writer`` (see pubsub_reader's docstring for why).
    """
    # a batch that waits for rows (adaptive cadence) outlasts the trigger by design: not worth a warning each time
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.execution.streaming.ProcessingTimeExecutor", jvm.org.apache.logging.log4j.Level.ERROR)
    ticks = spark.readStream.format("rate-micro-batch").option("rowsPerBatch", 1).load()
    checkpoint = Path(settings.checkpoint_path)
    checkpoint.mkdir(parents=True, exist_ok=True)
    return (
        ticks.writeStream.queryName("pipeline_events_ingestion")
        .foreachBatch(writer)
        .trigger(processingTime=f"{settings.trigger_seconds} seconds")
        .option("checkpointLocation", str(checkpoint))
        .start()
    )


def run_ingestion(settings: Settings, on_commit: Callable[[CommitReport], None] | None = None,
                  stop: threading.Event | None = None, spark=None) -> None:
    """Run the stream until ``stop`` is set or the query fails (then raise, so a supervisor restarts it).
    A ``spark`` session passed in is left running; one made here is stopped on the way out."""
    from obs_platform.bus.client import ensure_topic_and_subscription

    stop = stop or threading.Event()
    ensure_topic_and_subscription(settings)
    owns_spark = spark is None
    spark = spark or build_spark_session(settings, "obs-platform-ingestion")
    codec = EventCodec(SchemaRegistry(settings.schema_dir))
    reader = PubSubBatchReader(settings, prefetch=True, pull_threads=settings.pull_threads,
                               decode=lambda page: decode_batch(page, codec))
    writer = MicroBatchWriter(spark, settings, reader, on_commit)
    query = start_stream(spark, settings, writer)
    log.info("ingestion running: %s -> %s every %ss", reader.subscription, settings.table_uri,
             settings.trigger_seconds)
    try:
        while not stop.is_set():
            if query.awaitTermination(1.0):
                break
        if query.exception():
            raise RuntimeError(f"ingestion query failed: {query.exception()}")
    finally:
        if query.isActive:
            if not writer.wait_idle(timeout=settings.ack_deadline_seconds):
                log.warning("the batch in flight did not finish in time; it will be redelivered")
            query.stop()
        reader.close()
        if owns_spark:
            spark.stop()
    log.info("ingestion stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ingestion %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_ingestion(get_settings(), stop=stop)


if __name__ == "__main__":
    main()
