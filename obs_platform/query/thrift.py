"""The ``thrift`` backend: the table's rows read with Spark SQL through the Spark Thrift Server (PyHive).

What is SQL and what is shared with the embedded backend:

- **SQL over PyHive** (against ``<database>.<table>``, ``observability.pipeline_events`` by default, as
  Hudi's Hive sync registered it): every read of rows: ``events`` (filtered, ordered, paged, counted),
  ``incremental``, ``any_at``, ``changes_in``, ``event_history`` and ``stats``. ``commitTime`` is Hudi's meta
  column ``_hoodie_commit_time``; time travel is ``TIMESTAMP AS OF '<instant as yyyy-MM-dd HH:mm:ss.SSS>'``
  (Spark's parser refuses the bare 17 digits, see ``_Params.as_of``). Every read is pinned
  to a commit (the newest one unless asked otherwise), so a page is consistent with the ``latestCommit``/
  ``asOf`` it reports even when a commit lands meanwhile.
- **Shared with the embedded backend** (these are not table queries): ``latest_commit``, ``commits`` and
  ``maintenance`` read the Hudi timeline folder (``obs_platform.lakehouse.timeline`` and hudi-rs' timeline API,
  through an ``EmbeddedReader`` that never reads data files for them); dead letters are read from the
  dead-letter store by the BFF directly (``obs_platform.query.dead_letters``), whatever the backend.

Safety: no request value is ever formatted into SQL. Values are bound with PyHive's parameter binding
(``%(name)s``), and every text value is bound *hex-encoded* and decoded in SQL
(``decode(unhex(%(p0)s), 'UTF-8')``): PyHive's escaping only doubles single quotes, which Spark SQL does not
honour on its own (a backslash escapes a quote there) and which leaves ``${...}`` variable substitution
possible; a hex string has neither problem. Instants are validated (17 digits) before they are bound,
statuses come only from the fixed enum, numbers are ints, and the table's identifiers come from settings
and are checked against ``[A-Za-z_][A-Za-z0-9_]*``.

Connections: a small pool. An open connection keeps a cached view of the table until ``REFRESH TABLE``, so a
connection is refreshed when it is taken from the pool and the timeline has moved since its last refresh
(a new connection needs none). Methods block; the BFF calls them from its thread pool (``def`` routes).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from obs_platform.errors import InvalidInput, NotFound, ObsPlatformError
from obs_platform.query.base import (
    CommitInfo,
    EventPage,
    EventQuery,
    EventReader,
    Maintenance,
    StatsQuery,
    StatsRow,
    parse_instant,
)

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGITS = re.compile(r"^\d{14}(\d{3})?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER = "ORDER BY lastUpdatedAt DESC, eventId ASC"
# (sql expression, output name) in the order of the embedded backend's rows (commitTime, then Event fields)
_COLUMNS = (
    ("_hoodie_commit_time", "commitTime"),
    ("eventId", "eventId"),
    ("correlationId", "correlationId"),
    ("pipelineName", "pipelineName"),
    ("stageName", "stageName"),
    ("status", "status"),
    ("unix_micros(eventTimestamp)", "eventTimestamp"),
    ("processedRecordCount", "processedRecordCount"),
    ("sourceRecordCount", "sourceRecordCount"),
    ("errorMessage", "errorMessage"),
    ("unix_micros(lastUpdatedAt)", "lastUpdatedAt"),
    ("dataQualityScore", "dataQualityScore"),
    ("to_json(attributes)", "attributes"),
    ("schemaVersion", "schemaVersion"),
)
_SELECT = ", ".join(expr for expr, _ in _COLUMNS)
_TIMES = {"eventTimestamp", "lastUpdatedAt"}


class ThriftQueryError(ObsPlatformError, RuntimeError):
    pass


def _cursor(value: str, parameter: str) -> str:
    """A commit cursor to compare ``_hoodie_commit_time`` with: 14 or 17 digits, returned as 17. Not checked as
    a date: the base class passes ``"0" * 17`` ("before every commit") when no healthy commit exists."""
    if not _DIGITS.match(value or ""):
        raise InvalidInput(parameter, f"{value[:50]!r} is not a commit instant; expected 17 digits, yyyyMMddHHmmssSSS")
    return value if len(value) == 17 else value + "000"


def _micros(moment: datetime) -> int:
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def _row(values: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (_, name), value in zip(_COLUMNS, values, strict=True):
        if name in _TIMES:
            value = None if value is None else _EPOCH + timedelta(microseconds=int(value))
        elif name == "attributes":
            value = json.loads(value) if value else {}
        elif name == "commitTime":
            value = str(value)
        out[name] = value
    return out


class _Params(dict):
    """Bound parameters of one statement; ``text`` binds a request string hex-encoded (see the docstring)."""

    def _name(self) -> str:
        return f"p{len(self)}"

    def text(self, value: str) -> str:
        name = self._name()
        self[name] = value.encode("utf-8", "surrogatepass").hex()
        return f"decode(unhex(%({name})s), 'UTF-8')"

    def texts(self, values) -> str:
        return "(" + ", ".join(self.text(v) for v in values) + ")"

    def number(self, value: int) -> str:
        name = self._name()
        self[name] = int(value)
        return f"%({name})s"

    def instant(self, value: str) -> str:
        name = self._name()
        self[name] = _cursor(value, "commit")  # 17 digits, nothing else
        return f"%({name})s"

    def as_of(self, value: str) -> str:
        """A commit instant as the timestamp literal Spark's ``TIMESTAMP AS OF`` casts (Spark's parser takes the
        clause before Hudi's, and refuses the bare 17 digits): ``yyyy-MM-dd HH:mm:ss.SSS``, read in the
        server's session time zone (UTC, ``spark_conf``), which is the timeline's (``hoodie.table.timeline.
        timezone=UTC``). Hudi answers with the newest commit *requested* at or before it."""
        i = parse_instant(value, "commit")
        name = self._name()
        self[name] = f"{i[0:4]}-{i[4:6]}-{i[6:8]} {i[8:10]}:{i[10:12]}:{i[12:14]}.{i[14:17]}"
        return f"%({name})s"


def _where(params: _Params, query: EventQuery, after: str | None = None, commit: str | None = None) -> str:
    clauses = []
    if query.pipelines:
        clauses.append(f"pipelineName IN {params.texts(query.pipelines)}")
    if query.stages:
        clauses.append(f"stageName IN {params.texts(query.stages)}")
    if query.statuses:  # validated against the enum by EventQuery; bound all the same
        clauses.append(f"status IN {params.texts(query.statuses)}")
    if query.correlation_id is not None:
        clauses.append(f"correlationId = {params.text(query.correlation_id)}")
    if query.event_ids:
        clauses.append(f"eventId IN {params.texts(query.event_ids)}")
    if query.from_time is not None:
        clauses.append(f"eventTimestamp >= timestamp_micros({params.number(_micros(query.from_time))})")
    if query.to_time is not None:
        clauses.append(f"eventTimestamp < timestamp_micros({params.number(_micros(query.to_time))})")
    if query.text:
        clauses.append(f"instr(lower(errorMessage), lower({params.text(query.text)})) > 0")
    if after is not None:
        clauses.append(f"_hoodie_commit_time > {params.instant(after)}")
    if commit is not None:
        clauses.append(f"_hoodie_commit_time = {params.instant(commit)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


class _Pool:
    """A few PyHive connections; each remembers the commit it last refreshed the table at."""

    def __init__(self, connect, size: int):
        self._connect = connect
        self._size = size
        self._idle: list[tuple[Any, str | None]] = []
        self._lock = threading.Lock()

    def take(self) -> tuple[Any, str | None, bool]:
        with self._lock:
            if self._idle:
                conn, refreshed = self._idle.pop()
                return conn, refreshed, False
        return self._connect(), None, True

    def give(self, conn, refreshed: str | None) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append((conn, refreshed))
                return
        _close(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            _close(conn)


def _close(conn) -> None:
    try:
        conn.close()
    except Exception:  # already gone
        pass


class ThriftReader(EventReader):
    backend = "thrift"

    def __init__(self, table_uri: str, host: str, port: int, database: str = "observability",
                 table: str = "pipeline_events", pool_size: int = 4, username: str = "obs-platform-bff",
                 password: str | None = None):
        for name, value in (("database", database), ("table", table)):
            if not _IDENTIFIER.match(value or ""):
                raise InvalidInput(name, f"{value!r} is not a plain SQL identifier")
        from obs_platform.query.embedded import EmbeddedReader

        self.table_uri = table_uri
        self.host, self.port, self.username, self._password = host, int(port), username, password
        self.qualified = f"`{database}`.`{table}`"
        self._timeline = EmbeddedReader(table_uri, cache=False)  # timeline reads only (see the docstring)
        self._pool = _Pool(self._connect, pool_size)

    @classmethod
    def from_settings(cls, settings, **options) -> ThriftReader:
        if settings.thrift_password:  # the server takes only its configured user then
            options = {"username": settings.thrift_user,
                       "password": settings.thrift_password.get_secret_value(), **options}
        return cls(settings.table_uri, host=settings.bind_host, port=settings.thrift_port,
                   database=settings.database, table=settings.table, **options)

    # --- connections ---------------------------------------------------------------------------------------
    def _connect(self):
        from pyhive import hive

        if self._password is None:
            return hive.connect(host=self.host, port=self.port, username=self.username, database="default")
        return hive.connect(host=self.host, port=self.port, username=self.username, password=self._password,
                            auth="CUSTOM", database="default")

    def _query(self, sql: str, params: dict | None = None, latest: str | None = None) -> list[tuple]:
        """Run one statement with bound parameters; the connection's view of the table is refreshed first
        when the timeline has moved past what it last saw (``latest``)."""
        conn, refreshed, new = self._pool.take()
        try:
            cursor = conn.cursor()
            if not new and latest is not None and refreshed != latest:
                cursor.execute(f"REFRESH TABLE {self.qualified}")
            if new or latest is not None:
                refreshed = latest
            cursor.execute(sql, params or None)
            rows = [tuple(r) for r in cursor.fetchall()]
            cursor.close()
        except Exception:
            _close(conn)
            raise
        self._pool.give(conn, refreshed)
        return rows

    def _source(self, params: _Params, commit: str) -> str:
        """The table as of a commit (Hudi time travel), bound as a validated instant."""
        return f"{self.qualified} TIMESTAMP AS OF {params.as_of(commit)}"

    # --- the timeline: shared with the embedded backend ------------------------------------------------------
    def latest_commit(self) -> str | None:
        return self._timeline.latest_commit()

    def commits(self) -> list[CommitInfo]:
        return self._timeline.commits()

    def maintenance(self) -> Maintenance:
        return self._timeline.maintenance()

    # --- rows: SQL ----------------------------------------------------------------------------------------
    def _answered(self, as_of: str | None) -> tuple[str | None, str | None]:
        latest = self.latest_commit()
        if latest is None:
            return None, None
        if as_of is not None:
            as_of = parse_instant(as_of, "as_of")
        return latest, latest if as_of is None or as_of >= latest else as_of

    def _page(self, query: EventQuery, latest: str, answered: str, after: str | None = None) -> EventPage:
        params = _Params()
        source = self._source(params, answered)
        where = _where(params, query, after=after)
        # paged by row_number, not LIMIT/OFFSET: with OFFSET, Hudi's SQL parser hands the statement to Spark's,
        # which refuses TIMESTAMP AS OF on the table (UNSUPPORTED_FEATURE.TIME_TRAVEL)
        names = ", ".join(f"c{n}" for n in range(len(_COLUMNS)))
        inner = ", ".join(f"{expr} AS c{n}" for n, (expr, _) in enumerate(_COLUMNS))
        first, last = params.number(query.offset), params.number(query.offset + query.limit)
        sql = (f"SELECT {names}, total FROM (SELECT {inner}, count(1) OVER () AS total, "
               f"row_number() OVER ({_ORDER}) AS rn FROM {source}{where}) WHERE rn > {first} AND rn <= {last} "
               "ORDER BY rn")
        rows = self._query(sql, params, latest)
        if rows:
            total = int(rows[0][-1])
        elif query.offset:
            params = _Params()
            source = self._source(params, answered)
            total = int(self._query(f"SELECT count(1) FROM {source}{_where(params, query, after=after)}",
                                    params, latest)[0][0])
        else:
            total = 0
        return EventPage(events=[_row(r[:-1]) for r in rows], latest_commit=latest, total=total, as_of=answered)

    def events(self, query: EventQuery, as_of: str | None = None) -> EventPage:
        latest, answered = self._answered(as_of)
        if latest is None:
            return EventPage(events=[], latest_commit=None, total=0, as_of=None)
        return self._page(query, latest, answered)

    def incremental(self, since: str, query: EventQuery, as_of: str | None = None) -> EventPage:
        since = _cursor(since, "since")
        latest, answered = self._answered(as_of)
        if latest is None:
            return EventPage(events=[], latest_commit=None, total=0, as_of=None)
        if since >= answered:
            return EventPage(events=[], latest_commit=latest, total=0, as_of=answered)
        return self._page(query, latest, answered, after=since)

    def any_at(self, query: EventQuery, as_of: str) -> bool:
        latest, answered = self._answered(as_of)
        if latest is None:
            return False
        params = _Params()
        sql = f"SELECT 1 FROM {self._source(params, answered)}{_where(params, query)} LIMIT 1"
        return bool(self._query(sql, params, latest))

    def changes_in(self, commit: str) -> list[dict[str, Any]]:
        commit = parse_instant(commit, "commit")
        latest = self.latest_commit()
        if latest is None:
            return []
        params = _Params()
        source = self._source(params, commit)
        sql = f"SELECT {_SELECT} FROM {source}{_where(params, EventQuery(), commit=commit)} {_ORDER}"
        return [_row(r) for r in self._query(sql, params, latest)]

    def event_history(self, event_id: str) -> list[dict[str, Any]]:
        current = self.events(EventQuery(event_ids=(event_id,), limit=1))
        if not current.events:
            raise NotFound(f"Event {event_id!r} not found.")
        row = current.events[0]
        oldest = self.oldest_retained_commit()
        commits = sorted(c.instant for c in self.commits() if c.action != "replacecommit"
                         and (oldest is None or c.instant >= oldest) and c.instant <= row["commitTime"])
        versions: list[dict[str, Any]] = []
        for start in range(0, len(commits), 50):  # one statement per 50 commits: the row as each one wrote it
            params = _Params()
            parts = []
            for commit in commits[start:start + 50]:
                source = self._source(params, commit)
                parts.append(f"SELECT {_SELECT} FROM {source}"
                             f"{_where(params, EventQuery(event_ids=(event_id,)), commit=commit)}")
            rows = self._query(" UNION ALL ".join(parts), params, current.latest_commit)
            versions.extend(sorted((_row(r) for r in rows), key=lambda v: v["commitTime"]))
        return versions or [row]

    def stats(self, query: StatsQuery) -> list[StatsRow]:
        latest = self.latest_commit()
        if latest is None:
            return []
        params = _Params()
        source = self._source(params, latest)
        clauses = []
        if query.pipelines:
            clauses.append(f"pipelineName IN {params.texts(query.pipelines)}")
        if query.from_time is not None:
            clauses.append(f"lastUpdatedAt >= timestamp_micros({params.number(_micros(query.from_time))})")
        if query.to_time is not None:
            clauses.append(f"lastUpdatedAt < timestamp_micros({params.number(_micros(query.to_time))})")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        width = params.number(query.seconds * 1_000_000)
        sql = (f"SELECT pipelineName, (unix_micros(lastUpdatedAt) div {width}) * {width} AS bucket, count(1), "
               "sum(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END), sum(coalesce(processedRecordCount, 0)), "
               f"min(unix_micros(lastUpdatedAt)), max(unix_micros(lastUpdatedAt)) FROM {source}{where} "
               "GROUP BY 1, 2 ORDER BY 2, 1")
        rows = self._query(sql, params, latest)
        if not rows:
            return []
        first = _EPOCH + timedelta(microseconds=min(int(r[5]) for r in rows))
        last = _EPOCH + timedelta(microseconds=max(int(r[6]) for r in rows))
        query.check_span(first, last)
        return [StatsRow(pipeline_name=r[0], bucket_start=_EPOCH + timedelta(microseconds=int(r[1])),
                         events=int(r[2]), failures=int(r[3]), records_processed=int(r[4])) for r in rows]

    def close(self) -> None:
        self._pool.close()
        self._timeline.close()


__all__ = ["ThriftReader", "ThriftQueryError"]
