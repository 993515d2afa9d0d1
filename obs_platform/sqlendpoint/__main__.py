"""Shell entry points for the SQL endpoint (settings from the environment: OBS_HOME, OBS_METASTORE_*, OBS_THRIFT_*).

    python -m obs_platform.sqlendpoint metastore     # PostgreSQL up + metastore schema; prints JSON
    python -m obs_platform.sqlendpoint hive-sync     # Hudi's Hive sync of the table (a Spark JVM); prints JSON
    python -m obs_platform.sqlendpoint thrift-server # Thrift Server in the foreground until SIGTERM/Ctrl-C
    python -m obs_platform.sqlendpoint stop          # stop the metastore's PostgreSQL
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import time

from obs_platform.lakehouse.table import TableSpec
from obs_platform.settings import get_settings
from obs_platform.sqlendpoint import (
    PostgresConfig,
    build_metastore_session,
    ensure_metastore_schema,
    ensure_postgres,
    hive_sync,
    start_thrift_server,
    stop_postgres,
)
from obs_platform.sqlendpoint.thrift_server import ThriftServerConfig


def _emit(obj: dict) -> None:
    """One JSON line on stdout (logs go to stderr), for scripts and tests to parse."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _metastore(settings) -> tuple[PostgresConfig, dict]:
    pg = PostgresConfig.from_settings(settings)
    server = ensure_postgres(pg)
    schema = ensure_metastore_schema(settings, pg)
    return pg, {
        "jdbc_url": pg.jdbc_url, "pid": server.pid, "started": server.started, "initialised": server.initialised,
        "postgres_seconds": round(server.seconds, 3), "schema_created": schema.created,
        "schema_seconds": round(schema.seconds, 3), "tables": schema.tables,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m obs_platform.sqlendpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("metastore", help="start PostgreSQL and create the metastore schema (idempotent)")
    sync = sub.add_parser("hive-sync", help="sync the Hudi table into the metastore (Hudi HiveSyncTool, HMS mode)")
    sync.add_argument("--table-uri", help="the table's base path (default: the settings' table_uri)")
    thrift = sub.add_parser("thrift-server", help="run the Spark Thrift Server until SIGTERM or Ctrl-C")
    thrift.add_argument("--port", type=int, help="default OBS_THRIFT_PORT or 10000")
    sub.add_parser("stop", help="stop the metastore's PostgreSQL")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()

    if args.command == "metastore":
        _, report = _metastore(settings)
        _emit(report)
        return 0

    if args.command == "stop":
        _emit({"stopped": stop_postgres(PostgresConfig.from_settings(settings))})
        return 0

    if args.command == "hive-sync":
        pg, _ = _metastore(settings)
        spec = TableSpec.from_settings(settings)
        if args.table_uri:
            spec = dataclasses.replace(spec, base_uri=args.table_uri)
        spark = build_metastore_session(settings, pg)
        try:
            report = hive_sync(spark, settings, spec, pg)
        finally:
            spark.stop()
        _emit(report.as_dict())
        return 0

    if args.command == "thrift-server":
        pg, metastore = _metastore(settings)
        try:
            return _serve(settings, pg, args.port)
        finally:
            if metastore["started"]:  # this process started PostgreSQL: it stops it too
                stop_postgres(pg)
    return 2


def _serve(settings, pg: PostgresConfig, port: int | None) -> int:
    """Run the Thrift Server until SIGTERM/SIGINT (also during its start-up) and stop it on the way out."""
    def stop_requested(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_requested)
    server = start_thrift_server(settings, pg, ThriftServerConfig.from_settings(settings, port=port))
    try:
        _emit({"host": server.config.host, "port": server.config.port, "pid": server.pid,
               "start_seconds": round(server.start_seconds, 3), "log": str(server.log_path)})
        while server.process.poll() is None:
            time.sleep(1.0)
        logging.error("the Thrift Server exited with %s; see %s", server.process.returncode, server.log_path)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sys.exit(main())
