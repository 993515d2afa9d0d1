"""The pipeline_events table spec and every ``hoodie.*`` option the platform sets.

All Hudi option strings live here, produced from one typed ``TableSpec``; the streaming writer, the table
services and the readers share it. Decisions, checked against Hudi 1.2.0:

- MERGE_ON_READ with a BUCKET index by default, chosen by measurement (bench/hudi_write, README "Commit
  path"): a commit appends each touched file group's new states to a log file and looks nothing up, so its
  cost stays flat as the day's partition grows; copy-on-write with the SIMPLE index rewrote and joined
  against the whole day on every commit (4.9 CPU-s per small commit fresh, 18.9 at 2 M rows). Compaction
  (a Dagster asset) merges the logs into base files off the commit path. COPY_ON_WRITE, SIMPLE and
  RECORD_INDEX remain settings.
- The commit path skips what need not happen per commit: no metadata table (the readers list files
  themselves), no embedded timeline server, DIRECT markers, no inline compaction or cleaning.
- Newest wins by event time: ``hoodie.record.merge.mode=EVENT_TIME_ORDERING`` with ``lastUpdatedAt`` as
  the ordering field. The default (commit-time ordering) would let a late, older update overwrite a newer
  state; event-time ordering keeps the greatest ``lastUpdatedAt`` within a batch, across batches, and
  against what is already committed.
- Index: BUCKET with the SIMPLE bucket engine (``table_buckets`` file groups per partition, fixed at table
  creation: size it for the peak day). The seed's consistent-hashing engine can resize buckets but exists for
  MERGE_ON_READ only (HUDI-4888) and needs clustering to split buckets; the simple engine is what copy-on-write
  also accepts, so both table types share one layout.
- Partition ``eventDate`` = ``yyyy/MM/dd`` of ``eventTimestamp``. ``eventTimestamp`` is when the stage run
  started, fixed for an eventId, so every state of a stage run lands in the same partition and a
  non-global index is correct.
- Multi-writer: optimistic concurrency with the file-system lock provider (one machine); failed writes are
  cleaned lazily, as OCC requires. The production profile swaps in a storage-based lock on GCS.
- Cleaning and archival are not run inline by the writer: they are Dagster assets. The cleaner keeps
  ``time_travel_horizon_hours`` of history, which is exactly how far back time travel reaches.
"""

from __future__ import annotations

from dataclasses import dataclass

from obs_platform.settings import IndexType, Profile, Settings, TableType

RECORD_KEY = "eventId"
ORDERING_FIELD = "lastUpdatedAt"
PARTITION_FIELD = "eventDate"
PARTITION_FORMAT = "yyyy/MM/dd"  # Spark date_format pattern of eventTimestamp

# The event columns the query layer serves (the current schema's); a column an older table lacks reads as null.
EVENT_COLUMNS = (
    "eventId", "correlationId", "pipelineName", "stageName", "status", "eventTimestamp",
    "processedRecordCount", "sourceRecordCount", "errorMessage", "lastUpdatedAt",
    "dataQualityScore", "attributes", "schemaVersion",
)


@dataclass(frozen=True)
class TableSpec:
    """What the table is, independent of who reads or writes it."""

    name: str
    database: str
    base_uri: str
    table_type: TableType
    time_travel_horizon_hours: int
    lock_provider: str
    time_travel_horizon_commits: int | None = None
    index: IndexType = IndexType.BUCKET
    buckets: int = 4
    metadata_table: bool = False
    record_key: str = RECORD_KEY
    ordering_field: str = ORDERING_FIELD
    partition_field: str = PARTITION_FIELD

    @classmethod
    def from_settings(cls, settings: Settings) -> TableSpec:
        lock = (
            "org.apache.hudi.client.transaction.lock.FileSystemBasedLockProvider"
            if settings.profile is Profile.LOCAL
            # production: Hudi's storage-based lock (conditional writes on the bucket itself, no extra
            # service); on GCS it needs hudi-gcp's storage lock client on the class path (Dataproc image)
            else "org.apache.hudi.client.transaction.lock.StorageBasedLockProvider"
        )
        return cls(
            name=settings.table,
            database=settings.database,
            base_uri=settings.table_uri,
            table_type=settings.table_type,
            time_travel_horizon_hours=settings.time_travel_horizon_hours,
            time_travel_horizon_commits=settings.time_travel_horizon_commits,
            lock_provider=lock,
            index=settings.table_index,
            buckets=settings.table_buckets,
            metadata_table=settings.table_metadata,
        )

    @property
    def is_merge_on_read(self) -> bool:
        return self.table_type is TableType.MERGE_ON_READ

    @property
    def qualified_name(self) -> str:
        return f"{self.database}.{self.name}"

    # --- options ------------------------------------------------------------------------------------
    def table_options(self) -> dict[str, str]:
        """What defines the table; the same for every writer and table service."""
        return {
            "hoodie.table.name": self.name,
            "hoodie.database.name": self.database,
            "hoodie.datasource.write.table.type": self.table_type.value,
            "hoodie.datasource.write.recordkey.field": self.record_key,
            "hoodie.datasource.write.partitionpath.field": self.partition_field,
            "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.SimpleKeyGenerator",
            "hoodie.datasource.write.hive_style_partitioning": "false",
            "hoodie.table.ordering.fields": self.ordering_field,
            "hoodie.datasource.write.precombine.field": self.ordering_field,  # pre-1.1 alternate key
            "hoodie.record.merge.mode": "EVENT_TIME_ORDERING",
            **self.index_options(),
            # the dashboard's reader (hudi-rs) does not use these metadata-table indexes; skip their cost
            "hoodie.metadata.index.column.stats.enable": "false",
            "hoodie.metadata.index.partition.stats.enable": "false",
            # updates may land in file groups that clustering is rewriting; OCC decides at commit time
            "hoodie.clustering.updates.strategy":
                "org.apache.hudi.client.clustering.update.strategy.SparkAllowUpdateStrategy",
            "hoodie.table.timeline.timezone": "UTC",
        }

    def index_options(self) -> dict[str, str]:
        metadata = self.metadata_table or self.index is IndexType.RECORD_INDEX  # the record index lives there
        options = {"hoodie.index.type": self.index.value, "hoodie.metadata.enable": str(metadata).lower()}
        if self.index is IndexType.BUCKET:
            options.update({
                "hoodie.index.bucket.engine": "SIMPLE",
                "hoodie.bucket.index.num.buckets": str(self.buckets),
                "hoodie.bucket.index.hash.field": self.record_key,
            })
        elif self.index is IndexType.RECORD_INDEX:
            options["hoodie.metadata.record.index.enable"] = "true"
        return options

    def concurrency_options(self) -> dict[str, str]:
        return {
            "hoodie.write.concurrency.mode": "OPTIMISTIC_CONCURRENCY_CONTROL",
            "hoodie.write.lock.provider": self.lock_provider,
            "hoodie.cleaner.policy.failed.writes": "LAZY",
            "hoodie.write.lock.wait_time_ms": "60000",
            "hoodie.write.lock.num_retries": "15",
        }

    @property
    def clean_policy(self) -> str:
        return "KEEP_LATEST_COMMITS" if self.time_travel_horizon_commits else "KEEP_LATEST_BY_HOURS"

    def retention_options(self) -> dict[str, str]:
        """The cleaner's retention is the time-travel horizon; one number drives both."""
        retained = (
            {"hoodie.clean.commits.retained": str(self.time_travel_horizon_commits)}
            if self.time_travel_horizon_commits
            else {"hoodie.clean.hours.retained": str(self.time_travel_horizon_hours)}
        )
        return {
            "hoodie.clean.policy": self.clean_policy,
            **retained,
            "hoodie.clean.automatic": "false",
            "hoodie.archive.automatic": "false",
        }

    def upsert_options(self, parallelism: int = 2) -> dict[str, str]:
        """Options for the streaming writer's upserts."""
        return {
            **self.table_options(),
            **self.concurrency_options(),
            **self.retention_options(),
            "hoodie.datasource.write.operation": "upsert",
            "hoodie.combine.before.upsert": "true",
            "hoodie.upsert.shuffle.parallelism": str(parallelism),
            "hoodie.insert.shuffle.parallelism": str(parallelism),
            "hoodie.datasource.write.reconcile.schema": "false",
            # Streaming writes new small files instead of rewriting the day's growing file on every
            # micro-batch (copy-on-write's write amplification); the clustering asset merges them later.
            "hoodie.parquet.small.file.limit": "0",
            **self.lean_commit_options(),
        }

    def lean_commit_options(self) -> dict[str, str]:
        """What a commit need not do every time (each measured in bench/hudi_write): an embedded timeline
        server started per write, marker files through it, compaction planned inline."""
        return {
            "hoodie.embed.timeline.server": "false",
            "hoodie.write.markers.type": "DIRECT",
            "hoodie.compact.inline": "false",
            "hoodie.compact.schedule.inline": "false",
        }
