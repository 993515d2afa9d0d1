#!/usr/bin/env bash
# What the SQL endpoint (Hive metastore in PostgreSQL + Spark Thrift Server) needs beyond pip and the Hudi
# bundle, installed only when missing:
#   - PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) from Debian's `postgresql` package, installed
#     without a system cluster: the platform runs its own cluster under OBS_HOME on 127.0.0.1:5433;
#   - the PostgreSQL JDBC driver from Maven Central, for the Hive metastore client inside both Spark JVMs;
#   - a check that the pip pyspark ships the Thrift Server jar (3.5.7 does: spark-hive-thriftserver_2.12).
set -euo pipefail
cd "$(dirname "$0")/.."

JARS=${JARS:-.cache/jars}
PG_JDBC_VERSION=42.7.14   # keep in step with obs_platform/sqlendpoint/metastore.py (POSTGRES_JDBC_VERSION)
PY=${PY:-.venv/bin/python}

have_pg() {
  [ -n "${OBS_PG_BIN:-}" ] && [ -x "${OBS_PG_BIN}/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null
}

if ! have_pg; then
  echo "==> PostgreSQL server binaries (Debian package postgresql, no system cluster)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install postgresql" >&2; exit 1; }
    SUDO=sudo
  fi
  # postgresql-common reads drop-ins from createcluster.d: no 'main' cluster on 5432 is created or started.
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/obs-platform.conf >/dev/null
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  have_pg || { echo "PostgreSQL binaries still not found after apt-get install" >&2; exit 1; }
fi

jar="$JARS/postgresql-$PG_JDBC_VERSION.jar"
if [ ! -s "$jar" ]; then
  echo "==> PostgreSQL JDBC driver org.postgresql:postgresql:$PG_JDBC_VERSION (Maven Central)"
  mkdir -p "$JARS"
  mvn -q -B dependency:copy -Dartifact="org.postgresql:postgresql:$PG_JDBC_VERSION" \
      -DoutputDirectory="$JARS" -Dmdep.overWriteIfNewer=true
  test -s "$jar"
fi

if [ -x "$PY" ]; then
  spark_jars=$("$PY" -c 'import pathlib, pyspark; print(pathlib.Path(pyspark.__file__).parent / "jars")')
  if ! compgen -G "$spark_jars/spark-hive-thriftserver_*.jar" >/dev/null; then
    echo "pyspark in $spark_jars has no spark-hive-thriftserver jar: fetch org.apache.spark:spark-hive-thriftserver_2.12:<pyspark version> into it" >&2
    exit 1
  fi
fi
