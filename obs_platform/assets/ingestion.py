"""The streaming ingestion as a long-running Dagster job, kept alive by a sensor."""


from dagster import (
    AssetMaterialization,
    DagsterRunStatus,
    DefaultSensorStatus,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)

from obs_platform.assets.resources import PlatformSettings
from obs_platform.assets.table import PIPELINE_EVENTS_KEY
from obs_platform.ingestion.stream import CommitReport, run_ingestion

ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def commit_materialization(report: CommitReport) -> AssetMaterialization:
    metadata = {
        "instant": report.instant or "",
        "batch_id": report.batch_id,
        "rows_written": report.rows_written,
        "rows_inserted": report.rows_inserted,
        "rows_updated": report.rows_updated,
        "dead_letters": report.dead_letters,
        "bytes_written": report.bytes_written,
        "batch_seconds": report.batch_seconds,
    }
    if report.oldest_publish_to_commit_s is not None:
        metadata["publish_to_commit_seconds"] = report.oldest_publish_to_commit_s
        metadata["publish_to_commit_median_seconds"] = report.median_publish_to_commit_s
    metadata["backlog_waiting"] = report.hit_batch_limit
    return AssetMaterialization(asset_key=PIPELINE_EVENTS_KEY, description="Hudi commit", metadata=metadata)


@op(description="Runs the Pub/Sub -> Hudi stream until the run is terminated; logs each commit as a "
                "materialization of pipeline_events.")
def run_streaming_ingestion(context: OpExecutionContext, platform: PlatformSettings) -> None:
    settings = platform.get()
    context.log.info(f"streaming {settings.subscription} into {settings.table_uri}")

    def on_commit(report: CommitReport) -> None:
        if report.instant:
            context.log_event(commit_materialization(report))
        if report.dead_letters:
            context.log.warning(f"batch {report.batch_id}: {report.dead_letters} dead letters kept")

    run_ingestion(settings, on_commit=on_commit)


@job(description="The long-running streaming ingestion (Pub/Sub -> Spark -> Hudi). A sensor keeps it running.",
     tags={"obs/kind": "streaming"})
def streaming_ingestion():
    run_streaming_ingestion()


def decide_ingestion_start(active_runs: int, now_ts: float, autostart: bool = True) -> RunRequest | SkipReason:
    """Start the stream when no run of it is active (first start, or after a crash or kill)."""
    if not autostart:
        return SkipReason("OBS_INGESTION_AUTOSTART is off: start the streaming_ingestion job by hand")
    if active_runs:
        return SkipReason(f"{active_runs} ingestion run(s) active")
    return RunRequest(run_key=f"ingestion-{int(now_ts)}", tags={"obs/started-by": "keepalive"})


@sensor(job=streaming_ingestion, minimum_interval_seconds=15, default_status=DefaultSensorStatus.RUNNING,
        description="Keeps exactly one streaming ingestion run alive; restarts it when it dies.")
def ingestion_keepalive(context: SensorEvaluationContext, platform: PlatformSettings):
    import time

    runs = context.instance.get_run_records(
        RunsFilter(job_name=streaming_ingestion.name, statuses=ACTIVE_STATUSES), limit=5
    )
    return decide_ingestion_start(len(runs), time.time(), platform.get().ingestion_autostart)
