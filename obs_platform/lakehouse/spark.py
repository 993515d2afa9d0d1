"""The Spark session factory: local[*] with Hudi's bundle on the embedded profile.

Sessions are created lazily by callers (a fixture, the streaming job), never at import time.
"""

from __future__ import annotations

import logging
import os
import sys

from obs_platform.settings import Settings

log = logging.getLogger(__name__)


class SparkSetupError(RuntimeError):
    pass


def spark_conf(settings: Settings, app_name: str) -> dict[str, str]:
    jar = settings.hudi_bundle_jar
    if not jar.exists():
        raise SparkSetupError(f"Hudi's Spark bundle is missing at {jar}; run `make deps` to fetch it")
    local_dir = settings.home / "spark-local"
    local_dir.mkdir(parents=True, exist_ok=True)
    return {
        "spark.app.name": app_name,
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.jars": str(jar),
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.kryo.registrator": "org.apache.spark.HoodieSparkKryoRegistrar",
        "spark.sql.extensions": "org.apache.spark.sql.hudi.HoodieSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.hudi.catalog.HoodieCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "4",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # loopback only: the driver, its block manager and (when enabled) its UI
        "spark.driver.host": settings.bind_host,
        "spark.driver.bindAddress": settings.bind_host,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": str(local_dir),
        "spark.sql.warehouse.dir": str(settings.home / "warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.home / 'derby'} -Dlog4j2.level=WARN",
    }


def build_spark_session(settings: Settings, app_name: str = "obs-platform", extra: dict[str, str] | None = None):
    """A SparkSession for the platform's table (local master by default)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", settings.bind_host)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in {**spark_conf(settings, app_name), **(extra or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session
