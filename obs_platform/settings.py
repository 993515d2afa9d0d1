"""One settings object for the whole platform, read from the environment.

A deployment is chosen once by ``OBS_PROFILE`` (``local`` or ``gcp``); every other value has a default
for that profile and can be overridden by its own ``OBS_*`` variable. Settings are read when a process
starts (``get_settings()``), never at import time.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Profile(StrEnum):
    LOCAL = "local"
    GCP = "gcp"


class TableType(StrEnum):
    COPY_ON_WRITE = "COPY_ON_WRITE"
    MERGE_ON_READ = "MERGE_ON_READ"


class IndexType(StrEnum):
    BUCKET = "BUCKET"              # key hash -> one of N file groups per partition; no lookup at all
    SIMPLE = "SIMPLE"              # join against the partition's keys: cost grows with the partition
    RECORD_INDEX = "RECORD_INDEX"  # global key -> file group map in the metadata table


class Settings(BaseSettings):
    """Every knob of the platform. Environment variables are ``OBS_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="OBS_", extra="ignore", use_enum_values=False)

    profile: Profile = Profile.LOCAL

    # --- where things live --------------------------------------------------------------------------
    home: Path = Field(default=REPO_ROOT / "var", description="Root of all local state (lake, logs, Dagster).")
    lake_uri: str | None = Field(default=None, description="Table storage root; file path or gs:// URI.")
    jars_dir: Path = Field(default=REPO_ROOT / ".cache" / "jars", description="Hudi bundle and JDBC jars.")
    schema_dir: Path = Field(default=REPO_ROOT / "schemas", description="PipelineEvent*.avsc, one per version.")

    # --- network: everything binds to loopback unless told otherwise ---------------------------------
    bind_host: str = "127.0.0.1"
    pubsub_port: int = 8085
    dagster_port: int = 3000
    bff_port: int = 8080
    dashboard_port: int = 3001

    # --- Pub/Sub ------------------------------------------------------------------------------------
    gcp_project: str = "obs-local"
    topic: str = "pipeline-events"
    subscription: str = "pipeline-events-hudi"
    ack_deadline_seconds: int = Field(default=60, ge=10, le=600)
    pubsub_emulator: str = Field(
        default="auto", description="auto | gcloud | pstest | none (use real Pub/Sub, gcp profile)."
    )

    # --- the table ----------------------------------------------------------------------------------
    database: str = "observability"
    table: str = "pipeline_events"
    table_type: TableType = Field(
        default=TableType.MERGE_ON_READ,
        description="MERGE_ON_READ: commits append to log files, compaction merges them later (chosen by "
                    "bench/hudi_write: flat cost as the day grows). COPY_ON_WRITE rewrites files per commit.",
    )
    table_index: IndexType = Field(default=IndexType.BUCKET, description="How an upsert finds a key's file group.")
    table_buckets: int = Field(
        default=4, ge=1, le=1024,
        description="File groups per day with the BUCKET index; fixed when the table is created. Size it for "
                    "the peak day: each file group holds day/N rows, and compaction rewrites one at a time.",
    )
    table_metadata: bool = Field(
        default=False, description="Hudi's metadata table (file listings); off: no reader needs it and it "
                                   "doubles each commit's writes. RECORD_INDEX turns it on.",
    )
    time_travel_horizon_hours: int = Field(
        default=24, ge=1, description="How far back time travel reaches; the cleaner keeps exactly this."
    )
    time_travel_horizon_commits: int | None = Field(
        default=None, ge=1,
        description="If set, the horizon is the newest N commits instead of hours (KEEP_LATEST_COMMITS).",
    )

    # --- SQL endpoint: Hive metastore (PostgreSQL) + Spark Thrift Server ----------------------------
    sql_endpoint: bool = Field(default=True, description="Start the metastore + Thrift Server with `make up`.")
    metastore_pg_port: int = 5433
    metastore_db: str = "metastore"
    metastore_db_user: str = "hive"
    metastore_db_password: SecretStr = Field(
        default=SecretStr("obs-metastore-dev"), description="Dev default; set OBS_METASTORE_DB_PASSWORD in production."
    )
    metastore_pg_os_user: str | None = None
    thrift_port: int = 10000
    thrift_user: str = Field(default="obs", description="The Thrift Server's user when a password is set.")
    thrift_password: SecretStr | None = Field(
        default=None, description="Set (OBS_THRIFT_PASSWORD): the Thrift Server takes only this user and password "
        "(HiveServer2 CUSTOM authentication). Unset: any local user may connect (it binds loopback only).")
    thrift_master: str = "local[2]"
    thrift_driver_memory: str = "1g"

    # --- ingestion ----------------------------------------------------------------------------------
    trigger_seconds: float = Field(default=1.0, gt=0, description="Micro-batch trigger interval (the "
                                   "shortest time between two commits when a backlog waits).")
    commit_max_delay_seconds: float = Field(
        default=10.0, ge=0,
        description="Adaptive cadence: with light traffic a commit waits for rows up to this long after the "
                    "oldest waiting message was published (the table's staleness bound, on top of the commit).",
    )
    commit_min_rows: int = Field(
        default=5_000, ge=1, description="Adaptive cadence: commit at once when this many messages wait.",
    )
    max_messages_per_batch: int = Field(default=50_000, ge=1, description="Back-pressure bound per batch.")
    pull_threads: int = Field(default=4, ge=1, le=32, description="Pub/Sub pull threads filling the next "
                              "batch while the current one commits (a backlog drains at the pull rate).")
    freshness_sla_seconds: int = Field(
        default=300, ge=10, description="The table is stale (asset check fails) when its newest commit is older."
    )
    small_file_threshold: int = Field(
        default=200, ge=1, description="More small live files than this triggers compaction early (and fails a check)."
    )
    compaction_log_files_threshold: int = Field(
        default=120, ge=1, description="Merge-on-read: more log files than this in one file group triggers "
                                       "compaction early (a read merges them all).",
    )
    compaction_log_bytes_threshold: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Merge-on-read: more bytes in log files than this "
                                                     "triggers compaction early.",
    )
    timeline_threshold: int = Field(
        default=400, ge=10, description="More active-timeline instants than this triggers cleaning + archival early."
    )
    failure_savepoint_retention_hours: int = Field(
        default=72, ge=1, description="How long a FAILED event's commit stays savepointed (time travel to it)."
    )
    ingestion_autostart: bool = Field(
        default=True, description="The keepalive sensor starts (and restarts) the streaming ingestion."
    )
    spark_master: str = "local[2]"
    spark_driver_memory: str = "2g"

    # --- demo traffic -------------------------------------------------------------------------------
    demo_events_per_second: float = Field(default=20.0, gt=0)

    @field_validator("home", "jars_dir", "schema_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Relative paths are taken from where the command ran, once: child processes (the dashboard,
        Dagster's run workers) start in other folders and must agree on the same place."""
        return value.expanduser().absolute()

    @field_validator("pubsub_emulator")
    @classmethod
    def _known_emulator(cls, value: str) -> str:
        allowed = {"auto", "gcloud", "pstest", "none"}
        if value not in allowed:
            raise ValueError(f"OBS_PUBSUB_EMULATOR={value!r} is not one of {sorted(allowed)}")
        return value

    # --- derived ------------------------------------------------------------------------------------
    @property
    def table_uri(self) -> str:
        root = self.lake_uri or str(self.home / "lake")
        return f"{root.rstrip('/')}/{self.database}/{self.table}"

    @property
    def table_path(self) -> Path:
        """The table's local folder (local profile only)."""
        if self.table_uri.startswith("gs://"):
            raise ValueError(f"table {self.table_uri} is not on a local file system")
        return Path(self.table_uri.removeprefix("file://"))

    @property
    def dead_letter_uri(self) -> str:
        """Where the dead-letter store lives, beside the table: a local folder or a ``gs://`` URI."""
        root = (self.lake_uri or str(self.home / "lake")).rstrip("/")
        return f"{root}/{self.database}/dead_letters"

    @property
    def dead_letter_path(self) -> Path:
        """The dead-letter store's local folder (local profile only; use ``dead_letter_uri`` elsewhere)."""
        if self.dead_letter_uri.startswith("gs://"):
            raise ValueError(f"dead letters at {self.dead_letter_uri} are not on a local file system")
        return Path(self.dead_letter_uri.removeprefix("file://"))

    @property
    def staging_uri(self) -> str:
        """Where each micro-batch is staged for Spark: the driver's disk on one machine; beside the table
        (readable by every executor) when the lake is on object storage."""
        if self.lake_uri and self.lake_uri.startswith("gs://"):
            return f"{self.lake_uri.rstrip('/')}/_staging/{self.table}"
        return str(self.home / "staging")

    @property
    def dagster_dir(self) -> Path:
        """The Dagster instance's storage (SQLite, artifacts, compute logs) on the local profile."""
        return self.home / "dagster"

    @property
    def checkpoint_path(self) -> Path:
        return self.home / "checkpoints" / self.table

    @property
    def pubsub_emulator_host(self) -> str | None:
        """host:port of the local Pub/Sub emulator, or None on real Pub/Sub."""
        if self.profile is Profile.GCP or self.pubsub_emulator == "none":
            return os.environ.get("PUBSUB_EMULATOR_HOST")
        return os.environ.get("PUBSUB_EMULATOR_HOST") or f"{self.bind_host}:{self.pubsub_port}"

    @property
    def bff_url(self) -> str:
        return f"http://{self.bind_host}:{self.bff_port}"

    @property
    def hudi_bundle_jar(self) -> Path:
        return self.jars_dir / "hudi-spark3.5-bundle_2.12-1.2.0.jar"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
