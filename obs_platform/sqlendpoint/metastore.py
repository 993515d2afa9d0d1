"""Spark/Hive settings that point a Spark JVM at the shared Hive metastore in PostgreSQL.

One function, ``metastore_spark_conf``, feeds both JVMs that share the metastore: the Spark session that runs
Hudi's Hive sync and the Spark Thrift Server. Each JVM runs Spark's built-in Hive 2.3.9 metastore client in
*local* mode (no ``hive.metastore.uris``): its DataNucleus layer talks JDBC to PostgreSQL directly. Two
local-mode clients on one RDBMS is the supported way to share a metastore without a metastore service, and
it keeps one process fewer on the machine. (Embedded Derby can't do this: one JVM locks it.)

Schema creation, checked on this machine (Hive 2.3.9 client, DataNucleus 4.1, PostgreSQL 15): Hive's
schematool and SQL scripts are not in Spark's jars, so ``ensure_metastore_schema`` creates the schema once,
up front, with DataNucleus' SchemaTool and Hive's JDO mapping; after that the JVMs run no DDL and verify the
schema version (``SCHEMA_CONF``). Its docstring says why lazy creation (autoCreateAll) is not used.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from obs_platform.errors import ObsPlatformError
from obs_platform.settings import Settings
from obs_platform.sqlendpoint.postgres import PostgresConfig, file_lock, run_sql

log = logging.getLogger(__name__)

POSTGRES_JDBC_VERSION = "42.7.14"
POSTGRES_JDBC_ARTIFACT = f"org.postgresql:postgresql:{POSTGRES_JDBC_VERSION}"


class MetastoreSetupError(ObsPlatformError, RuntimeError):
    pass


# The schema exists before any Spark JVM connects (``ensure_metastore_schema``), so the JVMs never run DDL:
# no auto-creation, and Hive checks the recorded schema version (2.3.0) on every start.
SCHEMA_CONF = {
    "datanucleus.schema.autoCreateAll": "false",
    "datanucleus.schema.autoCreateTables": "false",
    "datanucleus.schema.autoCreateColumns": "false",
    "datanucleus.schema.autoCreateConstraints": "false",
    "hive.metastore.schema.verification": "true",
}
HIVE_SCHEMA_VERSION = "2.3.0"  # what Spark 3.5's built-in Hive 2.3.9 client expects in the VERSION table


def postgres_jdbc_jar(settings: Settings) -> Path:
    return settings.jars_dir / f"postgresql-{POSTGRES_JDBC_VERSION}.jar"


def hive_conf(pg: PostgresConfig, home: Path) -> dict[str, str]:
    """The Hive/DataNucleus settings (unprefixed), as they would stand in a hive-site.xml.

    Hive's scratch and resource folders default to /tmp; they are kept under ``home`` (and created here).
    """
    hive_dir = home / "hive"
    for sub in ("scratch", "local-scratch", "resources"):
        (hive_dir / sub).mkdir(parents=True, exist_ok=True)
    return {
        "hive.metastore.uris": "",  # local mode: this JVM's metastore client talks JDBC itself
        "javax.jdo.option.ConnectionURL": pg.jdbc_url,
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": pg.user,
        "javax.jdo.option.ConnectionPassword": pg.password,
        "hive.metastore.warehouse.dir": str(home / "warehouse"),
        "hive.exec.scratchdir": str(hive_dir / "scratch"),
        "hive.exec.local.scratchdir": str(hive_dir / "local-scratch"),
        "hive.downloaded.resources.dir": str(hive_dir / "resources" / "${hive.session.id}_resources"),
        "hive.querylog.location": str(home / "log" / "hive"),
        **SCHEMA_CONF,
    }


def jdbc_driver_conf(settings: Settings) -> dict[str, str]:
    """Only the PostgreSQL JDBC driver on the driver's class path: enough for ``hive_sync``, which hands the
    metastore settings (password included) to HiveSyncTool over py4j rather than as Spark confs."""
    jar = postgres_jdbc_jar(settings)
    if not jar.exists():
        raise MetastoreSetupError(
            f"the PostgreSQL JDBC driver is missing at {jar}; fetch it with `mvn -q dependency:copy "
            f"-Dartifact={POSTGRES_JDBC_ARTIFACT} -DoutputDirectory={settings.jars_dir}` (or `make jars`)"
        )
    return {"spark.driver.extraClassPath": str(jar)}


def metastore_spark_conf(settings: Settings, pg: PostgresConfig) -> dict[str, str]:
    """Spark confs for a JVM whose catalog *is* the shared metastore (the Thrift Server; any session that
    should see ``observability.pipeline_events`` through ``spark.sql``).

    Merge them over ``obs_platform.lakehouse.spark.spark_conf``. ``spark.driver.extraClassPath`` carries the
    PostgreSQL JDBC driver, which must be on the driver's *system* class path (``spark.jars`` is not enough
    for DataNucleus' connection pool) and so must be set before the JVM starts. The dict holds the database
    password: hand it to spark-submit in a file (``--properties-file``), not as ``--conf`` arguments.
    """
    conf = jdbc_driver_conf(settings)
    conf.update({f"spark.hadoop.{k}": v for k, v in hive_conf(pg, settings.home).items()})
    conf.update({
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.hive.metastore.version": "2.3.9",
        "spark.sql.hive.metastore.jars": "builtin",
        "spark.sql.warehouse.dir": str(settings.home / "warehouse"),
    })
    return conf


# --- creating the schema once: what Hive's schematool would do -----------------------------------------
@dataclass(frozen=True)
class SchemaReport:
    created: bool
    seconds: float
    tables: int


def pyspark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise MetastoreSetupError("no Java found: set JAVA_HOME to a Java 17 installation")
    return found


def _metastore_tables(pg: PostgresConfig) -> int:
    rows = run_sql(pg, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public';")
    return int(rows[0][0])


def ensure_metastore_schema(settings: Settings, pg: PostgresConfig, timeout: float = 300) -> SchemaReport:
    """Create the Hive 2.3 metastore schema in PostgreSQL once, with its keys, foreign keys and unique indexes.

    Spark's jars hold no schematool and no SQL scripts, but they hold Hive's JDO mapping (``package.jdo`` in
    hive-metastore-2.3.9.jar) and DataNucleus' own ``SchemaTool``, which creates every table of that mapping
    in one go, before any other connection is open. This is the step that makes the serving JVMs safe:

    - letting DataNucleus create the schema lazily with ``datanucleus.schema.autoCreateAll=true`` hangs for
      good on PostgreSQL: the first CREATE TABLE adds ``TBL_PRIVS`` and then ``ALTER TABLE "TBL_PRIVS" ADD
      CONSTRAINT ... REFERENCES "TBLS"`` on a second connection of the same JVM, which waits (ShareRowExclusive)
      for the first connection's open transaction that has just inserted into ``TBLS``; that transaction
      waits for the ALTER. PostgreSQL sees no deadlock: both waits are inside one JVM.
    - ``autoCreateTables``/``autoCreateColumns`` without constraints does not hang, but leaves the metastore
      without its unique indexes (two syncs could register one table twice) and lets two JVMs race on DDL.
    """
    t0 = time.monotonic()
    with file_lock(pg.root / "schema.lock"):
        return _ensure_metastore_schema(settings, pg, timeout, t0)


def _ensure_metastore_schema(settings: Settings, pg: PostgresConfig, timeout: float, t0: float) -> SchemaReport:
    tables = _metastore_tables(pg)
    if tables:
        version = run_sql(pg, 'SELECT "SCHEMA_VERSION" FROM "VERSION";') if tables else []
        if not version or version[0][0] != HIVE_SCHEMA_VERSION:
            raise MetastoreSetupError(
                f"the metastore database {pg.database!r} holds {tables} tables but schema version "
                f"{version[0][0] if version else 'none'!r}, not {HIVE_SCHEMA_VERSION}; drop the database "
                f"(or the folder {pg.root}) to recreate it"
            )
        return SchemaReport(created=False, seconds=time.monotonic() - t0, tables=tables)

    jdbc_jar = postgres_jdbc_jar(settings)
    if not jdbc_jar.exists():
        raise MetastoreSetupError(f"the PostgreSQL JDBC driver is missing at {jdbc_jar}; run `make jars`")
    jars = pyspark_jars_dir()
    metastore_jar = jars / "hive-metastore-2.3.9.jar"
    if not metastore_jar.exists():
        raise MetastoreSetupError(f"{metastore_jar} is missing: this code expects pyspark 3.5's Hive 2.3.9 jars")
    work = pg.root / "schema"
    work.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(metastore_jar) as jar:
        (work / "package.jdo").write_bytes(jar.read("package.jdo"))
    props = work / "datanucleus.properties"
    props.touch(mode=0o600)
    props.write_text("\n".join(f"{k}={escape_property(v)}" for k, v in {
        "javax.jdo.option.ConnectionURL": pg.jdbc_url,
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": pg.user,
        "javax.jdo.option.ConnectionPassword": pg.password,
        # the naming and id strategy Hive 2.3's ObjectStore uses (HiveConf defaults), so tables match
        "datanucleus.identifierFactory": "datanucleus1",
        "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
        "datanucleus.storeManagerType": "rdbms",
    }.items()) + "\n")
    log_path = settings.home / "log" / "metastore-schema.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        java_executable(), "-Xmx256m", "-cp", f"{jars}/*:{jdbc_jar}", "org.datanucleus.store.schema.SchemaTool",
        "-create", "-api", "JDO", "-props", str(props), str(work / "package.jdo"),
    ]
    log.info("creating the Hive metastore schema in %s with DataNucleus SchemaTool", pg.jdbc_url)
    try:
        with open(log_path, "ab") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        raise MetastoreSetupError(f"DataNucleus SchemaTool did not finish in {timeout:.0f}s; see {log_path}") from exc
    finally:
        props.unlink(missing_ok=True)  # it holds the password
    if proc.returncode != 0 or "completed successfully" not in log_path.read_text(errors="replace")[-4000:]:
        raise MetastoreSetupError(f"DataNucleus SchemaTool failed (exit {proc.returncode}); see {log_path}")
    # What DataNucleus would otherwise create lazily (its id table), and the version row schematool writes.
    run_sql(pg, "\n".join([
        'CREATE TABLE IF NOT EXISTS "SEQUENCE_TABLE" ("SEQUENCE_NAME" varchar(255) NOT NULL, '
        '"NEXT_VAL" bigint NOT NULL, CONSTRAINT "SEQUENCE_TABLE_PK" PRIMARY KEY ("SEQUENCE_NAME"));',
        'INSERT INTO "VERSION" ("VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT") '
        f"VALUES (1, '{HIVE_SCHEMA_VERSION}', 'Hive release version {HIVE_SCHEMA_VERSION}, by obs-platform') "
        "ON CONFLICT DO NOTHING;",
    ]))
    tables = _metastore_tables(pg)
    seconds = time.monotonic() - t0
    log.info("metastore schema created: %d tables in %.1fs", tables, seconds)
    return SchemaReport(created=True, seconds=seconds, tables=tables)


def escape_property(value: str) -> str:
    """java.util.Properties escaping for a value."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return out.replace("=", "\\=").replace(":", "\\:").replace("#", "\\#").replace("!", "\\!")
