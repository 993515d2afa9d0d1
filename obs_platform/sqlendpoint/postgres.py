"""A private PostgreSQL cluster that backs the Hive metastore on one machine.

Embedded Derby cannot be shared by two JVMs, and the metastore is shared by two: the Spark session that
runs Hudi's Hive sync and the Spark Thrift Server. So the embedded profile runs its own small PostgreSQL
cluster, all of whose state lives under ``<home>/metastore-pg`` (data, socket) and ``<home>/log``:

- ``initdb`` once (UTF8, C locale, peer auth on the unix socket, scram-sha-256 on TCP);
- ``pg_ctl start`` with ``listen_addresses=127.0.0.1``, a configurable port (5433 by default, so a
  system cluster on 5432 is left alone) and the unix socket inside home;
- a login role (``hive``) whose password comes from ``OBS_METASTORE_DB_PASSWORD`` (a dev default
  otherwise) and a database ``metastore`` it owns.

Every step is idempotent: ``ensure_postgres`` on a running cluster only checks it and (re)applies the role's
password. PostgreSQL refuses to run as root, so when this process is root the server runs as an
unprivileged account (``postgres`` by default, ``OBS_METASTORE_PG_OS_USER`` to change it).
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from obs_platform.errors import ObsPlatformError

log = logging.getLogger(__name__)

DEV_PASSWORD = "obs-metastore-dev"  # the embedded profile's default; set OBS_METASTORE_DB_PASSWORD elsewhere
DEFAULT_PORT = 5433
UNIX_SOCKET_MAX = 107  # sun_path is 108 bytes with the terminating NUL
INCLUDE_FILE = "obs_platform.conf"


class PostgresError(ObsPlatformError, RuntimeError):
    """The metastore's PostgreSQL could not be found, initialised, started or reached."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def find_pg_bin() -> Path:
    """The folder holding initdb/pg_ctl/postgres: ``OBS_PG_BIN``, else Debian's newest, else ``PATH``."""
    explicit = os.environ.get("OBS_PG_BIN")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted((p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
        candidates += [v / "bin" for v in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return folder
    raise PostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) were not found in "
        f"{[str(c) for c in candidates] or 'OBS_PG_BIN, /usr/lib/postgresql/*/bin or PATH'}; "
        "install them with `apt-get install -y postgresql` (Debian) or set OBS_PG_BIN"
    )


@dataclass(frozen=True)
class PostgresConfig:
    """Where the cluster lives and how clients reach it. Read from the environment by ``from_home``."""

    home: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    database: str = "metastore"
    user: str = "hive"
    password: str = field(default=DEV_PASSWORD, repr=False)
    os_user: str | None = None  # who runs the server when we are root; None = the current user

    @classmethod
    def from_home(cls, home: Path, host: str = "127.0.0.1", **overrides) -> PostgresConfig:
        """Defaults overridable by ``OBS_METASTORE_PG_PORT``, ``OBS_METASTORE_DB``, ``OBS_METASTORE_DB_USER``,
        ``OBS_METASTORE_DB_PASSWORD`` and ``OBS_METASTORE_PG_OS_USER``; explicit keyword overrides win."""
        values = {
            "port": int(_env("OBS_METASTORE_PG_PORT", str(DEFAULT_PORT))),
            "database": _env("OBS_METASTORE_DB", "metastore"),
            "user": _env("OBS_METASTORE_DB_USER", "hive"),
            "password": _env("OBS_METASTORE_DB_PASSWORD", DEV_PASSWORD),
            "os_user": os.environ.get("OBS_METASTORE_PG_OS_USER") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(home=Path(home), host=host, **values)

    @classmethod
    def from_settings(cls, settings, **overrides) -> PostgresConfig:
        """Like ``from_home(settings.home, settings.bind_host)``; Settings fields ``metastore_pg_port``,
        ``metastore_db``, ``metastore_db_user``, ``metastore_db_password`` (str or SecretStr) and
        ``metastore_pg_os_user`` are used when Settings has them (their env names are the same OBS_* ones)."""
        fields = {"port": "metastore_pg_port", "database": "metastore_db", "user": "metastore_db_user",
                  "password": "metastore_db_password", "os_user": "metastore_pg_os_user"}
        values = {}
        for key, name in fields.items():
            value = getattr(settings, name, None)
            if hasattr(value, "get_secret_value"):
                value = value.get_secret_value()
            if value is not None:
                values[key] = value
        return cls.from_home(settings.home, host=settings.bind_host, **{**values, **overrides})

    # --- paths --------------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self.home / "metastore-pg"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "metastore-pg.log"

    # --- clients ------------------------------------------------------------------------------------
    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"

    def server_user(self) -> str | None:
        """The account the server runs as: None means this process's own (non-root) user."""
        if os.geteuid() != 0:
            return None
        return self.os_user or "postgres"


@dataclass
class PostgresServer:
    """A running cluster (started by us or found running)."""

    config: PostgresConfig
    pid: int
    started: bool  # False when it was already running
    seconds: float  # time spent in ensure_postgres (init + start + role/database)
    initialised: bool = False

    @property
    def jdbc_url(self) -> str:
        return self.config.jdbc_url

    def stop(self) -> None:
        stop_postgres(self.config)


# --- running commands, as the server's account when we are root ---------------------------------------
class _Runner:
    def __init__(self, config: PostgresConfig):
        self.config = config
        self.bin = find_pg_bin()
        self.user = config.server_user()
        self.uid: int | None = None
        self.gid: int | None = None
        if self.user is not None:
            try:
                entry = pwd.getpwnam(self.user)
            except KeyError:
                raise PostgresError(
                    f"PostgreSQL refuses to run as root and the account {self.user!r} does not exist; create it "
                    f"(`useradd --system --no-create-home {self.user}`) or set OBS_METASTORE_PG_OS_USER to an "
                    "existing unprivileged account"
                ) from None
            if entry.pw_uid == 0:
                raise PostgresError(f"OBS_METASTORE_PG_OS_USER={self.user!r} is root; PostgreSQL refuses to run as root")
            self.uid, self.gid = entry.pw_uid, entry.pw_gid

    def run(self, tool: str, *args: str, input: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / tool), *args]
        kwargs: dict = {}
        if self.uid is not None:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[], umask=0o077)
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
                    **(env or {})}
        try:
            proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                  cwd="/", env=full_env, **kwargs)
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"`{' '.join(cmd[:2])} ...` did not finish within {timeout:.0f}s; "
                                f"see {self.config.log_file}") from exc
        if check and proc.returncode != 0:
            raise PostgresError(
                f"`{tool} {' '.join(args[:3])} ...` failed with exit code {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}" + _log_tail(self.config.log_file)
            )
        return proc

    def own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid)

    def make_reachable(self, path: Path) -> None:
        """Let the server's account traverse every folder above ``path`` (search bit only, no listing)."""
        if self.uid is None:
            return
        groups = {g.gr_gid for g in grp.getgrall() if self.user in g.gr_mem} | {self.gid}
        for folder in reversed(path.resolve().parents):
            st = folder.stat()
            if st.st_uid == self.uid:
                ok = bool(st.st_mode & stat.S_IXUSR)
            elif st.st_gid in groups:
                ok = bool(st.st_mode & stat.S_IXGRP)
            else:
                ok = bool(st.st_mode & stat.S_IXOTH)
            if not ok:
                log.warning("granting o+x (traverse only) on %s so the %s account reaches %s", folder, self.user, path)
                os.chmod(folder, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


@contextmanager
def file_lock(path: Path):
    """An exclusive lock between processes of this machine (two `make` steps, a test and a job)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last lines of {path} ---\n" + "\n".join(tail) if tail else ""


def _port_in_use(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def _running_pid_and_port(config: PostgresConfig) -> tuple[int, int] | None:
    """(pid, port) from postmaster.pid when that process is alive, else None."""
    pid_file = config.data_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another account's
    try:  # a stale pid file whose number now belongs to something else
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes() or _is_zombie(pid):
            return None
    except OSError:
        return None
    return pid, port


def _server_settings(config: PostgresConfig) -> str:
    sock = str(config.socket_dir).replace("'", "''")
    return "\n".join([
        "# Written by obs_platform.sqlendpoint.postgres on every start; edit the settings there instead.",
        f"listen_addresses = '{config.host}'",
        f"port = {config.port}",
        f"unix_socket_directories = '{sock}'",
        "unix_socket_permissions = 0700",
        "max_connections = 60",  # each metastore client JVM opens a small pool (DataNucleus, two pools)
        "shared_buffers = 32MB",
        "password_encryption = 'scram-sha-256'",
        "logging_collector = off",
        "log_min_messages = warning",
        "log_line_prefix = '%m [%p] '",
        "",
    ])


def _initdb(runner: _Runner, config: PostgresConfig) -> None:
    log.info("initdb %s (server account: %s)", config.data_dir, runner.user or "current user")
    runner.run(
        "initdb", "-D", str(config.data_dir), "--encoding=UTF8", "--locale=C", "--auth-local=peer",
        "--auth-host=scram-sha-256", "--no-instructions", timeout=180,
    )
    conf = config.data_dir / "postgresql.conf"
    with conf.open("a") as out:
        out.write(f"\n# obs-platform: listen address, port and socket folder\ninclude_if_exists = '{INCLUDE_FILE}'\n")


def _ensure_role_and_database(runner: _Runner, config: PostgresConfig) -> None:
    # psql variables quote the values (:'name' is a literal, format(%I) an identifier): no text is pasted into SQL.
    # The password travels on stdin (not argv, which other local users can read in `ps`).
    quoted = config.password.replace("\\", "\\\\").replace("'", "''")
    script = "\n".join([
        f"\\set password '{quoted}'",
        "SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS "
        "(SELECT FROM pg_roles WHERE rolname = :'role') \\gexec",
        "SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'password') \\gexec",
        "SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'role') "
        "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \\gexec",
        "",
    ])
    runner.run(
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(config.socket_dir), "-p", str(config.port),
        "-d", "postgres", "-v", f"role={config.user}",
        "-v", f"db={config.database}", input=script, timeout=60,
    )


def _check_tcp_login(runner: _Runner, config: PostgresConfig) -> None:
    """Log in the way the JVMs will: TCP on 127.0.0.1, the metastore role, its password."""
    runner.run(
        "psql", "-X", "-q", "-w", "-h", config.host, "-p", str(config.port), "-U", config.user,
        "-d", config.database, "-c", "SELECT 1", env={"PGPASSWORD": config.password, "PGCONNECT_TIMEOUT": "5"},
        timeout=30,
    )


def run_sql(config: PostgresConfig, sql: str, timeout: float = 60) -> list[list[str]]:
    """Run SQL as the metastore role over TCP (as the JVMs connect); return the rows as lists of strings."""
    runner = _Runner(config)
    proc = runner.run(
        "psql", "-X", "-q", "-w", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", config.host,
        "-p", str(config.port), "-U", config.user, "-d", config.database, input=sql,
        env={"PGPASSWORD": config.password, "PGCONNECT_TIMEOUT": "5"}, timeout=timeout,
    )
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


def ensure_postgres(config: PostgresConfig, timeout: float = 60.0) -> PostgresServer:
    """Initialise (once) and start the cluster, wait until it accepts logins, create the role and database."""
    t0 = time.monotonic()
    config.root.mkdir(parents=True, exist_ok=True)
    with file_lock(config.root / "ensure.lock"):
        return _ensure_postgres(config, timeout, t0)


def _ensure_postgres(config: PostgresConfig, timeout: float, t0: float) -> PostgresServer:
    if len(str(config.socket_dir / f".s.PGSQL.{config.port}")) > UNIX_SOCKET_MAX:
        raise PostgresError(
            f"the unix socket path {config.socket_dir}/.s.PGSQL.{config.port} is longer than {UNIX_SOCKET_MAX} bytes; "
            "use a shorter OBS_HOME"
        )
    runner = _Runner(config)
    config.root.mkdir(parents=True, exist_ok=True)
    config.log_file.parent.mkdir(parents=True, exist_ok=True)
    runner.make_reachable(config.root)
    os.chmod(config.root, 0o755)

    initialised = False
    if not (config.data_dir / "PG_VERSION").exists():
        if config.data_dir.exists() and any(config.data_dir.iterdir()):
            raise PostgresError(f"{config.data_dir} exists but holds no PostgreSQL cluster; move it away")
        config.data_dir.mkdir(mode=0o700, exist_ok=True)
        runner.own(config.data_dir)
        _initdb(runner, config)
        initialised = True
    config.socket_dir.mkdir(mode=0o700, exist_ok=True)
    runner.own(config.socket_dir)
    if not config.log_file.exists():
        config.log_file.touch(mode=0o640)
    runner.own(config.log_file)

    running = _running_pid_and_port(config)
    started = False
    if running and running[1] != config.port:
        raise PostgresError(
            f"the metastore cluster in {config.data_dir} already runs on port {running[1]}, not {config.port}; "
            "stop it first (stop_postgres) or use its port"
        )
    if not running:
        if _port_in_use(config.host, config.port):
            raise PostgresError(
                f"{config.host}:{config.port} is taken by another process; set OBS_METASTORE_PG_PORT to a free port"
            )
        include = config.data_dir / INCLUDE_FILE
        include.write_text(_server_settings(config))
        runner.own(include)
        log.info("starting PostgreSQL for the metastore on %s:%d", config.host, config.port)
        runner.run(
            "pg_ctl", "start", "-D", str(config.data_dir), "-l", str(config.log_file), "-w",
            "-t", str(int(timeout)), timeout=timeout + 10,
        )
        started = True
        running = _running_pid_and_port(config)
        if running is None:
            raise PostgresError("pg_ctl reported a start but postmaster.pid names no live process"
                                + _log_tail(config.log_file))
    _wait_ready(runner, config, timeout)
    _ensure_role_and_database(runner, config)
    _check_tcp_login(runner, config)
    seconds = time.monotonic() - t0
    log.info("metastore PostgreSQL ready on %s:%d (pid %d) in %.1fs", config.host, config.port, running[0], seconds)
    return PostgresServer(config, pid=running[0], started=started, seconds=seconds, initialised=initialised)


def _wait_ready(runner: _Runner, config: PostgresConfig, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc = runner.run("pg_isready", "-q", "-h", config.host, "-p", str(config.port), check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise PostgresError(f"PostgreSQL on port {config.port} did not accept connections within {timeout:.0f}s"
                                + _log_tail(config.log_file))
        time.sleep(0.2)


def postgres_running(config: PostgresConfig) -> bool:
    return _running_pid_and_port(config) is not None


def stop_postgres(config: PostgresConfig, timeout: float = 60.0) -> bool:
    """Stop the cluster with a *fast* shutdown (open sessions are rolled back). True when it was running.

    This signals the postmaster named in postmaster.pid (SIGINT, what ``pg_ctl stop -m fast`` sends; SIGQUIT
    if it does not finish in time) instead of running pg_ctl as the server's account: when we are root, that
    account may have lost its way to the data folder since the start (pytest, for one, resets its base
    folder to 0700 whenever another session starts), and stopping must not depend on it.
    """
    running = _running_pid_and_port(config)
    if running is None:
        return False
    pid = running[0]
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, wait):
            break
        log.warning("PostgreSQL (pid %d) still running %.0fs after %s", pid, wait, sig.name)
    else:
        raise PostgresError(f"PostgreSQL (pid {pid}) of {config.data_dir} survived SIGKILL")
    log.info("stopped the metastore PostgreSQL in %s", config.data_dir)
    return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if _is_zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True
