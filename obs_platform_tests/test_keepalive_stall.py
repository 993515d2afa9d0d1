"""The keep-alive restarts a stream that is RUNNING in Dagster but frozen (SIGSTOP of its process tree while
publishers keep sending), not only a dead run; the messages that waited reach the table through the new run."""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SkipReason,
    build_sensor_context,
)
from dagster._core.instance.ref import InstanceRef
from hudi import HudiReadOptions, HudiTable

from obs_platform.assets.ingestion import PID_TAG, _process_tree, ingestion_keepalive, stall_reason
from obs_platform.assets.resources import PlatformSettings
from obs_platform.bus.client import ensure_topic_and_subscription
from obs_platform.heartbeat import read_heartbeat
from obs_platform.sdk import EventEmitter
from obs_platform.settings import REPO_ROOT
from obs_platform_tests.test_ingestion_faults import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.pubsub]

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
STALL_SECONDS = 12


def test_stall_rule_is_a_plain_function():
    # its own beat counts; a beat from another process (an earlier run) does not; before any beat, its start
    assert stall_reason(1000.0, 42, 42, 1090.0, 1100.0, 60) is None
    assert "since its micro-batch loop last turned" in stall_reason(1000.0, 42, 42, 1030.0, 1100.0, 60)
    assert "has not turned once" in stall_reason(1000.0, 42, 7, 1099.0, 1100.0, 60, startup=30)
    assert stall_reason(1000.0, 42, 7, 1099.0, 1100.0, 60, startup=60) is None  # Spark may still be starting
    assert stall_reason(1000.0, 42, None, None, 1050.0, 60) is None


def table_ids(settings) -> set[str]:
    if not (settings.table_path / ".hoodie").exists():
        return set()
    try:
        batches = HudiTable(settings.table_uri).read(HudiReadOptions(projection=["eventId"]))
    except Exception:  # a read racing the first commit's files: not there yet
        return set()
    return set(pa.Table.from_batches(batches).column("eventId").to_pylist()) if batches else set()


def publish(settings, ids) -> None:
    emitter = EventEmitter.from_settings(settings)
    for i, event_id in enumerate(ids):
        emitter.emit({"eventId": event_id, "correlationId": "keepalive", "pipelineName": "orders",
                      "stageName": "load", "status": "RUNNING", "eventTimestamp": T0,
                      "lastUpdatedAt": T0 + timedelta(seconds=i)})
    emitter.flush()


def test_keepalive_restarts_a_running_but_frozen_stream(settings, tmp_path, monkeypatch):
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    env = {"OBS_HOME": str(settings.home), "OBS_TOPIC": settings.topic, "OBS_SUBSCRIPTION": settings.subscription,
           "OBS_TABLE": settings.table, "OBS_PUBSUB_PORT": str(settings.pubsub_port),
           "OBS_ACK_DEADLINE_SECONDS": str(settings.ack_deadline_seconds), "OBS_TRIGGER_SECONDS": "1",
           "OBS_COMMIT_MAX_DELAY_SECONDS": "1", "OBS_SPARK_MASTER": "local[2]", "OBS_SPARK_DRIVER_MEMORY": "1g",
           "OBS_INGESTION_STALL_SECONDS": str(STALL_SECONDS)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ensure_topic_and_subscription(settings)
    platform = PlatformSettings(home=str(settings.home))
    started: list[subprocess.Popen] = []

    def start_run(tags: dict[str, str]) -> subprocess.Popen:
        """What the daemon does with the sensor's RunRequest: one run of streaming_ingestion."""
        import json

        proc = subprocess.Popen(
            [str(REPO_ROOT / ".venv" / "bin" / "dagster"), "job", "execute", "-m", "obs_platform.definitions",
             "-j", "streaming_ingestion", "--tags", json.dumps(tags)],
            cwd=REPO_ROOT, env={**os.environ, "DAGSTER_HOME": str(dagster_home), "PYSPARK_PYTHON": sys.executable},
            stdout=open(tmp_path / f"run-{len(started)}.log", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        started.append(proc)
        return proc

    def evaluate(instance):
        return ingestion_keepalive(build_sensor_context(instance=instance, resources={"platform": platform}))

    def runs(instance, statuses=None):
        return instance.get_runs(RunsFilter(job_name="streaming_ingestion", statuses=statuses or []))

    try:
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
            first_request = evaluate(instance)
            assert isinstance(first_request, RunRequest)  # nothing running: start one
            start_run(first_request.tags)

            def running_with_pid():
                active = runs(instance, [DagsterRunStatus.STARTED])
                return active and PID_TAG in active[0].tags
            wait_for(running_with_pid, 120, "the ingestion run to start")
            [first] = runs(instance, [DagsterRunStatus.STARTED])
            pid = int(first.tags[PID_TAG])
            publish(settings, [f"before-{i}" for i in range(5)])
            wait_for(lambda: {f"before-{i}" for i in range(5)} <= table_ids(settings), 120, "the first commit")
            # the loop beats after each turn: the op's own process does
            wait_for(lambda: getattr(read_heartbeat(settings.home), "pid", None) == pid, 30, "the stream's heartbeat")

            healthy = evaluate(instance)
            assert isinstance(healthy, SkipReason) and healthy.skip_message == "1 ingestion run(s) active"

            # freeze the stream (its op's process and the Spark JVM under it); publishers keep sending
            frozen = _process_tree(pid)
            assert len(frozen) > 1, "the Spark JVM should run under the op's process"
            for p in frozen:
                os.kill(p, signal.SIGSTOP)
            waiting = [f"during-{i}" for i in range(20)]
            publish(settings, waiting)
            assert isinstance(evaluate(instance), SkipReason)  # frozen for less than the limit: left alone

            outcome: list = []

            def restarted():
                outcome[:] = [evaluate(instance)]
                return isinstance(outcome[0], RunRequest)
            wait_for(restarted, STALL_SECONDS + 60, "the keep-alive to see the stall", interval=1.0)
            request = outcome[0]
            assert request.tags["obs/started-by"] == "keepalive"
            assert first.run_id in request.tags["obs/reason"] and "stalled" in request.tags["obs/reason"]
            assert not any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in frozen), "frozen tree alive"
            old = instance.get_run_by_id(first.run_id)
            assert old.status in (DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE)
            assert table_ids(settings).isdisjoint(waiting)  # the frozen run committed none of them

            start_run(request.tags)  # the daemon would launch the request; nothing waited in vain
            wait_for(lambda: set(waiting) <= table_ids(settings), 180, "the new run to commit what waited")
            [second] = runs(instance, [DagsterRunStatus.STARTED])
            wait_for(lambda: getattr(read_heartbeat(settings.home), "pid", None) == int(second.tags[PID_TAG]), 30,
                     "the new run's heartbeat")
            assert evaluate(instance).skip_message == "1 ingestion run(s) active"  # the new run is left alone
    finally:
        for proc in started:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(30)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
