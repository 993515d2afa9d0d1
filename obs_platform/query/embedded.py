"""The embedded backend: reads the Hudi table in-process with hudi-rs (``pip install hudi``), no JVM.

Current state comes from a cached view (``view.View``) kept in this process and refreshed when the timeline
shows a newer commit, by reading only the file slices that changed since the cached commit. (hudi-rs 0.5's
own incremental query was seen returning a file slice older than its end instant on copy-on-write, so file
slices are read directly.) Time travel to commit ``c`` reuses the view too: rows whose current state was
committed at or before ``c`` are exactly the state at ``c`` for those keys; the rest come from the file
slices visible at ``c`` that are no longer current (read once, kept in a bounded LRU of rows), limited to
the keys changed after ``c``. The table has no deletes (events are only upserted), which this relies on.

``cache=False`` reads the whole table per request instead (the benchmark's "full scan" baseline).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hudi import HudiFileSlice, HudiQueryType, HudiReadOptions, HudiTable

from obs_platform.errors import InvalidInput, NotFound
from obs_platform.lakehouse import timeline as tl
from obs_platform.query.base import (
    CommitInfo,
    EventPage,
    EventQuery,
    EventReader,
    Maintenance,
    StatsQuery,
    StatsRow,
    TimelineAction,
)
from obs_platform.query.view import (
    COMMIT,
    READ_COLUMNS,
    SCHEMA,
    Part,
    View,
    _np_mask,
    empty,
    matching,
    normalize,
    select,
    sort_rows,
    to_events,
)

log = logging.getLogger(__name__)

WRITE_ACTIONS = ("commit", "deltacommit", "replacecommit")


def _log_instant(log_file_name: str) -> str:
    """The delta commit that wrote a log file: ``.<fileId>_<instant>.log.<version>_<writeToken>``."""
    return log_file_name.split("_", 1)[1].split(".log", 1)[0]


def slice_key(s: HudiFileSlice, upto: str | None = None) -> str:
    """A file slice's identity as of commit ``upto``: its base file and the log files written by then.
    (hudi-rs 0.5 lists a merge-on-read slice as of an older commit with log files written after it.)"""
    key = f"{s.partition_path}/{s.base_file_name}"
    logs = [n for n in s.log_file_names if upto is None or _log_instant(n) <= upto]
    return key + "|" + ",".join(logs) if logs else key


def _base_instant(base_file_name: str) -> str:
    """The commit instant in a base file name: ``<fileId>_<writeToken>_<instant>.parquet``."""
    return base_file_name.rsplit("_", 1)[-1].split(".", 1)[0]


def _written_at(s: HudiFileSlice, instant: str) -> bool:
    """Did the commit ``instant`` write this slice (its base file, or one of its log files)?"""
    return _base_instant(s.base_file_name) == instant or any(f"_{instant}.log" in n for n in s.log_file_names)


class _RowsLRU:
    """Normalized rows of file slices, least recently used evicted past ``max_rows``."""

    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self._items: OrderedDict[str, pa.Table] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> pa.Table | None:
        with self._lock:
            table = self._items.get(key)
            if table is not None:
                self._items.move_to_end(key)
            return table

    def put(self, key: str, table: pa.Table) -> None:
        with self._lock:
            if key in self._items or table.num_rows > self.max_rows:
                return
            self._items[key] = table
            self._rows += table.num_rows
            while self._rows > self.max_rows:
                _, old = self._items.popitem(last=False)
                self._rows -= old.num_rows


class _SmallLRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def remember(self, key, value):
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)
        return value

    def recall(self, key):
        with self.lock:
            value = self.get(key)
            if value is not None:
                self.move_to_end(key)
            return value


class EmbeddedReader(EventReader):
    backend = "embedded"

    def __init__(self, table_uri: str, cache: bool = True, history_rows: int = 1_000_000, max_parts: int = 8,
                 max_dead_fraction: float = 0.2):
        self.table_uri = table_uri
        self.cache = cache
        self.max_parts = max_parts
        self.max_dead_fraction = max_dead_fraction
        self._lock = threading.Lock()       # one refresh at a time
        self._view: View | None = None
        self._rows_lru = _RowsLRU(history_rows)
        self._slices_at = _SmallLRU(64)     # commit -> file slices visible at it (immutable once completed)
        self._travel = _SmallLRU(8)         # (commit, view version) -> parts of the state at commit
        self._stats = _SmallLRU(32)         # (query, view version) -> stats rows
        self._meta: dict[str, dict] = {}    # commit -> its metadata (immutable once completed)

    @classmethod
    def from_settings(cls, settings, **options) -> EmbeddedReader:
        return cls(settings.table_uri, **options)

    # --- the table and its timeline ----------------------------------------------------------------------
    def _hudi(self) -> HudiTable | None:
        if "://" not in self.table_uri and not (Path(self.table_uri) / ".hoodie" / "hoodie.properties").exists():
            return None
        return HudiTable(self.table_uri)

    def _instants(self, hudi: HudiTable):
        timeline = hudi.get_timeline()
        instants = [*timeline.get_completed_commits(), *timeline.get_completed_deltacommits(),
                    *timeline.get_completed_replacecommits()]
        return timeline, sorted({i.timestamp: i for i in instants}.values(), key=lambda i: i.timestamp, reverse=True)

    def latest_commit(self) -> str | None:
        known, instant = tl.latest_write_instant(self.table_uri)
        if known:
            return instant
        hudi = self._hudi()
        if hudi is None:
            return None
        _, instants = self._instants(hudi)
        return instants[0].timestamp if instants else None

    def _metadata(self, timeline, instant) -> dict:
        meta = self._meta.get(instant.timestamp)
        if meta is None:
            try:
                meta = json.loads(timeline.get_instant_metadata_in_json(instant))
            except Exception as exc:  # a commit without readable metadata still lists
                log.warning("no metadata for %s: %s", instant.timestamp, exc)
                meta = {}
            meta.get("extraMetadata", {}).pop("schema", None)
            self._meta[instant.timestamp] = meta
        return meta

    def commits(self) -> list[CommitInfo]:
        hudi = self._hudi()
        if hudi is None:
            return []
        timeline, instants = self._instants(hudi)
        done = tl.completion_times(tl.list_timeline(self.table_uri))
        active = {i.timestamp for i in instants}
        for gone in [t for t in self._meta if t not in active]:  # archived or rolled back: forget
            self._meta.pop(gone, None)
        out = []
        for instant in instants:
            meta = self._metadata(timeline, instant)
            totals = {"numInserts": 0, "numUpdateWrites": 0, "numWrites": 0, "totalWriteBytes": 0}
            for stats in (meta.get("partitionToWriteStats") or {}).values():
                for stat in stats:
                    for key in totals:
                        totals[key] += int(stat.get(key) or 0)
            completed = done.get(instant.timestamp)
            out.append(CommitInfo(
                instant=instant.timestamp, action=instant.action,
                completed_at=datetime.strptime(completed, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC) if completed else None,
                rows_inserted=totals["numInserts"], rows_updated=totals["numUpdateWrites"],
                rows_written=totals["numWrites"], bytes_written=totals["totalWriteBytes"],
                operation=meta.get("operationType"),
            ))
        return out

    def maintenance(self) -> Maintenance:
        files = tl.list_timeline(self.table_uri)
        done = [f for f in files if f.state == "completed"]
        writes = [f for f in done if f.action in WRITE_ACTIONS]
        data = [f for f in writes if f.action != "replacecommit"]

        def last(*actions: str, planned: str | None = None) -> TimelineAction | None:
            hits = [f for f in done if f.action in actions or (planned and f.planned == planned)]
            return TimelineAction(hits[-1].instant, hits[-1].planned or hits[-1].action,
                                  hits[-1].completed_at) if hits else None

        clean = last("clean")
        retain = None
        if clean:
            retain = tl.earliest_commit_to_retain(next(f for f in done if f.instant == clean.instant and f.action == "clean"), self.table_uri)
        readable = [f.instant for f in data if retain is None or f.instant >= retain]
        return Maintenance(
            latest_commit=writes[-1].instant if writes else None,
            commit_count=len(data),
            oldest_retained_commit=readable[0] if readable else None,
            earliest_commit_to_retain=retain,
            last_clustering=last("replacecommit", planned="clustering"),
            last_compaction=last(planned="compaction"),
            last_clean=clean,
            last_rollback=last("rollback", "restore"),
            pending=[TimelineAction(f.instant, f.action, None) for f in files if f.state != "completed"],
            savepoints=[f.instant for f in done if f.action == "savepoint"],
        )

    # --- reading file slices -----------------------------------------------------------------------------
    def _slices(self, hudi: HudiTable, commit: str) -> list[HudiFileSlice]:
        slices = self._slices_at.recall(commit)
        if slices is None:
            slices = self._slices_at.remember(commit, hudi.get_file_slices(HudiReadOptions().with_as_of_timestamp(commit)))
        return slices

    def _read_slice(self, hudi: HudiTable, s: HudiFileSlice, commit: str, remember: bool = True) -> pa.Table:
        key = slice_key(s, commit)
        cached = self._rows_lru.get(key)
        if cached is not None:
            return cached
        reader = hudi.create_file_group_reader_with_options(HudiReadOptions().with_as_of_timestamp(commit))
        try:
            batch = reader.read_file_slice(s, HudiReadOptions(projection=READ_COLUMNS))
        except Exception as exc:
            if "Projection column not found" not in str(exc):
                raise
            batch = reader.read_file_slice(s)  # an older schema lacks a newer column: nulls (normalize)
        rows = sort_rows(normalize(pa.Table.from_batches([batch])))
        if remember:
            self._rows_lru.put(key, rows)
        return rows

    def _read_all(self, hudi: HudiTable, slices: list[HudiFileSlice], commit: str, remember: bool) -> pa.Table:
        tables = [self._read_slice(hudi, s, commit, remember) for s in slices]
        return pa.concat_tables(tables) if tables else empty()

    # --- the current state ---------------------------------------------------------------------------------
    def _current(self) -> View | None:
        latest = self.latest_commit()
        if latest is None:
            return None
        view = self._view
        if view is not None and view.commit == latest and self.cache:
            return view
        with self._lock:
            latest = self.latest_commit()  # again, under the lock: another thread may have moved on
            view = self._view
            if view is not None and view.commit == latest and self.cache:
                return view
            hudi = self._hudi()
            slices = self._slices(hudi, latest)
            keys = frozenset(slice_key(s) for s in slices)
            if view is None or not self.cache or latest < view.commit:  # (older: a restore rolled commits back)
                base = sort_rows(self._read_all(hudi, slices, latest, remember=False))
                view = View(latest, [Part(base.combine_chunks())], keys)
            else:
                changed = self._commit_rows(hudi, view.commit, latest)
                if changed is None:  # copy-on-write (or no completion times): read the slices that changed
                    new = [s for s in slices if slice_key(s) not in view.slice_keys]
                    rows = self._read_all(hudi, new, latest, remember=False)
                    changed = rows.filter(pc.greater(rows[COMMIT], int(view.commit)))
                else:
                    changed = view.not_older(changed)
                view = view.advanced(latest, changed, keys, max_parts=self.max_parts)
                if view.needs_compaction(0.5):  # nobody compacted in time (no watcher): bound the dead rows
                    view = view.compacted()
            if self.cache:
                self._view = view
                self._travel.clear()  # its entries hold the previous view's parts
                self._stats.clear()
            return view

    def _commit_rows(self, hudi: HudiTable, after: str, until: str) -> pa.Table | None:
        """On merge-on-read, the rows written by the commits after ``after`` up to ``until``: an incremental
        read of only their log files (a file slice there is the whole file group: re-reading it per commit
        would cost the day's partition). hudi-rs bounds incremental reads by *completion* time (given
        instants it answers for the previous commit), hence the lookup. None where this does not apply."""
        if not hudi.is_mor:
            return None
        done = tl.completion_times(tl.list_timeline(self.table_uri))
        start, end = done.get(after), done.get(until)
        if not (start and end):
            return None
        options = (HudiReadOptions().with_query_type(HudiQueryType.Incremental)
                   .with_start_timestamp(start).with_end_timestamp(end))
        batches = hudi.read(options)
        return sort_rows(normalize(pa.Table.from_batches(batches))) if batches else empty()

    def refresh(self) -> str | None:
        """Bring the view up to the newest commit now, and compact it if dead rows piled up (the BFF's
        timeline watcher calls it at start and on each new commit, so requests never pay for a full sort)."""
        view = self._current()
        if view is None:
            return None
        if self.cache and view.needs_compaction(self.max_dead_fraction):
            compacted = view.compacted()  # outside the lock: requests keep reading the current view
            with self._lock:
                if self._view is view:
                    self._view = compacted
                    self._travel.clear()
                    self._stats.clear()
        return view.commit

    def _state_at(self, commit: str, view: View) -> list[Part]:
        """The table's state at ``commit`` (<= the view's) as parts of SORT-ordered rows."""
        if commit == view.commit:
            return view.parts
        remembered = self._travel.recall((commit, view.version))
        if remembered is not None:
            return remembered
        hudi = self._hudi()
        try:
            slices = self._slices(hudi, commit)
        except Exception as exc:
            raise InvalidInput("as_of", f"commit {commit} cannot be read any more ({exc}); it is past the "
                                        "time-travel horizon") from None
        if not self.cache:
            return [Part(sort_rows(self._read_all(hudi, slices, commit, remember=False)))]
        until = int(commit)
        parts, changed_ids = [], []
        for part in view.parts:  # unchanged since commit: the current row is the row at commit
            older = _np_mask(pc.less_equal(part.rows[COMMIT], until))
            changed = ~older if part.alive is None else part.alive & ~older
            if changed.any():
                changed_ids.append(part.rows["eventId"].take(pa.array(np.flatnonzero(changed))))
            parts.append(part.with_alive(older if part.alive is None else part.alive & older))
        gone = [s for s in slices if slice_key(s, commit) not in view.slice_keys]
        if changed_ids and gone:
            try:
                old = self._read_all(hudi, gone, commit, remember=True)
            except Exception as exc:
                raise InvalidInput("as_of", f"commit {commit}'s files cannot be read ({exc}); it is past the "
                                            "time-travel horizon") from None
            ids = pa.chunked_array(changed_ids).combine_chunks()
            old = old.filter(pc.is_in(old["eventId"], pc.unique(ids)))
            if old.num_rows:
                parts.append(Part(sort_rows(old)))
        return self._travel.remember((commit, view.version), parts)

    def _parts(self, as_of: str | None) -> tuple[View | None, list[Part]]:
        view = self._current()
        if view is None:
            return None, []
        if as_of is None or as_of >= view.commit:
            return view, view.parts
        return view, self._state_at(as_of, view)

    # --- the interface -------------------------------------------------------------------------------------
    def events(self, query: EventQuery, as_of: str | None = None) -> EventPage:
        view, parts = self._parts(as_of)
        if view is None:
            return EventPage(events=[], latest_commit=None, total=0, as_of=None)
        rows, total = select(parts, query, query.offset, query.limit)
        answered = view.commit if as_of is None or as_of >= view.commit else as_of
        return EventPage(events=to_events(rows), latest_commit=view.commit, total=total, as_of=answered)

    def incremental(self, since: str, query: EventQuery, as_of: str | None = None) -> EventPage:
        if not self.cache and as_of is None:
            return self._incremental_uncached(since, query)
        view, parts = self._parts(as_of)
        if view is None:
            return EventPage(events=[], latest_commit=None, total=0, as_of=None)
        answered = view.commit if as_of is None or as_of >= view.commit else as_of
        if since >= answered:
            return EventPage(events=[], latest_commit=view.commit, total=0, as_of=answered)
        rows, total = select(parts, query, query.offset, query.limit, after=int(since))
        return EventPage(events=to_events(rows), latest_commit=view.commit, total=total, as_of=answered)

    def _incremental_uncached(self, since: str, query: EventQuery) -> EventPage:
        """Without the view: read only the file slices written after ``since`` (the incremental read path)."""
        latest = self.latest_commit()
        if latest is None or latest <= since:
            return EventPage(events=[], latest_commit=latest, total=0, as_of=latest)
        hudi = self._hudi()
        changed = [s for s in self._slices(hudi, latest) if _base_instant(s.base_file_name) > since or s.log_file_names]
        rows = sort_rows(self._read_all(hudi, changed, latest, remember=False))
        out, total = select([Part(rows)], query, query.offset, query.limit, after=int(since))
        return EventPage(events=to_events(out), latest_commit=latest, total=total, as_of=latest)

    def any_at(self, query: EventQuery, as_of: str) -> bool:
        view = self._current()
        if view is None:
            return False
        # a matching row whose current state is from at or before as_of matched then too: no old files needed
        if as_of < view.commit and select(view.parts, query, 0, 1, until=int(as_of))[1]:
            return True
        return super().any_at(query, as_of)

    def changes_in(self, commit: str) -> list[dict[str, Any]]:
        hudi = self._hudi()
        if hudi is None:
            return []
        if hudi.is_mor:  # only the commit's log blocks, not the whole file groups they belong to
            writes = [f.instant for f in tl.list_timeline(self.table_uri)
                      if f.state == "completed" and f.action in WRITE_ACTIONS]
            before = max((w for w in writes if w < commit), default=None)
            rows = self._commit_rows(hudi, before, commit) if before else None
            if rows is not None:
                rows = rows.filter(pc.equal(rows[COMMIT], int(commit)))
                view = self._current()
                # a late, older state a log block kept is not a change (the merged table never shows it)
                return to_events(sort_rows(view.not_older(rows) if view else rows))
        written = [s for s in self._slices(hudi, commit) if _written_at(s, commit)]
        rows = self._read_all(hudi, written, commit, remember=True)
        rows = sort_rows(rows.filter(pc.equal(rows[COMMIT], int(commit))))
        return to_events(rows)

    def event_history(self, event_id: str) -> list[dict[str, Any]]:
        current = self.events(EventQuery(event_ids=(event_id,), limit=1))
        if not current.events:
            raise NotFound(f"Event {event_id!r} not found.")
        row = current.events[0]
        # every state of a stage run lands in the partition of its eventTimestamp (see lakehouse.table)
        partition = row["eventTimestamp"].astimezone(UTC).strftime("%Y/%m/%d")
        hudi = self._hudi()
        timeline, instants = self._instants(hudi)
        oldest = self.oldest_retained_commit()
        versions = []
        for instant in reversed(instants):
            if instant.action == "replacecommit" or (oldest and instant.timestamp < oldest):
                continue
            touched = (self._metadata(timeline, instant).get("partitionToWriteStats") or {}).keys()
            if touched and partition not in touched:
                continue
            written = [s for s in self._slices(hudi, instant.timestamp)
                       if s.partition_path == partition and _written_at(s, instant.timestamp)]
            for s in written:
                rows = self._read_slice(hudi, s, instant.timestamp)
                hit = rows.filter(pc.and_(pc.equal(rows["eventId"], event_id),
                                          pc.equal(rows[COMMIT], int(instant.timestamp))))
                versions.extend(to_events(hit))
        return versions or [row]

    def stats(self, query: StatsQuery) -> list[StatsRow]:
        view = self._current()
        if view is None:
            return []
        remembered = self._stats.recall((query, view.version))
        if remembered is not None:
            return remembered
        columns = ["pipelineName", "lastUpdatedAt", "status", "processedRecordCount"]
        rows = matching(view.parts, EventQuery(pipelines=query.pipelines, limit=1), columns)
        ts = pa.timestamp("us", tz="UTC")
        mask = None
        if query.from_time is not None:
            mask = pc.greater_equal(rows["lastUpdatedAt"], pa.scalar(query.from_time, ts))
        if query.to_time is not None:
            upper = pc.less(rows["lastUpdatedAt"], pa.scalar(query.to_time, ts))
            mask = upper if mask is None else pc.and_(mask, upper)
        if mask is not None:
            rows = rows.filter(mask)
        if rows.num_rows == 0:
            return self._stats.remember((query, view.version), [])
        bounds = pc.min_max(rows["lastUpdatedAt"])
        query.check_span(bounds["min"].as_py(), bounds["max"].as_py())
        width = query.seconds * 1_000_000
        micros = pc.cast(rows["lastUpdatedAt"], pa.int64())
        bucket = pc.multiply(pc.divide(micros, width), width)  # integer division: floor for times after 1970
        table = pa.table({
            "pipelineName": rows["pipelineName"],
            "bucket": bucket,
            "failed": pc.cast(pc.equal(rows["status"], "FAILED"), pa.int64()),
            "processed": pc.fill_null(rows["processedRecordCount"], 0),
        })
        grouped = table.group_by(["pipelineName", "bucket"]).aggregate(
            [("pipelineName", "count"), ("failed", "sum"), ("processed", "sum")])
        grouped = grouped.sort_by([("bucket", "ascending"), ("pipelineName", "ascending")])
        out = [
            StatsRow(pipeline_name=r["pipelineName"],
                     bucket_start=datetime.fromtimestamp(r["bucket"] / 1_000_000, tz=UTC),
                     events=r["pipelineName_count"], failures=r["failed_sum"], records_processed=r["processed_sum"])
            for r in grouped.to_pylist()
        ]
        return self._stats.remember((query, view.version), out)

    def close(self) -> None:
        self._view = None


__all__ = ["EmbeddedReader", "SCHEMA"]
