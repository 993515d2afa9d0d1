"""The pipeline_events table spec and every ``hoodie.*`` option the platform sets.

All Hudi option strings live here, produced from one typed ``TableSpec``; the streaming writer, the table
services and the readers share it. Decisions, checked against Hudi 1.2.0:

- COPY_ON_WRITE by default: the dashboard reads far more than ingestion writes. MERGE_ON_READ is a setting.
- Newest wins by event time: ``hoodie.record.merge.mode=EVENT_TIME_ORDERING`` with ``lastUpdatedAt`` as
  the ordering field. The default (commit-time ordering) would let a late, older update overwrite a newer
  state; event-time ordering keeps the greatest ``lastUpdatedAt`` within a batch, across batches, and
  against what is already committed.
- Index: Hudi's SIMPLE index (a join against the partition's keys). The seed's consistent-hashing bucket
  index is MERGE_ON_READ-only (HUDI-4888), so it is not used.
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

from obs_platform.settings import Profile, Settings, TableType

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
        )

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
            "hoodie.index.type": "SIMPLE",
            "hoodie.metadata.enable": "true",
            # the dashboard's reader (hudi-rs) does not use these metadata-table indexes; skip their cost
            "hoodie.metadata.index.column.stats.enable": "false",
            "hoodie.metadata.index.partition.stats.enable": "false",
            # updates may land in file groups that clustering is rewriting; OCC decides at commit time
            "hoodie.clustering.updates.strategy":
                "org.apache.hudi.client.clustering.update.strategy.SparkAllowUpdateStrategy",
            "hoodie.table.timeline.timezone": "UTC",
        }

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
        }
