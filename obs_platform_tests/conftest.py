"""Fixtures on real parts: the Pub/Sub emulator, a local Spark session with Hudi, the BFF over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from obs_platform.settings import REPO_ROOT, Settings

JAVA17 = Path("/usr/lib/jvm/java-17-openjdk-amd64")
if JAVA17.exists():
    os.environ.setdefault("JAVA_HOME", str(JAVA17))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def pytest_configure(config):
    # the SQL endpoint (PostgreSQL metastore + Spark Thrift Server), session-scoped, for any test that asks
    config.pluginmanager.import_plugin("obs_platform_tests.sql_fixtures")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception as exc:  # not up yet
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("obs-home")


@pytest.fixture(scope="session")
def emulator(session_home) -> Iterator[str]:
    """The Pub/Sub emulator this machine has (gcloud's if installed, else the Go fallback) on a free port."""
    from obs_platform.bus.emulator import start_emulator

    settings = Settings(home=session_home, pubsub_port=free_port())
    running = start_emulator(settings, log_path=session_home / "pubsub.log")
    os.environ["PUBSUB_EMULATOR_HOST"] = running.address
    yield running.address
    running.stop()


@pytest.fixture
def settings(tmp_path, emulator) -> Settings:
    """Settings for one test: its own home (lake, checkpoints) and its own topic/subscription."""
    host, port = emulator.split(":")
    suffix = tmp_path.name[-24:].replace("_", "-").lower()
    return Settings(
        home=tmp_path, bind_host=host, pubsub_port=int(port), topic=f"events-{suffix}",
        subscription=f"events-{suffix}-hudi", ack_deadline_seconds=10, trigger_seconds=1.0,
    )


@pytest.fixture(scope="session")
def spark(session_home):
    """One local Spark session with Hudi's bundle for the whole run (start-up costs seconds)."""
    from obs_platform.lakehouse.spark import build_spark_session

    session = build_spark_session(Settings(home=session_home), "obs-platform-tests")
    yield session
    session.stop()


class BffServer:
    def __init__(self, url: str, process: subprocess.Popen):
        self.url = url
        self.process = process


@pytest.fixture
def bff_for() -> Iterator:
    """Start the real BFF (uvicorn, over HTTP) on a free port for given settings."""
    started: list[subprocess.Popen] = []

    def start(settings: Settings) -> BffServer:
        port = free_port()
        env = {**os.environ, "OBS_HOME": str(settings.home), "OBS_BFF_PORT": str(port),
               "OBS_BIND_HOST": "127.0.0.1", "OBS_TABLE": settings.table, "OBS_DATABASE": settings.database}
        proc = subprocess.Popen([sys.executable, "-m", "bff"], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/health", 30)
        return BffServer(url, proc)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def run_in_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def drain_into_table(spark, settings: Settings, max_batches: int = 20, on_commit=None) -> list:
    """Run the real micro-batch writer until the subscription is empty; return its commit reports."""
    from obs_platform.bus.client import ensure_topic_and_subscription
    from obs_platform.ingestion.pubsub_reader import PubSubBatchReader
    from obs_platform.ingestion.stream import MicroBatchWriter

    ensure_topic_and_subscription(settings)
    reports: list = []
    reader = PubSubBatchReader(settings, first_wait_s=2.0)
    writer = MicroBatchWriter(spark, settings, reader, on_commit=reports.append)
    try:
        for batch_id in range(max_batches):
            before = reader.stats.pulled
            writer(None, batch_id)
            writer.flush()  # acked and reported before the next pull (the stream acks beside the next write)
            if reader.stats.pulled == before:
                break
    finally:
        reader.close()
    return reports
