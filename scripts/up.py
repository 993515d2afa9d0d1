#!/usr/bin/env python3
"""`make up`: start the whole platform on the embedded defaults and keep it running until Ctrl-C/SIGTERM.

Starts, in order: the Pub/Sub emulator (topic + subscription), the Dagster webserver and daemon (the
daemon's keepalive sensor launches the streaming ingestion), the BFF, the dashboard and demo traffic.
Logs go to var/log/<service>.log. On Ctrl-C or SIGTERM every service is stopped, newest first, and no
process is left behind (each runs in its own process group, which is signalled whole).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from obs_platform.bus.client import ensure_topic_and_subscription  # noqa: E402
from obs_platform.bus.emulator import port_open, start_emulator  # noqa: E402
from obs_platform.settings import get_settings  # noqa: E402

log = logging.getLogger("up")
VENV_BIN = Path(sys.executable).parent


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path


def start(name: str, cmd: list[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO) -> Service:
    log_path = log_dir / f"{name}.log"
    out = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.info("started %-10s pid %-7d log %s", name, proc.pid, log_path.relative_to(REPO))
    return Service(name, proc, log_path)


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except Exception:  # not up yet
            time.sleep(0.5)
    return False


def stop_all(services: list[Service], grace: float = 20.0) -> None:
    for svc in reversed(services):
        if svc.process.poll() is None:
            try:
                os.killpg(svc.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for svc in reversed(services):
        remaining = max(0.1, deadline - time.monotonic())
        try:
            svc.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", svc.name, grace)
            try:
                os.killpg(svc.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            svc.process.wait()
        log.info("stopped %s", svc.name)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s up %(message)s", datefmt="%H:%M:%S")
    settings = get_settings()
    log_dir = settings.home / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    host = settings.bind_host
    for name, port in [("Pub/Sub", settings.pubsub_port), ("Dagster", settings.dagster_port),
                       ("BFF", settings.bff_port), ("dashboard", settings.dashboard_port)]:
        if port_open(host, port):
            log.error("%s port %s:%d is already in use: is the platform already up? (or set OBS_*_PORT)",
                      name, host, port)
            return 1

    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    env = {**os.environ, "PUBSUB_EMULATOR_HOST": f"{host}:{settings.pubsub_port}",
           "PYTHONUNBUFFERED": "1", "OBS_HOME": str(settings.home)}
    services: list[Service] = []
    try:
        emulator = start_emulator(settings, log_path=log_dir / "pubsub.log")
        services.append(Service(f"pubsub ({emulator.kind})", emulator.process, log_dir / "pubsub.log"))
        ensure_topic_and_subscription(settings)
        log.info("Pub/Sub %s emulator on %s: topic %s, subscription %s", emulator.kind, emulator.address,
                 settings.topic, settings.subscription)

        services.append(start("dagster-webserver", [str(VENV_BIN / "dagster-webserver"), "-h", host, "-p",
                                                    str(settings.dagster_port), "-w", "workspace.yaml"],
                              env, log_dir))
        services.append(start("dagster-daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                              env, log_dir))
        services.append(start("bff", [sys.executable, "-m", "bff"], env, log_dir))
        dash_env = {**env, "OBS_DASHBOARD_HOST": host, "OBS_DASHBOARD_PORT": str(settings.dashboard_port),
                    "OBS_BFF_URL": settings.bff_url, "OBS_DAGSTER_URL": f"http://{host}:{settings.dagster_port}"}
        services.append(start("dashboard", ["npm", "run", "--silent", "start"], dash_env, log_dir, REPO / "frontend"))
        services.append(start("demo", [sys.executable, "-m", "obs_platform.demo"], env, log_dir))
        if settings.sql_endpoint:  # OBS_SQL_ENDPOINT=false skips it on small machines
            services.append(start("sql-endpoint", [sys.executable, "-m", "obs_platform.sqlendpoint", "thrift-server"],
                                  env, log_dir))

        ok = all(
            wait_http(url, 120, svc.process) for url, svc in [
                (f"{settings.bff_url}/api/health", services[3]),
                (f"http://{host}:{settings.dashboard_port}/", services[4]),
                (f"http://{host}:{settings.dagster_port}/server_info", services[1]),
            ]
        )
        if not ok:
            log.error("a service did not come up; see the logs in %s", log_dir)
            return 1
        print(
            "\n  obs-platform is up (Ctrl-C stops everything)\n"
            f"    dashboard  http://{host}:{settings.dashboard_port}/\n"
            f"    BFF        {settings.bff_url}/docs   (API: {settings.bff_url}/api/events)\n"
            f"    Dagster    http://{host}:{settings.dagster_port}/   (the keepalive sensor starts the ingestion)\n"
            f"    Pub/Sub    {host}:{settings.pubsub_port} ({emulator.kind} emulator)\n"
            + (f"    SQL        PyHive/JDBC {host}:{settings.thrift_port} (Spark Thrift Server; metastore in "
               f"PostgreSQL on {host}:{settings.metastore_pg_port}; starts in ~15 s)\n" if settings.sql_endpoint else "")
            + f"    table      {settings.table_uri}\n"
            f"    logs       {log_dir}/\n",
            flush=True,
        )
        while not stopping:
            for svc in services:
                if svc.process.poll() is not None:
                    log.error("%s exited with %s; see %s", svc.name, svc.process.returncode, svc.log_path)
                    stopping = True
            time.sleep(1)
        return 0
    finally:
        log.info("stopping...")
        stop_all(services)


if __name__ == "__main__":
    sys.exit(main())
