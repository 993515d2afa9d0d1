"""The SQL endpoint for tests that read through the Spark Thrift Server (the ``thrift`` query backend).

``sql_endpoint`` (session scope, started on first use only): a private PostgreSQL on a free port with the Hive
metastore schema, and the Spark Thrift Server on another free port, both under one temp home (as in
``test_sql_endpoint.py``). ``SqlEndpoint.sync(settings)`` registers a table written under another home with
Hudi's Hive sync (its own JVM, through ``python -m obs_platform.sqlendpoint hive-sync --table-uri``), and
``SqlEndpoint.env`` is what a BFF needs to use the server (``OBS_THRIFT_PORT``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from obs_platform.settings import REPO_ROOT, Settings
from obs_platform.sqlendpoint import (
    PostgresConfig,
    ThriftServer,
    ThriftServerConfig,
    ensure_metastore_schema,
    ensure_postgres,
    start_thrift_server,
    stop_postgres,
)
from obs_platform_tests.conftest import free_port


@dataclass
class SqlEndpoint:
    settings: Settings
    pg: PostgresConfig
    server: ThriftServer
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"OBS_THRIFT_PORT": str(self.server.config.port)}

    def sync(self, table: Settings) -> dict:
        """Hudi's Hive sync of ``table`` into this metastore (as ``table.database``.``table.table``)."""
        t = time.monotonic()
        env = {**os.environ, "OBS_HOME": str(self.settings.home), "OBS_METASTORE_PG_PORT": str(self.pg.port),
               "OBS_DATABASE": table.database, "OBS_TABLE": table.table, "PYSPARK_PYTHON": sys.executable}
        proc = subprocess.run([sys.executable, "-m", "obs_platform.sqlendpoint", "hive-sync", "--table-uri",
                               table.table_uri], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        self.timings[f"hive sync {table.table}"] = time.monotonic() - t
        return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])

    def warm(self, table: Settings) -> None:
        """The server's first query of a table is slow (seconds): pay it here, not in a timed request."""
        t = time.monotonic()
        conn = self.server.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT count(1) FROM {table.database}.{table.table}")
            cursor.fetchall()
        finally:
            conn.close()
        self.timings[f"first query {table.table}"] = time.monotonic() - t


@pytest.fixture(scope="session")
def sql_endpoint(tmp_path_factory) -> Iterator[SqlEndpoint]:
    home = tmp_path_factory.mktemp("sql-endpoint")
    settings = Settings(home=home)
    pg = PostgresConfig.from_settings(settings, port=free_port())
    server = None
    timings: dict[str, float] = {}
    try:
        t = time.monotonic()
        ensure_postgres(pg)
        ensure_metastore_schema(settings, pg)
        timings["postgres + metastore schema"] = time.monotonic() - t
        server = start_thrift_server(settings, pg, ThriftServerConfig.from_settings(settings, port=free_port()))
        timings["thrift server start"] = server.start_seconds
        endpoint = SqlEndpoint(settings, pg, server, timings)
        yield endpoint
    finally:
        if server is not None:
            server.stop()
        stop_postgres(pg)
        print("\nSQL endpoint timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
