"""What the table looks like on storage: files, bytes, small files, partitions, timeline. No JVM.

Every maintenance run takes an inventory before and after, so its materialization says what it did in
numbers (files rewritten, bytes freed, instants archived) that Dagster plots over time.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

SMALL_FILE_BYTES = 8 * 1024 * 1024  # a base file under this is "small" (streaming micro-batches write many)
_COMPLETED = re.compile(r"^(\d{17})_(\d{17})\.(\w+)$")


@dataclass(frozen=True)
class TableInventory:
    data_files: int            # parquet/log files on storage, every version (what cleaning frees)
    data_bytes: int
    live_files: int            # base files of the latest file slices (what queries read)
    live_bytes: int
    small_live_files: int      # latest base files under SMALL_FILE_BYTES (what clustering merges)
    partitions: int
    completed_instants: int    # on the active timeline (what archival trims)
    commits: int               # completed commits/deltacommits/replacecommits on the active timeline
    oldest_instant: str | None
    newest_instant: str | None
    savepoints: int
    live_log_files: int = 0    # merge-on-read: log files of the latest file slices (what compaction merges)
    live_log_bytes: int = 0
    max_log_files_per_group: int = 0

    def as_metadata(self, prefix: str = "") -> dict[str, int | str]:
        return {f"{prefix}{k}": (v if v is not None else "") for k, v in asdict(self).items()}


def completed_instants(table_path: Path) -> list[tuple[str, str, str]]:
    """(requested, completed, action) of every completed instant on the active timeline, oldest first."""
    timeline = Path(table_path) / ".hoodie" / "timeline"
    out = []
    for entry in timeline.iterdir() if timeline.exists() else []:
        m = _COMPLETED.match(entry.name)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return sorted(out)


def scan(table_path: Path, small_file_bytes: int = SMALL_FILE_BYTES) -> TableInventory:
    from hudi import HudiTable

    table_path = Path(table_path)
    files = [p for p in table_path.rglob("*") if p.is_file() and ".hoodie" not in p.relative_to(table_path).parts
             and (p.suffix == ".parquet" or ".log." in p.name)]
    instants = completed_instants(table_path)
    commit_actions = {"commit", "deltacommit", "replacecommit"}
    commits = [i for i in instants if i[2] in commit_actions]
    live_files = live_bytes = small = logs = log_bytes = most_logs = 0
    partitions: set[str] = set()
    if commits:
        for file_slice in HudiTable(str(table_path)).get_file_slices():
            partitions.add(file_slice.partition_path)
            count = len(file_slice.log_file_names)
            logs += count
            most_logs = max(most_logs, count)
            log_bytes += max(0, file_slice.total_size_bytes() - file_slice.base_file_size)
            if not file_slice.base_file_name:  # a log-only slice (merge-on-read, before compaction)
                continue
            live_files += 1
            live_bytes += file_slice.base_file_size
            small += file_slice.base_file_size < small_file_bytes
    return TableInventory(
        data_files=len(files), data_bytes=sum(p.stat().st_size for p in files),
        live_files=live_files, live_bytes=live_bytes, small_live_files=small, partitions=len(partitions),
        completed_instants=len(instants), commits=len(commits),
        oldest_instant=commits[0][0] if commits else None, newest_instant=commits[-1][0] if commits else None,
        savepoints=sum(1 for i in instants if i[2] == "savepoint"),
        live_log_files=logs, live_log_bytes=log_bytes, max_log_files_per_group=most_logs,
    )
