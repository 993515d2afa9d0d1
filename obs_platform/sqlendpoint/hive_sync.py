"""Register the Hudi table in the shared Hive metastore with Hudi's own HiveSyncTool (HMS mode).

``hive_sync`` runs ``org.apache.hudi.hive.HiveSyncTool`` inside a Spark session's JVM, for a table that
already exists on storage; no write is needed. HMS mode means the tool calls the metastore client API
(create table, add/drop partitions, alter schema and properties) rather than sending HiveQL through a
HiveServer2 JDBC connection (``jdbc`` mode) or a Hive driver (``hiveql`` mode). Without
``hive.metastore.uris`` that client is Hive 2.3.9's local one, which talks JDBC to PostgreSQL directly.

What the sync writes (Hudi 1.2.0, checked here):
- a Spark *data-source* table (``spark.sql.sources.provider=hudi`` and the Spark schema in table
  properties), so Spark (and the Thrift Server) read it through Hudi's data source, not as plain Parquet;
- Hive columns for every data field (timestamps as ``timestamp`` because ``support_timestamp`` is on),
  plus Hudi's ``_hoodie_*`` meta columns, with ``eventDate`` as the Hive partition column;
- one metastore partition per ``yyyy/MM/dd`` folder, valued ``yyyy-MM-dd`` (see ``PARTITION_EXTRACTOR``);
- ``last_commit_time_sync`` in the table's properties, so the next sync only looks at newer commits (and
  drops partitions that a delete_partition/replace commit removed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from obs_platform.errors import ObsPlatformError
from obs_platform.lakehouse.table import TableSpec
from obs_platform.settings import Settings
from obs_platform.sqlendpoint.metastore import hive_conf, postgres_jdbc_jar
from obs_platform.sqlendpoint.postgres import PostgresConfig, run_sql

log = logging.getLogger(__name__)

# The partition path is one string field written as yyyy/MM/dd (no hive-style "eventDate=" prefix).
# SlashEncodedDayPartitionValueExtractor checks that form (three numeric parts, else it fails loudly) and
# registers the metastore partition value as yyyy-MM-dd: partition eventdate=2026-11-26, location .../2026/11/26.
# (Hudi 1.2.0's default for one non-hive-style field, SinglePartPartitionValueExtractor, registers the same
# value: it replaces '/' by '-' without checking.) Spark and the Thrift Server read the table through Hudi's
# data source, so eventDate in query results is the files' value '2026/11/26', and SHOW PARTITIONS (Hudi's
# command) lists '2026/11/26'; only a plain Hive engine reading the metastore would show '2026-11-26'.
PARTITION_EXTRACTOR = "org.apache.hudi.hive.SlashEncodedDayPartitionValueExtractor"


class HiveSyncError(ObsPlatformError, RuntimeError):
    pass


@dataclass(frozen=True)
class HiveSyncReport:
    """What one sync changed in the metastore."""

    table: str                      # database.table
    base_path: str
    created: bool                   # the table was not in the metastore before
    partitions_added: list[str]     # metastore partition names (eventdate=2026-11-26)
    partitions_dropped: list[str]
    partitions: list[str]           # all after the sync
    last_commit_synced: str | None  # the Hudi instant the metastore is now in step with
    seconds: float
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Hive type), partition column last

    def as_dict(self) -> dict:
        return {
            "table": self.table, "base_path": self.base_path, "created": self.created,
            "partitions_added": self.partitions_added, "partitions_dropped": self.partitions_dropped,
            "partitions": self.partitions, "last_commit_synced": self.last_commit_synced,
            "seconds": round(self.seconds, 3), "columns": [list(c) for c in self.columns],
        }


def hive_sync_options(spec: TableSpec, spark_version: str, extractor: str = PARTITION_EXTRACTOR) -> dict[str, str]:
    """The ``hoodie.datasource.hive_sync.*`` options for HMS mode (also valid as datasource write options)."""
    return {
        "hoodie.datasource.meta.sync.base.path": spec.base_uri,
        "hoodie.datasource.hive_sync.enable": "true",
        "hoodie.datasource.hive_sync.mode": "hms",
        "hoodie.datasource.hive_sync.database": spec.database,
        "hoodie.datasource.hive_sync.table": spec.name,
        "hoodie.datasource.hive_sync.partition_fields": spec.partition_field,
        "hoodie.datasource.hive_sync.partition_extractor_class": extractor,
        "hoodie.datasource.hive_sync.auto_create_database": "true",
        "hoodie.datasource.hive_sync.support_timestamp": "true",
        "hoodie.datasource.hive_sync.sync_as_datasource": "true",
        "hoodie.meta_sync.spark.version": spark_version,
        # the metadata table lists partitions, not a file-system walk
        "hoodie.meta.sync.metadata_file_listing": "true",
    }


# --- reading the metastore's view (straight from its PostgreSQL tables: exact, no JVM) -------------------
_TABLE_FILTER = (
    'FROM "TBLS" t JOIN "DBS" d ON d."DB_ID" = t."DB_ID" '
    "WHERE d.\"NAME\" = lower(:'db') AND t.\"TBL_NAME\" = lower(:'tbl')"
)


def _query(pg: PostgresConfig, database: str, table: str, select: str) -> list[list[str]]:
    # psql variables keep the names out of the SQL text
    return run_sql(pg, f"\\set db '{_psql_quote(database)}'\n\\set tbl '{_psql_quote(table)}'\n{select}")


def _psql_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


def metastore_partitions(pg: PostgresConfig, database: str, table: str) -> list[str]:
    rows = _query(pg, database, table,
                  f'SELECT p."PART_NAME" FROM "PARTITIONS" p WHERE p."TBL_ID" IN (SELECT t."TBL_ID" {_TABLE_FILTER}) '
                  'ORDER BY 1;')
    return [r[0] for r in rows]


def metastore_table_exists(pg: PostgresConfig, database: str, table: str) -> bool:
    return bool(_query(pg, database, table, f"SELECT 1 {_TABLE_FILTER};"))


def metastore_columns(pg: PostgresConfig, database: str, table: str) -> list[tuple[str, str]]:
    cols = _query(pg, database, table,
                  'SELECT c."COLUMN_NAME", c."TYPE_NAME" FROM "COLUMNS_V2" c JOIN "SDS" s ON s."CD_ID" = c."CD_ID" '
                  f'JOIN "TBLS" t ON t."SD_ID" = s."SD_ID" WHERE t."TBL_ID" IN (SELECT t."TBL_ID" {_TABLE_FILTER}) '
                  'ORDER BY c."INTEGER_IDX";')
    keys = _query(pg, database, table,
                  'SELECT k."PKEY_NAME", k."PKEY_TYPE" FROM "PARTITION_KEYS" k '
                  f'WHERE k."TBL_ID" IN (SELECT t."TBL_ID" {_TABLE_FILTER}) ORDER BY k."INTEGER_IDX";')
    return [(c[0], c[1]) for c in cols + keys]


def metastore_table_param(pg: PostgresConfig, database: str, table: str, key: str) -> str | None:
    rows = _query(pg, database, table,
                  f"\\set key '{_psql_quote(key)}'\n"
                  'SELECT p."PARAM_VALUE" FROM "TABLE_PARAMS" p '
                  f"WHERE p.\"PARAM_KEY\" = :'key' AND p.\"TBL_ID\" IN (SELECT t.\"TBL_ID\" {_TABLE_FILTER});")
    return rows[0][0] if rows else None


# --- the sync ----------------------------------------------------------------------------------------------
def hive_sync(spark, settings: Settings, spec: TableSpec, pg: PostgresConfig,
              extractor: str = PARTITION_EXTRACTOR) -> HiveSyncReport:
    """Sync the Hudi table at ``spec.base_uri`` into the metastore with Hudi's HiveSyncTool (HMS mode).

    ``spark`` is any session whose driver has the PostgreSQL JDBC driver on its class path (build it with
    ``metastore_spark_conf``); the metastore settings are applied to a copy of its Hadoop configuration,
    so the session itself need not use the Hive catalog.
    """
    jvm = spark._jvm
    try:
        jvm.java.lang.Class.forName("org.postgresql.Driver")
    except Exception as exc:  # py4j wraps the ClassNotFoundException
        raise HiveSyncError(
            f"the Spark driver cannot load org.postgresql.Driver: start the session with "
            f"spark.driver.extraClassPath={postgres_jdbc_jar(settings)} (see jdbc_driver_conf)"
        ) from exc

    t0 = time.monotonic()
    before = metastore_partitions(pg, spec.database, spec.name)
    existed = metastore_table_exists(pg, spec.database, spec.name)

    props = jvm.java.util.Properties()
    for key, value in hive_sync_options(spec, spark.version, extractor).items():
        props.setProperty(key, value)
    props.setProperty("hoodie.datasource.hive_sync.schema_string_length_thresh",
                      spark.conf.get("spark.sql.sources.schemaStringLengthThreshold", "4000"))
    hadoop_conf = jvm.org.apache.hadoop.conf.Configuration(spark._jsc.hadoopConfiguration())
    for key, value in hive_conf(pg, settings.home).items():
        hadoop_conf.set(key, value)

    log.info("Hive sync (HMS) of %s at %s", spec.qualified_name, spec.base_uri)
    try:
        tool = jvm.org.apache.hudi.hive.HiveSyncTool(props, hadoop_conf)
        tool.syncHoodieTable()  # closes its metastore client when done
    except Exception as exc:
        raise HiveSyncError(f"Hive sync of {spec.qualified_name} from {spec.base_uri} failed: "
                            f"{_java_message(exc)}") from exc

    after = metastore_partitions(pg, spec.database, spec.name)
    report = HiveSyncReport(
        table=spec.qualified_name,
        base_path=spec.base_uri,
        created=not existed,
        partitions_added=sorted(set(after) - set(before)),
        partitions_dropped=sorted(set(before) - set(after)),
        partitions=after,
        last_commit_synced=metastore_table_param(pg, spec.database, spec.name, "last_commit_time_sync"),
        seconds=time.monotonic() - t0,
        columns=metastore_columns(pg, spec.database, spec.name),
    )
    log.info("Hive sync of %s: %s, +%d/-%d partitions, in step with %s (%.1fs)", report.table,
             "created" if report.created else "updated", len(report.partitions_added),
             len(report.partitions_dropped), report.last_commit_synced, report.seconds)
    return report


def _java_message(exc: Exception) -> str:
    java = getattr(exc, "java_exception", None)
    if java is None:
        return str(exc)
    messages = []
    while java is not None and len(messages) < 6:
        messages.append(f"{java.getClass().getName()}: {java.getMessage()}")
        java = java.getCause()
    return " <- ".join(messages)
