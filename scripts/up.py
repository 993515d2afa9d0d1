#!/usr/bin/env python3
"""`make up`: start the whole platform on the embedded defaults and keep it running until Ctrl-C/SIGTERM.

Starts, in order: the Pub/Sub emulator (topic + subscription), the Dagster instance (created once, then the
webserver and the daemon; the daemon's keepalive sensor launches the streaming ingestion), the BFF, the
dashboard, demo traffic and the SQL endpoint. Logs go to $OBS_HOME/log/<service>.log.

It says "up" only when every service answers (the webserver has loaded the code location, the daemon has
evaluated a sensor); if one does not come up, or dies later, it names it, prints the end of its log, stops
everything it started and exits non-zero. On Ctrl-C or SIGTERM every service is stopped, newest first, and
no process is left behind (each runs in its own process group, which is signalled whole).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from obs_platform.bus.client import ensure_topic_and_subscription  # noqa: E402
from obs_platform.bus.emulator import EmulatorError, port_open, start_emulator  # noqa: E402
from obs_platform.local.dagster import sensor_ticks, start_pair  # noqa: E402
from obs_platform.local.processes import Service, ServiceFailed, http_ok, start, stop_all, wait_until  # noqa: E402
from obs_platform.settings import Settings, get_settings  # noqa: E402

log = logging.getLogger("up")
FIRST_COMMIT_PATIENCE_S = 300  # warn (and say where to look) if no commit reached the BFF by then


class Stop(Exception):
    """Ctrl-C or SIGTERM arrived while starting."""


def check_ports(settings: Settings) -> str | None:
    host = settings.bind_host
    for name, port in [("Pub/Sub", settings.pubsub_port), ("Dagster", settings.dagster_port),
                       ("BFF", settings.bff_port), ("dashboard", settings.dashboard_port)]:
        if port_open(host, port):
            return (f"{name} port {host}:{port} is already in use: is the platform already up? "
                    f"(stop it, or set OBS_{name.upper().replace('/', '')}_PORT)")
    return None


def daemon_ticked(url: str, daemon: Service) -> bool:
    """The daemon has loaded the code location once a sensor of it has ticked; a failed tick is fatal."""
    ticks = sensor_ticks(url, "ingestion_keepalive", limit=1)
    if ticks and ticks[0]["status"] == "FAILURE":
        raise ServiceFailed(daemon, f"failed to evaluate the keepalive sensor: {ticks[0]['error']['message']}")
    return bool(ticks) and ticks[0]["status"] != "STARTED"


def start_platform(settings: Settings, services: list[Service], stopping) -> str:
    """Start every service, appending each to ``services`` the moment it exists; return the emulator kind."""
    host, log_dir = settings.bind_host, settings.home / "log"
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": f"{host}:{settings.pubsub_port}",
           "PYTHONUNBUFFERED": "1", "OBS_HOME": str(settings.home)}

    def step(what: str) -> None:
        if stopping():
            raise Stop()
        log.info(what)

    step("starting the Pub/Sub emulator")
    emulator = start_emulator(settings, log_path=log_dir / "pubsub.log")
    services.append(Service(f"pubsub ({emulator.kind})", emulator.process, log_dir / "pubsub.log"))
    ensure_topic_and_subscription(settings)
    log.info("Pub/Sub %s emulator on %s: topic %s, subscription %s", emulator.kind, emulator.address,
             settings.topic, settings.subscription)

    step("creating the Dagster instance, then starting its webserver and daemon (loading the code: ~20 s)")
    dagster_url = f"http://{host}:{settings.dagster_port}"
    _, daemon = start_pair(settings, env, log_dir, services)

    step("starting the BFF, the dashboard, demo traffic" + (" and the SQL endpoint" if settings.sql_endpoint else ""))
    bff = start("bff", [sys.executable, "-m", "bff"], env, log_dir, REPO, services)
    dash_env = {**env, "OBS_DASHBOARD_HOST": host, "OBS_DASHBOARD_PORT": str(settings.dashboard_port),
                "OBS_BFF_URL": settings.bff_url, "OBS_DAGSTER_URL": dagster_url}
    dashboard = start("dashboard", ["npm", "run", "--silent", "start"], dash_env, log_dir, REPO / "frontend",
                      services)
    start("demo", [sys.executable, "-m", "obs_platform.demo"], env, log_dir, REPO, services)
    if settings.sql_endpoint:  # OBS_SQL_ENDPOINT=false skips it on small machines
        start("sql-endpoint", [sys.executable, "-m", "obs_platform.sqlendpoint", "thrift-server"], env, log_dir,
              REPO, services)

    wait_until(bff, lambda: http_ok(f"{settings.bff_url}/api/health"), 120, "answering /api/health")
    wait_until(dashboard, lambda: http_ok(f"http://{host}:{settings.dashboard_port}/"), 120, "serving the page")
    wait_until(daemon, lambda: daemon_ticked(dagster_url, daemon), 120, "evaluating its sensors")
    return emulator.kind


def latest_commit(settings: Settings) -> str | None:
    with urllib.request.urlopen(f"{settings.bff_url}/api/health", timeout=5) as response:
        return json.load(response).get("latestCommit")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s up %(message)s", datefmt="%H:%M:%S")
    settings = get_settings()
    (settings.home / "log").mkdir(parents=True, exist_ok=True)
    if problem := check_ports(settings):
        log.error(problem)
        return 1

    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    services: list[Service] = []
    started_at = time.monotonic()
    try:
        try:
            kind = start_platform(settings, services, lambda: stopping)
        except Stop:
            return 130
        except ServiceFailed as exc:
            log.error("%s did not come up: %s\n%s", exc.service.name, exc.why, exc.service.log_tail())
            return 1
        except EmulatorError as exc:
            log.error("the Pub/Sub emulator did not come up: %s", exc)
            return 1
        host = settings.bind_host
        print(
            "\n  obs-platform is up (Ctrl-C stops everything)\n"
            f"    dashboard  http://{host}:{settings.dashboard_port}/\n"
            f"    BFF        {settings.bff_url}/docs   (API: {settings.bff_url}/api/events)\n"
            f"    Dagster    http://{host}:{settings.dagster_port}/   (the keepalive sensor starts the ingestion)\n"
            f"    Pub/Sub    {host}:{settings.pubsub_port} ({kind} emulator)\n"
            + (f"    SQL        PyHive/JDBC {host}:{settings.thrift_port} (Spark Thrift Server; metastore in "
               f"PostgreSQL on {host}:{settings.metastore_pg_port}; starts in ~15 s)\n" if settings.sql_endpoint else "")
            + f"    table      {settings.table_uri}\n"
            f"    logs       {settings.home / 'log'}/\n",
            flush=True,
        )
        first_commit = FirstCommitWatch(settings, started_at)
        while not stopping:
            for svc in services:
                if not svc.alive:
                    log.error("%s exited with %s; last lines of %s:\n%s", svc.name, svc.process.returncode,
                              svc.log_path, svc.log_tail())
                    return 1
            first_commit.check()
            time.sleep(1)
        return 0
    finally:
        if services:
            log.info("stopping...")
            stop_all(services)


class FirstCommitWatch:
    """Says when the first events reached the table (the stream's Spark start takes about a minute), and
    where to look if none has after FIRST_COMMIT_PATIENCE_S."""

    def __init__(self, settings: Settings, started_at: float):
        self.settings, self.started_at = settings, started_at
        self.done = self.warned = False

    def check(self) -> None:
        if self.done:
            return
        try:
            commit = latest_commit(self.settings)
        except OSError:
            commit = None
        waited = time.monotonic() - self.started_at
        if commit:
            log.info("first events committed (commit %s), %.0f s after start: the dashboard is live", commit, waited)
            self.done = True
        elif waited > FIRST_COMMIT_PATIENCE_S and not self.warned:
            self.warned = True
            s = self.settings
            log.warning("no commit yet after %.0f s: see the streaming_ingestion run in Dagster (http://%s:%d/runs) "
                        "and %s", waited, s.bind_host, s.dagster_port, s.home / "log" / "dagster-daemon.log")


if __name__ == "__main__":
    sys.exit(main())
