"""The SQL endpoint on one machine: a Hive metastore in PostgreSQL, Hudi's Hive sync, the Spark Thrift Server.

Order of use (each step idempotent):

1. ``ensure_postgres(PostgresConfig.from_settings(settings))`` — a private PostgreSQL cluster on
   127.0.0.1:5433 holding the metastore database;
2. ``ensure_metastore_schema(settings, pg)`` — Hive 2.3's metastore schema, created once;
3. ``hive_sync(spark, settings, spec, pg)`` — Hudi's HiveSyncTool (HMS mode) registers the table and its
   partitions, from a Spark session built with ``metastore_spark_conf`` (``build_metastore_session``);
4. ``start_thrift_server(settings, pg)`` — HiveServer2 protocol on 127.0.0.1:10000; PyHive queries the table.

``python -m obs_platform.sqlendpoint --help`` runs the same steps from a shell.
"""

from obs_platform.sqlendpoint.hive_sync import HiveSyncError, HiveSyncReport, hive_sync, hive_sync_options
from obs_platform.sqlendpoint.metastore import (
    MetastoreSetupError,
    ensure_metastore_schema,
    jdbc_driver_conf,
    metastore_spark_conf,
)
from obs_platform.sqlendpoint.postgres import (
    PostgresConfig,
    PostgresError,
    PostgresServer,
    ensure_postgres,
    stop_postgres,
)
from obs_platform.sqlendpoint.thrift_server import (
    ThriftServer,
    ThriftServerConfig,
    ThriftServerError,
    start_thrift_server,
)


def build_metastore_session(settings, pg: PostgresConfig, app_name: str = "obs-platform-hive-sync",
                            hive_catalog: bool = False):
    """A Spark session with Hudi that can run ``hive_sync``: its driver holds the PostgreSQL JDBC driver.

    With ``hive_catalog=True`` its catalog is the shared metastore too (``spark.sql`` sees the synced table);
    pyspark passes its confs to spark-submit as arguments, so the metastore password then shows in ``ps``.
    """
    from obs_platform.lakehouse.spark import build_spark_session

    extra = metastore_spark_conf(settings, pg) if hive_catalog else jdbc_driver_conf(settings)
    return build_spark_session(settings, app_name, extra)


__all__ = [
    "HiveSyncError", "HiveSyncReport", "MetastoreSetupError", "PostgresConfig", "PostgresError", "PostgresServer",
    "ThriftServer", "ThriftServerConfig", "ThriftServerError", "build_metastore_session",
    "ensure_metastore_schema", "ensure_postgres", "hive_sync", "hive_sync_options", "jdbc_driver_conf",
    "metastore_spark_conf", "start_thrift_server", "stop_postgres",
]
