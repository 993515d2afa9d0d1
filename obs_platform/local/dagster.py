"""The local Dagster instance (SQLite under ``OBS_HOME``) and the webserver + daemon pair that serve it.

Why the instance is created before the pair starts: SQLite storage creates its tables and stamps its
alembic revision on first use, with a check-then-stamp that is not atomic across processes. A webserver and
a daemon started at once on an empty folder could both find no revision and both stamp one, leaving
``alembic_version`` with two rows ("more than one head present"), after which the code location fails to
load in both. ``prepare_instance`` runs that first use once, in one process, before either starts.

    python -m obs_platform.local.dagster prepare     # what `make up` does before starting the pair
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from obs_platform.local.processes import Service, ServiceFailed, start, wait_until
from obs_platform.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

# workspace.yaml loads one code location: the module that holds the platform's Definitions
CODE_LOCATION = "obs_platform.definitions"
REPOSITORY = "__repository__"


def dagster_env(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of every Dagster process: the repo's dagster.yaml, storage under OBS_HOME."""
    env = dict(base)
    env["DAGSTER_HOME"] = str(REPO_ROOT)  # where dagster.yaml is; it points its storage at the folders below
    env["OBS_HOME"] = str(settings.home)
    # always from these settings: an inherited value (the Makefile exports one for `dagster` run by hand)
    # would put every home's instance in one folder
    env["OBS_DAGSTER_DIR"] = str(settings.dagster_dir)
    env["OBS_DAGSTER_COMPUTE_LOGS"] = str(settings.dagster_dir / "logs")
    return env


def prepare_instance(env: Mapping[str, str], timeout: float = 120.0) -> None:
    """Create (or migrate) the instance's storage once, in one process, before the webserver and the
    daemon open it."""
    result = subprocess.run([sys.executable, "-m", "obs_platform.local.dagster", "prepare"], env=dict(env),
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"could not prepare the Dagster instance in {env.get('OBS_DAGSTER_DIR')}:\n"
                           f"{result.stderr[-4000:]}")


def _prepare() -> None:
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:  # builds the run, event-log and schedule storages
        instance.upgrade()  # a no-op on a fresh instance; migrates one made by an older dagster


# --- is the code location loaded? ---------------------------------------------------------------------------
def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 10.0) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.load(response)
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


@dataclass(frozen=True)
class LocationStatus:
    name: str
    load_status: str           # LOADING | LOADED
    error: str | None          # the load error (a PythonError's message), None when it loaded


def code_locations(url: str) -> list[LocationStatus]:
    """The webserver's view of its code locations."""
    data = graphql(url, """{ workspaceOrError { __typename ... on Workspace { locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        raise RuntimeError(f"workspace unavailable: {workspace}")
    return [LocationStatus(e["name"], e["loadStatus"],
                           (e["locationOrLoadError"] or {}).get("message")
                           if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError" else None)
            for e in workspace["locationEntries"]]


def sensor_ticks(url: str, sensor: str, limit: int = 5) -> list[dict]:
    """The newest ticks of one of the platform's sensors: evidence that the daemon loaded the code."""
    data = graphql(url, """query($sel: SensorSelector!, $limit: Int) { sensorOrError(sensorSelector: $sel) {
        __typename ... on Sensor { sensorState { ticks(limit: $limit) { status skipReason error { message } } } }
        ... on PythonError { message } } }""",
                   {"sel": {"repositoryLocationName": CODE_LOCATION, "repositoryName": REPOSITORY,
                            "sensorName": sensor}, "limit": limit})
    result = data["sensorOrError"]
    if result["__typename"] != "Sensor":
        raise RuntimeError(f"sensor {sensor}: {result}")
    return result["sensorState"]["ticks"]


def location_loaded(url: str) -> bool:
    """True once every code location has loaded; raises with the load error if one failed."""
    statuses = code_locations(url)
    for status in statuses:
        if status.error:
            raise LocationLoadError(status)
    return bool(statuses) and all(s.load_status == "LOADED" for s in statuses)


class LocationLoadError(RuntimeError):
    def __init__(self, status: LocationStatus):
        self.status = status
        super().__init__(f"code location {status.name} failed to load: {status.error}")


# --- the pair ------------------------------------------------------------------------------------------------
def start_pair(settings: Settings, env: Mapping[str, str], log_dir: Path, started: list[Service],
               timeout: float = 180.0) -> tuple[Service, Service]:
    """Prepare the instance, start the webserver and the daemon, and wait until the webserver has loaded
    the code location. Both are appended to ``started`` as soon as they exist."""
    env = dagster_env(settings, env)
    prepare_instance(env)
    bin_dir = Path(sys.executable).parent
    url = f"http://{settings.bind_host}:{settings.dagster_port}"
    webserver = start("dagster-webserver", [str(bin_dir / "dagster-webserver"), "-h", settings.bind_host,
                                            "-p", str(settings.dagster_port), "-w", "workspace.yaml"],
                      env, log_dir, REPO_ROOT, started)
    daemon = start("dagster-daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                   env, log_dir, REPO_ROOT, started)
    try:
        wait_until(webserver, lambda: location_loaded(url), timeout, "loading the code location")
    except LocationLoadError as exc:
        raise ServiceFailed(webserver, str(exc)) from exc
    return webserver, daemon


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if args != ["prepare"]:
        sys.exit("usage: python -m obs_platform.local.dagster prepare")
    if not os.environ.get("DAGSTER_HOME"):
        sys.exit("DAGSTER_HOME is not set (make up sets it to the repository, where dagster.yaml is)")
    _prepare()


if __name__ == "__main__":
    main()
