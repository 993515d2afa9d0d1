"""Hudi table services run through Spark SQL procedures, against the same TableSpec the writer uses.

- ``cluster``: on COPY_ON_WRITE, merging the small files each micro-batch writes is *clustering* (a
  replacecommit); Hudi's "compaction" exists only for MERGE_ON_READ, where ``compact`` merges log files
  into base files. ``optimize`` picks the right one for the table type.
- ``clean``: deletes file versions older than the time-travel horizon (KEEP_LATEST_BY_HOURS with
  ``time_travel_horizon_hours``), never a savepointed one. It also rolls back failed writes (lazy policy).
- ``archive``: moves old completed instants off the active timeline (kept inside the horizon).
- ``savepoint`` / ``release_savepoint``: pin a commit so cleaning keeps its files (time travel survives).

Every service runs under the writer's optimistic concurrency (same lock provider), so it can run beside
the live stream: a conflict fails one side cleanly (the stream retries its batch), never loses a commit.
Only values from settings and validated instants reach the SQL text; nothing from a request does.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from obs_platform.lakehouse.table import TableSpec
from obs_platform.maintenance.inventory import TableInventory, scan
from obs_platform.settings import IndexType, TableType

log = logging.getLogger(__name__)
_INSTANT = re.compile(r"^\d{17}$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Compaction is planned when this asset runs (the schedule and the log-file sensor decide when), not after
# Hudi's default of 5 delta commits: every file slice with log files is compacted.
COMPACT_EVERY_TIME = {"hoodie.compact.inline.trigger.strategy": "NUM_COMMITS",
                      "hoodie.compact.inline.max.delta.commits": "1"}


class MaintenanceError(RuntimeError):
    pass


@dataclass
class ServiceRun:
    """What one table-service run did: numbers for Dagster's materialization metadata."""

    service: str
    before: TableInventory
    after: TableInventory
    seconds: float
    instants: list[str] = field(default_factory=list)
    details: dict[str, int | str] = field(default_factory=dict)

    def metadata(self) -> dict[str, int | float | str]:
        b, a = self.before, self.after
        return {
            "service": self.service,
            "duration_seconds": round(self.seconds, 2),
            "instants": ", ".join(self.instants),
            "files_before": b.data_files, "files_after": a.data_files,
            "bytes_before": b.data_bytes, "bytes_after": a.data_bytes,
            "bytes_freed": max(0, b.data_bytes - a.data_bytes),
            "live_files_before": b.live_files, "live_files_after": a.live_files,
            "log_files_before": b.live_log_files, "log_files_after": a.live_log_files,
            "log_bytes_before": b.live_log_bytes, "log_bytes_after": a.live_log_bytes,
            "small_files_before": b.small_live_files, "small_files_after": a.small_live_files,
            "timeline_instants_before": b.completed_instants, "timeline_instants_after": a.completed_instants,
            "oldest_retained_commit": a.oldest_instant or "",
            "savepoints": a.savepoints,
            **self.details,
        }


def _q(value: str) -> str:
    """A SQL string literal for a value that comes from settings (never from a request)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class TableServices:
    def __init__(self, spark, spec: TableSpec, small_file_bytes: int | None = None):
        for part in (spec.database, spec.name):
            if not _IDENT.match(part):
                raise MaintenanceError(f"table name part {part!r} is not a plain identifier")
        self.spark = spark
        self.spec = spec
        self.path = Path(spec.base_uri.removeprefix("file://"))
        self.small_file_bytes = small_file_bytes
        self._registered = False
        # The name this session's catalog knows the table by; keyed by location, so two tables (tests, or a
        # moved lake) in one long-lived session never resolve to each other.
        self.session_name = f"{spec.database}.{spec.name}_{hashlib.sha1(str(self.path).encode()).hexdigest()[:10]}"

    # --- plumbing -----------------------------------------------------------------------------------
    def _inventory(self) -> TableInventory:
        return scan(self.path, self.small_file_bytes) if self.small_file_bytes else scan(self.path)

    def register(self) -> None:
        """Make the table known to this session's catalog (procedures such as run_clean need a name)."""
        if self._registered:
            return
        if not (self.path / ".hoodie").exists():
            raise MaintenanceError(f"no Hudi table at {self.path}; has ingestion committed yet?")
        for key, value in {**self.spec.table_options(), **self.spec.concurrency_options()}.items():
            self.spark.conf.set(key, value)
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {self.spec.database}")
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS {self.session_name} USING hudi LOCATION {_q(str(self.path))}"
        )
        self._registered = True

    def _options(self, extra: dict[str, str] | None = None) -> str:
        """Options for a procedure: they replace the procedure's defaults wholesale, so they carry the
        table's own options, the lock, and the service's settings."""
        opts = {**self.spec.table_options(), **self.spec.concurrency_options(), **(extra or {})}
        return ",".join(f"{k}={v}" for k, v in opts.items())

    def _run(self, service: str, body) -> ServiceRun:
        self.register()
        before = self._inventory()
        started = time.monotonic()
        instants, details = body()
        after = self._inventory()
        run = ServiceRun(service, before, after, time.monotonic() - started, instants, details)
        log.info("%s: %s", service, run.metadata())
        return run

    # --- services -----------------------------------------------------------------------------------
    def optimize(self, target_file_bytes: int = 128 * 1024 * 1024) -> ServiceRun:
        """Clustering on COPY_ON_WRITE, compaction on MERGE_ON_READ."""
        if self.spec.table_type is TableType.MERGE_ON_READ:
            return self.compact()
        return self.cluster(target_file_bytes)

    def cluster(self, target_file_bytes: int = 128 * 1024 * 1024) -> ServiceRun:
        if self.spec.index is IndexType.BUCKET:
            raise MaintenanceError("clustering rewrites file groups, which a bucket-indexed table fixes per bucket "
                                   "(Hudi refuses it); its file sizes come from OBS_TABLE_BUCKETS and compaction")
        small = self.small_file_bytes or 8 * 1024 * 1024
        options = self._options({
            "hoodie.clustering.plan.strategy.small.file.limit": str(small),
            "hoodie.clustering.plan.strategy.target.file.max.bytes": str(target_file_bytes),
            "hoodie.clustering.plan.strategy.max.num.groups": "1000",
            "hoodie.clustering.updates.strategy":
                "org.apache.hudi.client.clustering.update.strategy.SparkAllowUpdateStrategy",
        })

        def body():
            rows = self.spark.sql(
                f"CALL run_clustering(path => {_q(str(self.path))}, op => 'scheduleAndExecute', "
                f"options => {_q(options)})"
            ).collect()
            return [r["timestamp"] for r in rows], {"file_groups_rewritten": sum(r["input_group_size"] or 0 for r in rows)}

        return self._run("clustering", body)

    def compact(self) -> ServiceRun:
        def body():
            rows = self.spark.sql(
                f"CALL run_compaction(op => 'scheduleAndExecute', path => {_q(str(self.path))}, "
                f"options => {_q(self._options(COMPACT_EVERY_TIME))})"
            ).collect()
            return [r["timestamp"] for r in rows], {"file_slices_compacted": sum(r["operation_size"] or 0 for r in rows)}

        return self._run("compaction", body)

    def clean(self) -> ServiceRun:
        spec = self.spec
        retention = (f"retain_commits => {int(spec.time_travel_horizon_commits)}" if spec.time_travel_horizon_commits
                     else f"hours_retained => {int(spec.time_travel_horizon_hours)}")

        def body():
            rows = self.spark.sql(
                f"CALL run_clean(table => {_q(self.session_name)}, clean_policy => {_q(spec.clean_policy)}, "
                f"{retention}, options => {_q(self._options(spec.retention_options()))})"
            ).collect()
            return ([r["start_clean_time"] for r in rows if r["start_clean_time"]],
                    {"files_deleted": sum(r["total_files_deleted"] or 0 for r in rows),
                     "earliest_commit_to_retain": next((r["earliest_commit_to_retain"] for r in rows
                                                         if r["earliest_commit_to_retain"]), ""),
                     "horizon": (f"{spec.time_travel_horizon_commits} commits" if spec.time_travel_horizon_commits
                                 else f"{spec.time_travel_horizon_hours} hours")})

        return self._run("cleaning", body)

    def archive(self, min_commits: int = 20, max_commits: int = 30, retain_commits: int = 10) -> ServiceRun:
        def body():
            rows = self.spark.sql(
                f"CALL archive_commits(path => {_q(str(self.path))}, min_commits => {int(min_commits)}, "
                f"max_commits => {int(max_commits)}, retain_commits => {int(retain_commits)})"
            ).collect()
            return [], {"result": rows[0]["result"] if rows else -1}

        return self._run("archival", body)

    def savepoint(self, instant: str, comment: str = "") -> bool:
        if not _INSTANT.match(instant):
            raise MaintenanceError(f"{instant!r} is not a 17-digit commit instant")
        self.register()
        rows = self.spark.sql(
            f"CALL create_savepoint(path => {_q(str(self.path))}, commit_time => {_q(instant)}, "
            f"user => 'obs-platform', comments => {_q(comment[:200])})"
        ).collect()
        return bool(rows and rows[0][0])

    def release_savepoint(self, instant: str) -> bool:
        if not _INSTANT.match(instant):
            raise MaintenanceError(f"{instant!r} is not a 17-digit commit instant")
        self.register()
        rows = self.spark.sql(
            f"CALL delete_savepoint(path => {_q(str(self.path))}, instant_time => {_q(instant)})"
        ).collect()
        return bool(rows and rows[0][0])

    def savepoints(self) -> list[str]:
        self.register()
        return [r[0] for r in self.spark.sql(f"CALL show_savepoints(path => {_q(str(self.path))})").collect()]
