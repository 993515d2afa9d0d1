"""The Spark session resource for table services: built lazily, once per run, stopped at its end."""

from contextlib import contextmanager

from dagster import ConfigurableResource, InitResourceContext

from obs_platform.assets.resources import PlatformSettings
from obs_platform.lakehouse.spark import build_spark_session


class SparkSessionResource(ConfigurableResource):
    """Local Spark (``OBS_SPARK_MASTER``) with Hudi's bundle; with the SQL endpoint on, its driver also holds
    the PostgreSQL JDBC driver so Hive sync can reach the metastore. Production swaps the master for a
    cluster (Dataproc through dagster-gcp, or any Spark master URL) without touching the assets."""

    platform: PlatformSettings
    app_name: str = "obs-platform-maintenance"

    @contextmanager
    def session(self):
        settings = self.platform.get()
        extra = {}
        if settings.sql_endpoint:
            from obs_platform.sqlendpoint.metastore import jdbc_driver_conf, postgres_jdbc_jar

            if postgres_jdbc_jar(settings).exists():
                extra = jdbc_driver_conf(settings)
        from pyspark.sql import SparkSession

        existing = SparkSession.getActiveSession()  # e.g. a test's session: use it, leave it running
        spark = existing or build_spark_session(settings, self.app_name, extra)
        try:
            yield spark
        finally:
            if existing is None:
                spark.stop()

    def setup_for_execution(self, context: InitResourceContext) -> None:  # nothing eager: lazy by design
        return None
