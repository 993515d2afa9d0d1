"""Start and stop a local Pub/Sub emulator.

Google's official emulator (``gcloud beta emulators pubsub start``) where gcloud is installed; otherwise
the Go fake ``cloud.google.com/go/pubsub/v2/pstest`` behind the small main in ``emulator/pstest``, built
from the Go module proxy by ``make``. Both speak the same gRPC API; the Python client reaches either
through ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from obs_platform.local.processes import stop_group
from obs_platform.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

PSTEST_BINARY = REPO_ROOT / "emulator" / "pstest" / "bin" / "pstest-emulator"


class EmulatorError(RuntimeError):
    pass


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def choose_kind(settings: Settings) -> str:
    """Which emulator to run: ``gcloud`` when it is installed (and not overridden), else ``pstest``."""
    if settings.pubsub_emulator in ("gcloud", "pstest"):
        return settings.pubsub_emulator
    if shutil.which("gcloud") and _gcloud_has_emulator():
        return "gcloud"
    return "pstest"


def _gcloud_has_emulator() -> bool:
    sdk = Path(shutil.which("gcloud") or "").resolve().parent.parent
    candidates = [sdk / "platform" / "pubsub-emulator", Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator")]
    return any(c.exists() for c in candidates)


def emulator_command(kind: str, host: str, port: int, data_dir: Path) -> list[str]:
    if kind == "gcloud":
        return [
            "gcloud", "beta", "emulators", "pubsub", "start",
            f"--host-port={host}:{port}", f"--data-dir={data_dir}", "--quiet",
        ]
    if not PSTEST_BINARY.exists():
        raise EmulatorError(
            f"{PSTEST_BINARY} is missing and gcloud's emulator is not installed; run `make emulator` to build it"
        )
    return [str(PSTEST_BINARY), f"--host={host}", f"--port={port}"]


@dataclass
class RunningEmulator:
    kind: str
    host: str
    port: int
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        stop_group(self.process, timeout)


def start_emulator(
    settings: Settings, port: int | None = None, kind: str | None = None, log_path: Path | None = None,
    timeout: float = 60.0,
) -> RunningEmulator:
    """Start an emulator on ``bind_host:port`` and wait until it accepts connections."""
    kind = kind or choose_kind(settings)
    host, port = settings.bind_host, port or settings.pubsub_port
    if port_open(host, port):
        raise EmulatorError(f"port {host}:{port} is already in use; stop what runs there or set OBS_PUBSUB_PORT")
    data_dir = settings.home / "pubsub"
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log_path or os.devnull, "ab")  # noqa: SIM115 - owned by the child process
    process = subprocess.Popen(
        emulator_command(kind, host, port, data_dir), stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    running = RunningEmulator(kind, host, port, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(f"{kind} Pub/Sub emulator exited with {process.returncode}; see {log_path}")
        if port_open(host, port):
            log.info("%s Pub/Sub emulator listening on %s", kind, running.address)
            return running
        time.sleep(0.2)
    running.stop()
    raise EmulatorError(f"{kind} Pub/Sub emulator did not listen on {host}:{port} within {timeout:.0f}s")
