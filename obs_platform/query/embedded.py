"""The embedded backend: reads the Hudi table in-process with hudi-rs (``pip install hudi``), no JVM."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from hudi import HudiReadOptions, HudiTable

from obs_platform.lakehouse.table import EVENT_COLUMNS
from obs_platform.query.base import EventPage, EventQuery, EventReader

log = logging.getLogger(__name__)

COMMIT_TIME = "_hoodie_commit_time"
PROJECTION = [COMMIT_TIME, *EVENT_COLUMNS]


def _filter(table: pa.Table, query: EventQuery) -> pa.Table:
    mask = None

    def both(expr):
        nonlocal mask
        mask = expr if mask is None else pc.and_(mask, expr)

    if query.pipelines:
        both(pc.is_in(table["pipelineName"], pa.array(query.pipelines)))
    if query.stages:
        both(pc.is_in(table["stageName"], pa.array(query.stages)))
    if query.statuses:
        both(pc.is_in(table["status"], pa.array(query.statuses)))
    if query.correlation_id:
        both(pc.equal(table["correlationId"], query.correlation_id))
    return table if mask is None else table.filter(mask)


def to_page(table: pa.Table, query: EventQuery, latest_commit: str | None) -> EventPage:
    """Filter, order newest first, page, and turn rows into dicts with ``commitTime``."""
    table = _filter(table, query)
    total = table.num_rows
    if total:
        table = table.sort_by([("lastUpdatedAt", "descending"), ("eventId", "ascending")])
    table = table.slice(query.offset, query.limit)
    rows = table.to_pylist()
    for row in rows:
        row["commitTime"] = row.pop(COMMIT_TIME)
        row["attributes"] = dict(row.get("attributes") or [])
    return EventPage(events=rows, latest_commit=latest_commit, total=total)


class EmbeddedReader(EventReader):
    def __init__(self, table_uri: str):
        self.table_uri = table_uri

    def _table(self) -> HudiTable | None:
        if not (Path(self.table_uri.removeprefix("file://")) / ".hoodie").exists() and "://" not in self.table_uri:
            return None
        return HudiTable(self.table_uri)

    def latest_commit(self) -> str | None:
        table = self._table()
        if table is None:
            return None
        commits = table.get_timeline().get_completed_commits(desc=True)
        return commits[0].timestamp if commits else None

    def _read(self, table: HudiTable, options: HudiReadOptions) -> pa.Table:
        schema_names = set(table.get_schema_with_meta_fields().names)
        columns = [c for c in PROJECTION if c in schema_names]
        batches = table.read(options.with_projection(columns))
        result = pa.Table.from_batches(batches) if batches else pa.table({c: [] for c in columns})
        return _with_all_columns(result)

    def events(self, query: EventQuery) -> EventPage:
        table = self._table()
        latest = self.latest_commit() if table else None
        if table is None or latest is None:
            return EventPage(events=[], latest_commit=None, total=0)
        data = self._read(table, HudiReadOptions().with_as_of_timestamp(latest))
        return to_page(data, query, latest)

    def incremental(self, since: str, query: EventQuery) -> EventPage:
        table = self._table()
        latest = self.latest_commit() if table else None
        if table is None or latest is None or latest <= since:
            return EventPage(events=[], latest_commit=latest or since, total=0)
        data = self._read_changed_since(table, since, latest)
        return to_page(data, query, latest)

    def _read_changed_since(self, table: HudiTable, since: str, latest: str) -> pa.Table:
        """Rows whose newest state was committed in (since, latest].

        Reads only the file slices of the snapshot at ``latest`` that were written after ``since`` (a
        copy-on-write base file carries its commit's instant; a merge-on-read slice with log files may have
        newer rows), then keeps rows by ``_hoodie_commit_time``: a rewritten file also carries untouched rows.
        (hudi-rs 0.5's own incremental query was seen returning a file slice older than its end instant on
        copy-on-write, so it is not used.)
        """
        options = HudiReadOptions().with_as_of_timestamp(latest)
        changed = [
            s for s in table.get_file_slices(options)
            if _base_instant(s.base_file_name) > since or s.has_log_files()
        ]
        schema_names = set(table.get_schema_with_meta_fields().names)
        columns = [c for c in PROJECTION if c in schema_names]
        reader = table.create_file_group_reader_with_options(options)
        projected = HudiReadOptions(projection=columns)
        batches = [reader.read_file_slice(s, projected) for s in changed]
        data = pa.Table.from_batches(batches) if batches else pa.table({c: [] for c in columns})
        data = _with_all_columns(data)
        return data.filter(pc.greater(data[COMMIT_TIME], since))


def _base_instant(base_file_name: str) -> str:
    """The commit instant in a base file name: ``<fileId>_<writeToken>_<instant>.parquet``."""
    return base_file_name.rsplit("_", 1)[-1].split(".", 1)[0]


def _with_all_columns(result: pa.Table) -> pa.Table:
    """Columns an older schema lacks read as null (schema evolution); order as PROJECTION."""
    for name in PROJECTION:
        if name not in result.column_names:
            result = result.append_column(name, pa.nulls(result.num_rows))
    return result.select(PROJECTION)
