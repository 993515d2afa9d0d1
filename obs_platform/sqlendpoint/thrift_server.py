"""Start and stop the Spark Thrift Server (HiveServer2 protocol) from pyspark's own jars.

``spark-submit --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 spark-internal`` is what
Spark's ``sbin/start-thriftserver.sh`` runs; the pip ``pyspark`` 3.5.7 ships ``spark-submit`` and the
``spark-hive-thriftserver_2.12-3.5.7`` jar (with Hive 2.3.9, hive-service-rpc 3.1.3 and libthrift 0.12.0),
so nothing beyond the Hudi bundle and the PostgreSQL JDBC driver is fetched. The server:

- binds ``127.0.0.1`` (``hive.server2.thrift.bind.host``) on a configurable port, binary transport;
- authenticates with ``NONE`` (SASL PLAIN, any user name, no password) by default, acceptable only because
  it listens on loopback; with ``OBS_THRIFT_PASSWORD`` set it takes only ``OBS_THRIFT_USER`` (default
  ``obs``) with that password (HiveServer2 ``CUSTOM`` authentication with ``PasswordAuthenticator.java``
  beside this file, compiled here with the JDK's ``javac``; the password reaches the JVM through its
  environment, never a command line or a file);
- gives each connection its own Spark session (``singleSession=false``): no temporary view or setting
  leaks from one client to another;
- reads the Hudi table through Hudi's session extension and catalog (the same confs as the writer);
- uses the shared metastore in PostgreSQL (``metastore_spark_conf``).

It runs in its own process group, so ``stop`` reaches the launcher and the JVM and leaves no orphans.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from obs_platform.errors import ObsPlatformError
from obs_platform.lakehouse.spark import spark_conf
from obs_platform.settings import Settings
from obs_platform.sqlendpoint.metastore import escape_property, metastore_spark_conf
from obs_platform.sqlendpoint.postgres import PostgresConfig

log = logging.getLogger(__name__)

THRIFT_MAIN = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
DEFAULT_PORT = 10000

LOG4J2 = """\
# Spark Thrift Server logging (obs-platform): warnings, plus the server's own start/stop lines.
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss.SSS} %p %c{1}: %m%n%ex
logger.thrift.name = org.apache.spark.sql.hive.thriftserver
logger.thrift.level = info
logger.hive_service.name = org.apache.hive.service.server
logger.hive_service.level = info
# Quiet: Hive's "HiveConf of name ... does not exist" and ObjectStore's lookups of absent databases
logger.hiveconf.name = org.apache.hadoop.hive.conf.HiveConf
logger.hiveconf.level = error
logger.objectstore.name = org.apache.hadoop.hive.metastore.ObjectStore
logger.objectstore.level = error
"""


class ThriftServerError(ObsPlatformError, RuntimeError):
    pass


@dataclass(frozen=True)
class ThriftServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    master: str = "local[2]"
    driver_memory: str = "1g"
    shuffle_partitions: int = 2

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> ThriftServerConfig:
        """Defaults overridable by ``OBS_THRIFT_PORT``, ``OBS_THRIFT_MASTER``, ``OBS_THRIFT_DRIVER_MEMORY``
        (or same-named settings fields, once Settings has them); keyword overrides win."""
        def pick(name: str, default):
            value = getattr(settings, f"thrift_{name}", None)
            if value is None:
                value = os.environ.get(f"OBS_THRIFT_{name.upper()}") or default
            return value

        values = {
            "host": settings.bind_host,
            "port": int(pick("port", DEFAULT_PORT)),
            "master": str(pick("master", "local[2]")),
            "driver_memory": str(pick("driver_memory", "1g")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def thrift_server_conf(settings: Settings, pg: PostgresConfig, config: ThriftServerConfig) -> dict[str, str]:
    """Every ``--conf`` of the server: the lakehouse's Spark/Hudi confs + the shared metastore + server knobs."""
    conf = spark_conf(settings, "obs-platform-thrift-server")
    conf.update(metastore_spark_conf(settings, pg))
    log4j = _log4j_file(settings)
    conf.update({
        "spark.master": config.master,
        "spark.driver.memory": config.driver_memory,
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        "spark.default.parallelism": str(config.shuffle_partitions),
        "spark.sql.hive.thriftServer.singleSession": "false",
        # Hudi on the driver's system class path too: with only spark.jars, queries on the Hudi table fail in
        # the server with NoClassDefFoundError org/apache/spark/sql/hudi/catalog/HoodieInternalV2Table
        # (seen with Spark 3.5.7 + Hudi 1.2.0); the statement threads do not see jars added via spark.jars.
        "spark.driver.extraClassPath": f"{settings.hudi_bundle_jar}:{conf['spark.driver.extraClassPath']}",
        "spark.driver.extraJavaOptions": (
            f"-Dlog4j2.configurationFile=file:{log4j} -Djava.io.tmpdir={_tmp_dir(settings)} "
            "-Djdk.attach.allowAttachSelf=true -XX:+UseSerialGC"
        ),
        "spark.hadoop.hive.server2.thrift.bind.host": config.host,
        "spark.hadoop.hive.server2.thrift.port": str(config.port),
        "spark.hadoop.hive.server2.transport.mode": "binary",
        "spark.hadoop.hive.server2.authentication": "CUSTOM" if settings.thrift_password else "NONE",
        "spark.hadoop.hive.server2.enable.doAs": "false",
        "spark.hadoop.hive.server2.thrift.min.worker.threads": "2",
        "spark.hadoop.hive.server2.thrift.max.worker.threads": "50",
        "spark.hadoop.hive.server2.logging.operation.enabled": "false",
    })
    if settings.thrift_password:
        conf["spark.hadoop.hive.server2.custom.authentication.class"] = AUTHENTICATOR
        # Hive 2.3's CustomAuthenticationProviderImpl reads the class from a fresh HiveConf (hive-site.xml and
        # system properties), not from Spark's confs: without this it instantiates the interface and fails
        conf["spark.driver.extraJavaOptions"] += f" -Dhive.server2.custom.authentication.class={AUTHENTICATOR}"
        conf["spark.driver.extraClassPath"] = f"{authenticator_jar(settings)}:{conf['spark.driver.extraClassPath']}"
    return conf


AUTHENTICATOR = "obsplatform.thrift.PasswordAuthenticator"
_AUTH_SOURCE = Path(__file__).with_name("java") / "obsplatform" / "thrift" / "PasswordAuthenticator.java"


def authenticator_jar(settings: Settings) -> Path:
    """The CUSTOM authentication provider, compiled against pyspark's own HiveServer2 classes (once per
    source version, under the state folder)."""
    import hashlib
    import zipfile

    digest = hashlib.sha256(_AUTH_SOURCE.read_bytes()).hexdigest()[:12]
    jar = settings.home / "thrift-server" / f"obs-thrift-auth-{digest}.jar"
    if jar.exists():
        return jar
    javac = Path(os.environ.get("JAVA_HOME", "/usr")) / "bin" / "javac"
    if not javac.exists():
        raise ThriftServerError(f"{javac} is missing: a JDK (not only a JRE) is needed for OBS_THRIFT_PASSWORD")
    classes = jar.parent / f"classes-{digest}"
    classes.mkdir(parents=True, exist_ok=True)
    classpath = ":".join(str(p) for p in (spark_home() / "jars").glob("spark-hive-thriftserver_*.jar"))
    done = subprocess.run([str(javac), "--release", "8", "-cp", classpath, "-d", str(classes), str(_AUTH_SOURCE)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ThriftServerError(f"javac failed on {_AUTH_SOURCE.name}:\n{done.stderr[-2000:]}")
    tmp = jar.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w") as out:
        for f in classes.rglob("*.class"):
            out.write(f, f.relative_to(classes).as_posix())
    tmp.rename(jar)
    return jar


def _log4j_file(settings: Settings) -> Path:
    path = settings.home / "thrift-server" / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOG4J2)
    return path


def _tmp_dir(settings: Settings) -> Path:
    path = settings.home / "thrift-server" / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def thrift_server_command(settings: Settings, pg: PostgresConfig, config: ThriftServerConfig) -> list[str]:
    submit = spark_home() / "bin" / "spark-submit"
    if not submit.exists():
        raise ThriftServerError(f"{submit} is missing: is the pip pyspark installed in this environment?")
    jar = spark_home() / "jars" / "spark-hive-thriftserver_2.12-3.5.7.jar"
    if not any((spark_home() / "jars").glob("spark-hive-thriftserver_*.jar")):
        raise ThriftServerError(
            f"pyspark has no spark-hive-thriftserver jar in {jar.parent}; fetch org.apache.spark:"
            "spark-hive-thriftserver_2.12:<pyspark version> with mvn dependency:copy into that folder"
        )
    # The confs go in a properties file readable by this user only (it holds the metastore's password, which
    # --conf arguments would show to every local user in `ps`).
    props = settings.home / "thrift-server" / "spark-thrift.conf"
    props.parent.mkdir(parents=True, exist_ok=True)
    props.touch(mode=0o600)
    os.chmod(props, 0o600)
    props.write_text("".join(f"{key}={escape_property(value)}\n"
                             for key, value in thrift_server_conf(settings, pg, config).items()))
    return [str(submit), "--properties-file", str(props), "--class", THRIFT_MAIN,
            "--name", "obs-platform-thrift-server", "spark-internal"]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc (Linux)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat_file.parent.name))
    return members


def rss_bytes(pid: int) -> int | None:
    """Resident memory of one process (Linux), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class ThriftServer:
    config: ThriftServerConfig
    process: subprocess.Popen
    log_path: Path
    user: str = "obs"
    password: str | None = field(default=None, repr=False)
    start_seconds: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def connect(self, username: str | None = None, database: str = "default", password: str | None = None):
        """A PyHive connection: SASL PLAIN with no password (``NONE``), or the configured user and password
        (``CUSTOM``) when the server has one; explicit ``username``/``password`` win (tests of the lock)."""
        from pyhive import hive

        password = password if password is not None else self.password
        if password is None:
            return hive.connect(host=self.config.host, port=self.config.port, username=username or "obs-platform",
                                database=database)
        return hive.connect(host=self.config.host, port=self.config.port, username=username or self.user,
                            password=password, auth="CUSTOM", database=database)

    def rss_bytes(self) -> int | None:
        return rss_bytes(self.pid)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM the process group (the JVM's shutdown hook stops the server and Spark), SIGKILL after grace."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("Thrift Server (pid %d) ignored SIGTERM for %.0fs; killing it", self.pid, grace)
        # whatever is left in the group (a helper the JVM had forked), killed outright
        deadline = time.monotonic() + 10
        while (left := group_members(self.process.pid)) and time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if left:
            log.error("Thrift Server: processes %s of group %d survived SIGKILL", left, self.process.pid)
        log.info("Thrift Server on %s:%d stopped", self.config.host, self.config.port)

    def __enter__(self) -> ThriftServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_thrift_server(settings: Settings, pg: PostgresConfig, config: ThriftServerConfig | None = None,
                        timeout: float = 180.0) -> ThriftServer:
    """Start the server and return once a PyHive client has run ``SELECT 1`` on it.

    The metastore's PostgreSQL must be running and its schema created (``ensure_postgres`` and
    ``ensure_metastore_schema``).
    """
    config = config or ThriftServerConfig.from_settings(settings)
    if _port_open(config.host, config.port):
        raise ThriftServerError(
            f"{config.host}:{config.port} is already in use; stop what runs there or set OBS_THRIFT_PORT"
        )
    cmd = thrift_server_command(settings, pg, config)
    log_path = settings.home / "log" / "thrift-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": config.host,
        # HiveServer2 lets these two override hive.server2.thrift.{port,bind.host}: set them, never inherit
        "HIVE_SERVER2_THRIFT_PORT": str(config.port),
        "HIVE_SERVER2_THRIFT_BIND_HOST": config.host,
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
    }
    env.pop("OBS_THRIFT_PASSWORD", None)
    if settings.thrift_password:  # read by PasswordAuthenticator in the JVM
        env["OBS_THRIFT_USER"] = settings.thrift_user
        env["OBS_THRIFT_PASSWORD"] = settings.thrift_password.get_secret_value()
    env.pop("SPARK_CONF_DIR", None)
    t0 = time.monotonic()
    with open(log_path, "ab") as out:
        out.write(f"\n==== starting Thrift Server on {config.host}:{config.port} at {time.ctime()}\n".encode())
        out.flush()
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=settings.home, start_new_session=True)
    server = ThriftServer(config, process, log_path, settings.thrift_user,
                          settings.thrift_password.get_secret_value() if settings.thrift_password else None)
    try:
        _wait_until_queryable(server, timeout)
    except BaseException:
        server.stop(grace=10)
        raise
    server.start_seconds = time.monotonic() - t0
    log.info("Thrift Server on %s:%d ready in %.1fs (pid %d, log %s)", config.host, config.port,
             server.start_seconds, server.pid, log_path)
    return server


def _wait_until_queryable(server: ThriftServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ThriftServerError(
                f"the Thrift Server exited with code {server.process.returncode} before it was ready"
                + _log_tail(server.log_path)
            )
        if _port_open(server.config.host, server.config.port):
            try:
                conn = server.connect()
                try:
                    cursor = conn.cursor()
                    cursor.execute("SELECT 1")
                    cursor.fetchall()
                    return
                finally:
                    conn.close()
            except Exception as exc:  # listening but not serving yet
                last = exc
        time.sleep(0.5)
    raise ThriftServerError(
        f"the Thrift Server did not answer on {server.config.host}:{server.config.port} within {timeout:.0f}s"
        f" (last error: {last})" + _log_tail(server.log_path)
    )


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail)
