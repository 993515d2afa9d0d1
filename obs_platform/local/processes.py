"""Start, watch and stop the platform's local services as process groups.

Used by ``make up`` (``scripts/up.py``) and by the tests that start the same services. Every service runs
in its own session (process group), so stopping it reaches its children too (the Dagster code server, the
run workers, Spark's JVM), and nothing is left behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ServiceFailed(RuntimeError):
    """A service did not come up (or died); the message names it and quotes the end of its log."""

    def __init__(self, service: Service, why: str):
        self.service = service
        self.why = why
        super().__init__(f"{service.name} {why}; last lines of {service.log_path}:\n{service.log_tail()}")


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                text = f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"    (no log: {exc})"
        return "\n".join(f"    {line}" for line in text.splitlines()[-lines:])


def start(name: str, cmd: Sequence[str], env: dict[str, str], log_dir: Path, cwd: Path,
          started: list[Service] | None = None) -> Service:
    """Start ``cmd`` in a new process group with its output in ``log_dir/<name>.log``. When ``started`` is
    given, the service is appended to it before anything else can fail, so the caller can always stop it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    service = Service(name, proc, log_path)
    if started is not None:
        started.append(service)
    log.info("started %-18s pid %-7d log %s", name, proc.pid, log_path)
    return service


def wait_until(service: Service, ready: Callable[[], bool], timeout: float, what: str,
               poll: float = 0.5) -> None:
    """Wait until ``ready()`` holds; raise ServiceFailed naming the service if it dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive:
            raise ServiceFailed(service, f"exited with {service.process.returncode} before {what}")
        try:
            if ready():
                return
        except Exception as exc:  # not ready yet
            log.debug("%s: %s", service.name, exc)
        time.sleep(poll)
    raise ServiceFailed(service, f"did not get to {what} within {timeout:.0f} s")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return 200 <= response.status < 300


def stop_all(services: Sequence[Service], grace: float = 20.0) -> None:
    """SIGTERM every process group, newest first; SIGKILL what is still alive after ``grace`` seconds."""
    for svc in reversed(services):
        _signal_group(svc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for svc in reversed(services):
        try:
            svc.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", svc.name, grace)
            _signal_group(svc, signal.SIGKILL)
            svc.process.wait()
        # the group may outlive its leader (a run worker, a JVM): make sure none of it stays
        _signal_group(svc, signal.SIGKILL)
        log.info("stopped %s", svc.name)


def _signal_group(svc: Service, sig: int) -> None:
    try:
        os.killpg(svc.process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM a child's process group (it was started with ``start_new_session``), SIGKILL it after
    ``timeout``; a no-op when it has exited."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=timeout)
