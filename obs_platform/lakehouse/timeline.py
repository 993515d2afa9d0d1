"""The Hudi timeline as file names: completion times and table-service actions hudi-rs does not expose.

Hudi 1.x (table version 8+, timeline layout 2) keeps the active timeline in ``.hoodie/timeline/``:
``<requested>.<action>.requested``, ``<requested>.<action>.inflight`` (``<requested>.inflight`` for commits),
and, once complete, ``<requested>_<completed>.<action>``. Older tables (layout 1) keep
``<instant>.<action>`` directly under ``.hoodie/`` with no completion time. hudi-rs 0.5 lists completed
commits, delta commits and replace commits; cleans, rollbacks and completion times are read here from the
names alone (and a clean's plan for the commit it retained, when it can be decoded).

Storage goes through pyarrow's file systems, so ``gs://`` reads the same way as a local folder.
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from obs_platform.lakehouse import storage

log = logging.getLogger(__name__)

_COMPLETED = re.compile(r"^(?P<req>\d{17})(?:_(?P<done>\d{17}))?\.(?P<action>[a-z_]+)$")
_PENDING = re.compile(r"^(?P<req>\d{17})(?:\.(?P<action>[a-z_]+))?\.(?P<state>requested|inflight)$")
WRITE_ACTIONS = ("commit", "deltacommit", "replacecommit")
# a table service's plan names the action it completes as
_FAMILY = {"compaction": "commit", "logcompaction": "deltacommit", "clustering": "replacecommit"}


@dataclass(frozen=True)
class TimelineFile:
    instant: str
    action: str
    state: str                       # completed | requested | inflight
    completed: str | None            # completion instant (layout 2)
    path: str
    planned: str | None = None       # compaction / clustering when a service planned it

    @property
    def completed_at(self) -> datetime | None:
        if not self.completed:
            return None
        return datetime.strptime(self.completed, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)


def _fs(table_uri: str) -> tuple[pafs.FileSystem, str]:
    return storage.filesystem(table_uri)


def list_timeline(table_uri: str) -> list[TimelineFile]:
    """Every instant file of the active timeline, oldest first (empty when the table does not exist)."""
    fs, root = _fs(table_uri)
    out: list[TimelineFile] = []
    for folder in (f"{root}/.hoodie/timeline", f"{root}/.hoodie"):
        try:
            infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        except (OSError, pa.ArrowException) as exc:
            log.debug("cannot list %s: %s", folder, exc)
            continue
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            name = info.base_name
            if m := _PENDING.match(name):
                out.append(TimelineFile(m["req"], m["action"] or "commit", m["state"], None, info.path))
            elif m := _COMPLETED.match(name):
                out.append(TimelineFile(m["req"], m["action"], "completed", m["done"], info.path))
        if out:
            break  # layout 2 found; do not mix in layout-1 names
    # one entry per instant and action (a savepoint shares its commit's instant): completed if it is, else the
    # furthest pending state; ``planned`` keeps what a table service's plan called it (compaction, clustering)
    rank = {"requested": 0, "inflight": 1, "completed": 2}
    newest: dict[tuple[str, str], TimelineFile] = {}
    for f in out:
        key = (f.instant, _FAMILY.get(f.action, f.action))
        seen = newest.get(key)
        planned = (seen.planned if seen else None) or (f.action if f.action in _FAMILY else None)
        if seen is None or rank[f.state] > rank[seen.state]:
            newest[key] = TimelineFile(f.instant, f.action if f.state == "completed" else key[1], f.state,
                                       f.completed, f.path, planned)
        elif planned and not seen.planned:
            newest[key] = TimelineFile(seen.instant, seen.action, seen.state, seen.completed, seen.path, planned)
    return sorted(newest.values(), key=lambda f: (f.instant, f.action))


_COMPLETED_WRITE = re.compile(r"^(\d{17})_\d{17}\.(?:commit|deltacommit|replacecommit)$")


def latest_write_instant(table_uri: str) -> tuple[bool, str | None]:
    """(known, instant): the newest completed write commit of a local layout-2 timeline from a directory scan
    (a tenth of a millisecond: it runs on every request). ``known`` is False elsewhere (remote storage, layout
    1): ask hudi-rs then."""
    if "://" in table_uri:
        return False, None
    folder = Path(table_uri) / ".hoodie" / "timeline"
    if not folder.is_dir():
        return False, None
    newest = None
    with os.scandir(folder) as entries:
        for entry in entries:
            match = _COMPLETED_WRITE.match(entry.name)
            if match and (newest is None or match[1] > newest):
                newest = match[1]
    return True, newest


def completion_times(files: list[TimelineFile]) -> dict[str, str]:
    """Completion instants of the completed write commits, by their (requested) instant."""
    return {f.instant: f.completed for f in files
            if f.state == "completed" and f.completed and f.action in WRITE_ACTIONS}


def read_bytes(path: str, table_uri: str) -> bytes:
    fs, _ = _fs(table_uri)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def earliest_commit_to_retain(clean: TimelineFile, table_uri: str) -> str | None:
    """What a completed clean kept: its metadata's ``earliestCommitToRetain`` (an Avro data file)."""
    try:
        import fastavro

        data = read_bytes(clean.path, table_uri)
        for record in fastavro.reader(io.BytesIO(data)):
            value = record.get("earliestCommitToRetain")
            if isinstance(value, str) and re.fullmatch(r"\d{14,17}", value):
                return value.ljust(17, "0")
    except Exception as exc:  # an undecodable clean file only costs the precise horizon
        log.warning("cannot read earliestCommitToRetain from %s: %s", clean.path, exc)
    return None


@dataclass(frozen=True)
class CommitStats:
    """What one completed write commit wrote, from its metadata on the timeline."""

    instant: str
    completed: str | None
    action: str
    rows_written: int
    rows_inserted: int   # on merge-on-read, log appends count every row as an update (no lookup is done)
    rows_updated: int
    bytes_written: int
    files_written: int


def latest_commit_stats(table_uri: str, after: str | None = None) -> CommitStats | None:
    """The newest completed write commit (newer than ``after``) and its write stats: a listing of the
    timeline folder and one small Avro file, no JVM and no table load (it runs after every commit)."""
    writes = [f for f in list_timeline(table_uri)
              if f.state == "completed" and f.action in WRITE_ACTIONS and f.planned is None]
    if not writes or (after and writes[-1].instant <= after):
        return None
    newest = writes[-1]
    totals = {"numWrites": 0, "numInserts": 0, "numUpdateWrites": 0, "totalWriteBytes": 0}
    files = 0
    try:
        import fastavro

        for record in fastavro.reader(io.BytesIO(read_bytes(newest.path, table_uri))):
            for stats in (record.get("partitionToWriteStats") or {}).values():
                for stat in stats or []:
                    files += 1
                    for key in totals:
                        totals[key] += int(stat.get(key) or 0)
    except Exception as exc:  # stats are for metadata only: a commit without readable stats still counts
        log.warning("cannot read the write stats of %s: %s", newest.path, exc)
    return CommitStats(newest.instant, newest.completed, newest.action, totals["numWrites"], totals["numInserts"],
                       totals["numUpdateWrites"], totals["totalWriteBytes"], files)
