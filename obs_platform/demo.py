"""Demo traffic: several pipelines, multi-stage batches sharing a correlationId, realistic counts,
some FAILED and RETRYING, at a configurable rate. Built on the SDK like any producer.

    python -m obs_platform.demo --rate 20 --duration 0   # 0 = until interrupted
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass

from obs_platform.sdk import EventEmitter, StageRun
from obs_platform.settings import get_settings

log = logging.getLogger(__name__)

PIPELINES: dict[str, tuple[str, ...]] = {
    "orders-daily": ("extract", "validate", "transform", "load"),
    "clickstream": ("ingest", "sessionize", "aggregate"),
    "billing-sync": ("extract", "reconcile", "publish"),
    "ml-features": ("extract", "featurize", "train-set", "publish"),
}
ERRORS = (
    "java.sql.SQLTransientConnectionException: connection to warehouse timed out after 30000ms",
    "SchemaMismatch: column 'amount' expected DECIMAL(18,2), found STRING",
    "QuotaExceeded: BigQuery load jobs per table per day",
    "FileNotFoundException: gs://raw-landing/2026/11/26/part-00017.parquet",
    "ValidationError: 412 rows with NULL customer_id",
)


@dataclass
class BatchPlan:
    pipeline: str
    stages: tuple[str, ...]
    correlation_id: str
    source_records: int


class DemoTraffic:
    """Walks batches through their stages; each stage emits STARTED, RUNNING (with counts) and an end state."""

    def __init__(self, emitter: EventEmitter, rate: float, failure_rate: float = 0.06, seed: int | None = None):
        self.emitter = emitter
        self.rate = rate
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.emitted = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def _pace(self, started: float) -> None:
        self.emitted += 1
        ahead = self.emitted / self.rate - (time.monotonic() - started)
        if ahead > 0:
            self._stop.wait(ahead)

    def plan(self) -> BatchPlan:
        pipeline = self.random.choice(list(PIPELINES))
        return BatchPlan(pipeline, PIPELINES[pipeline], uuid.uuid4().hex[:16], self.random.randint(500, 250_000))

    def run_batch(self, plan: BatchPlan, started: float) -> None:
        records = plan.source_records
        for stage in plan.stages:
            if self._stop.is_set():
                return
            with self.emitter.stage_run(plan.pipeline, stage, plan.correlation_id, source_records=records) as run:
                self._pace(started)
                self._stage_body(run, records, started)
            self._pace(started)
            if run.ended:
                return  # the batch stops at a failed stage
            records = run.processed or 0

    def _stage_body(self, run: StageRun, records: int, started: float) -> None:
        half = records // 2
        run.progress(processed=half)
        self._pace(started)
        roll = self.random.random()
        if roll < self.failure_rate / 2:
            run.retrying(self.random.choice(ERRORS))
            self._pace(started)
        elif roll < self.failure_rate:
            run.fail(self.random.choice(ERRORS))
            return
        # some stages drop or fan out rows, so journeys show where rows were lost or multiplied
        factor = self.random.choice((1.0, 1.0, 1.0, 0.98, 0.9, 1.5))
        run.processed = int(records * factor)

    def run(self, duration_s: float = 0.0) -> int:
        started = time.monotonic()
        while not self._stop.is_set() and (duration_s <= 0 or time.monotonic() - started < duration_s):
            self.run_batch(self.plan(), started)
        self.emitter.flush()
        return self.emitted


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=settings.demo_events_per_second, help="events per second")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until interrupted")
    parser.add_argument("--schema-version", type=int, default=None, help="writer schema version (default newest)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s demo %(levelname)s %(message)s")
    traffic = DemoTraffic(EventEmitter.from_settings(settings, args.schema_version), args.rate)
    signal.signal(signal.SIGTERM, lambda *_: traffic.stop())
    signal.signal(signal.SIGINT, lambda *_: traffic.stop())
    log.info("publishing demo traffic at %.1f events/s to %s", args.rate, settings.topic)
    count = traffic.run(args.duration)
    log.info("published %d events", count)


if __name__ == "__main__":
    main()
