"""Spark/Hive settings that point a Spark JVM at the shared Hive metastore in PostgreSQL.

One function, ``metastore_spark_conf``, feeds both JVMs that share the metastore: the Spark session that runs
Hudi's Hive sync and the Spark Thrift Server. Each JVM runs Spark's built-in Hive 2.3.9 metastore client in
*local* mode (no ``hive.metastore.uris``): its DataNucleus layer talks JDBC to PostgreSQL directly. Two
local-mode clients on one RDBMS is the supported way to share a metastore without a metastore service, and
it keeps one process fewer on the machine. (Embedded Derby can't do this: one JVM locks it.)

Schema creation, checked on this machine (Hive 2.3.9 client, DataNucleus 4.1, PostgreSQL 15): Hive's own
schema scripts are not in Spark's jars, so DataNucleus creates the tables on first use. See
``SCHEMA_CONF`` for the settings and why.
"""

from __future__ import annotations

from pathlib import Path

from obs_platform.errors import ObsPlatformError
from obs_platform.settings import Settings
from obs_platform.sqlendpoint.postgres import PostgresConfig

POSTGRES_JDBC_VERSION = "42.7.14"
POSTGRES_JDBC_ARTIFACT = f"org.postgresql:postgresql:{POSTGRES_JDBC_VERSION}"


class MetastoreSetupError(ObsPlatformError, RuntimeError):
    pass


# How DataNucleus treats the (initially empty) metastore database. The 'autoCreateAll' form also asks for
# constraint creation/validation; see the module docstring of obs_platform.sqlendpoint for what was measured.
SCHEMA_CONF = {
    "datanucleus.schema.autoCreateTables": "true",
    "datanucleus.schema.autoCreateColumns": "true",
    "datanucleus.schema.autoCreateConstraints": "false",
    "datanucleus.schema.validateTables": "false",
    "datanucleus.schema.validateColumns": "false",
    "datanucleus.schema.validateConstraints": "false",
    # Hive's own version check wants a VERSION row written by schematool; with verification off the client
    # records its version (2.3.0) itself on first use.
    "hive.metastore.schema.verification": "false",
    "hive.metastore.schema.verification.record.version": "true",
}


def postgres_jdbc_jar(settings: Settings) -> Path:
    return settings.jars_dir / f"postgresql-{POSTGRES_JDBC_VERSION}.jar"


def hive_conf(pg: PostgresConfig, warehouse: Path) -> dict[str, str]:
    """The Hive/DataNucleus settings (unprefixed), as they would stand in a hive-site.xml."""
    return {
        "hive.metastore.uris": "",  # local mode: this JVM's metastore client talks JDBC itself
        "javax.jdo.option.ConnectionURL": pg.jdbc_url,
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": pg.user,
        "javax.jdo.option.ConnectionPassword": pg.password,
        "hive.metastore.warehouse.dir": str(warehouse),
        **SCHEMA_CONF,
    }


def metastore_spark_conf(settings: Settings, pg: PostgresConfig) -> dict[str, str]:
    """Spark confs for a session (or ``spark-submit --conf``) that uses the shared metastore.

    Merge them over ``obs_platform.lakehouse.spark.spark_conf``; ``spark.driver.extraClassPath`` carries the
    PostgreSQL JDBC driver, which must be on the driver's *system* class path (``spark.jars`` is not enough
    for DataNucleus' connection pool) and so must be set before the JVM starts.
    """
    jar = postgres_jdbc_jar(settings)
    if not jar.exists():
        raise MetastoreSetupError(
            f"the PostgreSQL JDBC driver is missing at {jar}; fetch it with `mvn -q dependency:copy "
            f"-Dartifact={POSTGRES_JDBC_ARTIFACT} -DoutputDirectory={settings.jars_dir}` (or `make jars`)"
        )
    warehouse = settings.home / "warehouse"
    conf = {f"spark.hadoop.{k}": v for k, v in hive_conf(pg, warehouse).items()}
    conf.update({
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.hive.metastore.version": "2.3.9",
        "spark.sql.hive.metastore.jars": "builtin",
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.driver.extraClassPath": str(jar),
    })
    return conf
