"""Cloud Storage on one machine: fake-gcs-server (Go, built by ``make emulator`` into emulator/fakegcs/bin).

Only a stand-in for the cluster profile and the storage layer's tests; production uses Cloud Storage. Clients
reach it with ``STORAGE_EMULATOR_HOST=http://HOST:PORT`` (``obs_platform.lakehouse.storage`` honours it, as
Google's own clients do).
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from obs_platform.bus.emulator import port_open
from obs_platform.errors import ObsPlatformError
from obs_platform.local.processes import stop_group
from obs_platform.settings import REPO_ROOT

log = logging.getLogger(__name__)

BINARY = REPO_ROOT / "emulator" / "fakegcs" / "bin" / "fake-gcs-server"


class FakeGcsError(ObsPlatformError, RuntimeError):
    pass


@dataclass
class RunningFakeGcs:
    host: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.process, timeout)


def start_fake_gcs(root: Path, port: int, host: str = "127.0.0.1", buckets: tuple[str, ...] = (),
                   timeout: float = 30.0) -> RunningFakeGcs:
    """Start fake-gcs-server (plain HTTP, objects kept under ``root``) with ``buckets`` created."""
    if not BINARY.exists():
        raise FakeGcsError(f"{BINARY} is missing; run `make emulator` (needs Go) to build it")
    if port_open(host, port):
        raise FakeGcsError(f"{host}:{port} is already in use")
    data = Path(root) / "objects"
    for bucket in buckets:  # a folder under -data is a bucket at start
        (Path(root) / "seed" / bucket).mkdir(parents=True, exist_ok=True)
    log_file = open(Path(root) / "fake-gcs.log", "ab")  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen(
        [str(BINARY), "-scheme", "http", "-host", host, "-port", str(port), "-backend", "filesystem",
         "-filesystem-root", str(data), "-data", str(Path(root) / "seed"), "-log-level", "warn",
         # public-host: the XML API (object_store's, hudi-rs's client) is served for requests to this host
         "-external-url", f"http://{host}:{port}", "-public-host", f"{host}:{port}"],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    running = RunningFakeGcs(host, port, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FakeGcsError(f"fake-gcs-server exited with {process.returncode}; see {root}/fake-gcs.log")
        if port_open(host, port):
            return running
        time.sleep(0.1)
    running.stop()
    raise FakeGcsError(f"fake-gcs-server did not listen on {host}:{port} within {timeout:.0f}s")
