"""The streaming ingestion as a long-running Dagster job, kept alive by a sensor.

The keep-alive restarts a run that died, and one that is still RUNNING in Dagster but *stalled*: its
micro-batch loop has not turned for ``stall_seconds`` (``OBS_INGESTION_STALL_SECONDS``; by default
max(180, 6 x (trigger_seconds + commit_max_delay_seconds))). A healthy stream turns at least once per trigger
plus the up-to-``commit_max_delay_seconds`` it waits for rows when traffic is light plus its write, with or
without traffic, and writes ``<home>/ingestion/heartbeat.json`` each time (``obs_platform.heartbeat``); a
loop that has not turned for that long commits nothing, however many messages wait (frozen, deadlocked,
stuck in a call that never returns). Until its first beat a run is measured from its start, with
``STARTUP_SECONDS`` more for Spark's start (~30 s here). A stalled run is terminated through Dagster (the run launcher's
terminate, which asks the run to stop); a frozen process cannot act on that, so its process tree (the op's
process, recorded in the run's ``obs/pid`` tag, and the Spark JVM under it) is then killed, the run marked
canceled, and a new run requested in the same evaluation. Uncommitted messages were never acked: Pub/Sub
redelivers them to the new run.
"""

import os
import signal
import time

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
from obs_platform.heartbeat import read_heartbeat
from obs_platform.ingestion.stream import CommitReport, run_ingestion
from obs_platform.settings import Settings

PID_TAG = "obs/pid"
STALL_ENV = "OBS_INGESTION_STALL_SECONDS"
STARTUP_SECONDS = 120.0  # a run's first turn comes after Spark's start (~30 s here); allowed on top of the limit

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
    # which process runs the stream: the keep-alive matches it with the heartbeat, and kills it if frozen
    context.instance.add_run_tags(context.run_id, {PID_TAG: str(os.getpid())})

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


def decide_ingestion_start(active_runs: int, now_ts: float, autostart: bool = True,
                           restarted: str = "") -> RunRequest | SkipReason:
    """Start the stream when no run of it is active (first start, after a crash or kill, or after the
    keep-alive terminated a stalled run: ``restarted`` says which and why)."""
    if not autostart:
        return SkipReason("OBS_INGESTION_AUTOSTART is off: start the streaming_ingestion job by hand")
    if active_runs:
        return SkipReason(f"{active_runs} ingestion run(s) active")
    tags = {"obs/started-by": "keepalive"}
    if restarted:
        tags["obs/reason"] = restarted[:200]
    return RunRequest(run_key=f"ingestion-{int(now_ts)}", tags=tags)


def stall_seconds(settings: Settings) -> float:
    explicit = os.environ.get(STALL_ENV)
    if explicit:
        return float(explicit)
    return max(180.0, 6 * (settings.trigger_seconds + settings.commit_max_delay_seconds))


def stall_reason(run_started_at: float | None, run_pid: int | None, beat_pid: int | None,
                 beat_turned_at: float | None, now_ts: float, limit: float,
                 startup: float = STARTUP_SECONDS) -> str | None:
    """Why a RUNNING ingestion run counts as stalled, or None while it is alive. Its last sign of life is
    its own heartbeat's last turn (a beat from another process, e.g. an earlier run, does not count),
    else its start, which gets ``startup`` more seconds (Spark's start before the first turn)."""
    own_beat = beat_turned_at is not None and (run_pid is None or beat_pid == run_pid)
    last = beat_turned_at if own_beat else run_started_at
    if last is None:
        return None
    quiet = now_ts - last
    if quiet <= limit + (0 if own_beat else startup):
        return None
    since = "its micro-batch loop last turned" if own_beat else "it started and it has not turned once since"
    return f"stalled: {quiet:.0f} s since {since} (limit {limit:.0f} s, {STALL_ENV})"


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    tree: list[int] = []

    def walk(p: int) -> None:
        for child in children.get(p, []):
            walk(child)
        tree.append(p)

    walk(pid)
    return tree


def _kill_and_await(pids: list[int], timeout: float) -> None:
    """SIGKILL each (it reaches a stopped, SIGSTOP'd, process too) and wait until each has exited (its pidfd
    turns readable), so the next run never starts beside the old one's JVM."""
    import select

    fds = []
    for p in pids:
        try:
            fds.append(os.pidfd_open(p))
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, OSError):
            continue
    deadline = time.monotonic() + timeout
    try:
        pending = list(fds)
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select(pending, [], [], max(0.0, deadline - time.monotonic()))
            pending = [fd for fd in pending if fd not in ready]
    finally:
        for fd in fds:
            os.close(fd)


def terminate_stalled_run(instance, run, pid: int | None, reason: str) -> None:
    """Dagster's termination first; then, the process being frozen or hung, its tree is killed."""
    instance.report_engine_event(f"ingestion keep-alive: {reason}; terminating the run", run)
    try:
        instance.run_launcher.terminate(run.run_id)
    except Exception as exc:  # a launcher that cannot reach it: the kill below still ends it
        instance.report_engine_event(f"run launcher could not terminate the run: {exc}", run)
    if pid and os.path.exists(f"/proc/{pid}"):
        _kill_and_await(_process_tree(pid), timeout=30.0)
    current = instance.get_run_by_id(run.run_id)
    if current is not None and not current.is_finished:
        instance.report_run_canceled(current, message=f"terminated by the ingestion keep-alive: {reason}")


@sensor(job=streaming_ingestion, minimum_interval_seconds=15, default_status=DefaultSensorStatus.RUNNING,
        description="Keeps exactly one streaming ingestion run alive: starts it when none is active, and "
                    "terminates and restarts a RUNNING one whose micro-batch loop stalled (no turn, hence no "
                    "commit, for OBS_INGESTION_STALL_SECONDS).")
def ingestion_keepalive(context: SensorEvaluationContext, platform: PlatformSettings):
    settings = platform.get()
    records = context.instance.get_run_records(
        RunsFilter(job_name=streaming_ingestion.name, statuses=ACTIVE_STATUSES), limit=5
    )
    now = time.time()
    beat = read_heartbeat(settings.home)
    limit = stall_seconds(settings)
    active, restarted = 0, ""
    for record in records:
        run = record.dagster_run
        pid = int(run.tags[PID_TAG]) if run.tags.get(PID_TAG, "").isdigit() else None
        reason = stall_reason(record.start_time, pid, beat.pid if beat else None, beat.turned_at if beat else None,
                              now, limit) if run.status == DagsterRunStatus.STARTED else None
        if reason:
            context.log.warning(f"ingestion run {run.run_id}: {reason}")
            terminate_stalled_run(context.instance, run, pid, reason)
            restarted = f"run {run.run_id} {reason}"
        else:
            active += 1
    return decide_ingestion_start(active, now, settings.ingestion_autostart, restarted)
