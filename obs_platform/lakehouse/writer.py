"""The table's one write path: a batch of rows (Arrow) upserted into Hudi through Spark, with its commit's
stats read back from the timeline. The streaming ingestion and bench/hudi_write both use it.

Rows reach Spark as one staged Parquet file read with the table's schema given (no schema-inference job:
inferring it cost a Spark job per commit). A write conflict (optimistic concurrency: a table service
committed to the same file groups first) fails the attempt cleanly; the same rows are written again on top
of the new state, and event-time ordering makes the retry idempotent.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from obs_platform.lakehouse import storage
from obs_platform.lakehouse.table import TableSpec
from obs_platform.lakehouse.timeline import CommitStats, latest_commit_stats

log = logging.getLogger(__name__)

WRITE_CONFLICT_RETRIES = 5


def spark_schema(schema: pa.Schema):
    """The Spark schema of an Arrow row schema (timestamps as Spark timestamps, maps as maps)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


class TableWriter:
    def __init__(self, spark, spec: TableSpec, staging: str | Path, options: dict[str, str] | None = None):
        """``staging``: where each batch is staged for Spark to read — a local folder on one machine, a folder
        every executor can read (``gs://``, via ``lakehouse.storage``) on a cluster."""
        self.spark = spark
        self.spec = spec
        self.staging = str(staging)
        self._fs, self._staging_root = storage.filesystem(staging)
        self.options = {**spec.upsert_options(), **(options or {})}
        self._schemas: dict[pa.Schema, object] = {}
        self.conflicts = 0  # write conflicts absorbed by a retry, since start

    def upsert(self, rows: pa.Table, label: str | int = "") -> CommitStats | None:
        """Upsert ``rows`` (the table's row schema); return the stats of the commit that holds them."""
        before = time.time()
        name = f"batch-{label}-{uuid.uuid4().hex[:8]}"
        folder = f"{self._staging_root}/{name}"
        self._fs.create_dir(folder, recursive=True)
        try:
            pq.write_table(rows, f"{folder}/part-0.parquet", filesystem=self._fs)
            schema = self._schemas.get(rows.schema)
            if schema is None:
                schema = self._schemas.setdefault(rows.schema, spark_schema(rows.schema))
            frame = self.spark.read.schema(schema).parquet(storage.join(self.staging, name))
            for attempt in range(1, WRITE_CONFLICT_RETRIES + 1):
                try:
                    frame.write.format("hudi").options(**self.options).mode("append").save(self.spec.base_uri)
                    break
                except Exception as exc:  # py4j wraps Hudi's exception; match it by name
                    if "HoodieWriteConflictException" not in str(exc) or attempt == WRITE_CONFLICT_RETRIES:
                        raise
                    self.conflicts += 1
                    log.warning("batch %s conflicted with a concurrent table service (attempt %d); retrying",
                                label, attempt)
                    time.sleep(min(2.0 * attempt, 10.0))
        finally:
            try:
                self._fs.delete_dir(folder)
            except OSError as exc:  # left for the next start's sweep; never fails a committed batch
                log.warning("could not remove staged batch %s: %s", folder, exc)
        return latest_commit_stats(self.spec.base_uri, after=_instant_floor(before))


def _instant_floor(epoch_s: float) -> str:
    """A 17-digit instant a little before ``epoch_s`` (UTC): commits requested since are newer."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch_s - 1)) + "000"
