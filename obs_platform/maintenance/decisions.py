"""Sensor decisions as plain functions: given what the table looks like, what should run. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    run: bool
    reason: str
    run_key: str | None = None


def decide_over_threshold(value: int, threshold: int, newest_instant: str | None, what: str, key: str) -> Decision:
    """Run when ``value`` (``what`` is its name) passes ``threshold``; one run per table state (run key)."""
    if newest_instant is None:
        return Decision(False, "the table has no commit yet")
    if value <= threshold:
        return Decision(False, f"{value} {what} <= threshold {threshold}")
    return Decision(True, f"{value} {what} > threshold {threshold}", run_key=f"{key}-{newest_instant}")


def decide_compaction(small_live_files: int, threshold: int, newest_instant: str | None) -> Decision:
    return decide_over_threshold(small_live_files, threshold, newest_instant, "small files", "small-files")


def decide_log_compaction(max_log_files_per_group: int, log_bytes: int, files_threshold: int,
                          bytes_threshold: int, newest_instant: str | None) -> Decision:
    """Merge-on-read: compact when one file group has piled up too many log files (each read merges them all),
    or the logs together hold too many bytes."""
    by_files = decide_over_threshold(max_log_files_per_group, files_threshold, newest_instant,
                                     "log files in one file group", "log-files")
    if by_files.run:
        return by_files
    by_bytes = decide_over_threshold(log_bytes, bytes_threshold, newest_instant, "bytes in log files", "log-bytes")
    return by_bytes if by_bytes.run else Decision(False, f"{by_files.reason}; {by_bytes.reason}")


def decide_cleaning(timeline_instants: int, threshold: int, newest_instant: str | None) -> Decision:
    return decide_over_threshold(timeline_instants, threshold, newest_instant, "timeline instants", "long-timeline")


def decide_hive_sync(partitions: list[str], synced: list[str] | None) -> Decision:
    """Sync when the table has partitions the last sync did not see (first time: any partition)."""
    new = sorted(set(partitions) - set(synced or []))
    if not partitions:
        return Decision(False, "the table has no partitions yet")
    if not new:
        return Decision(False, "no new partitions")
    return Decision(True, f"{len(new)} new partition(s): {', '.join(new[:5])}", run_key=f"partitions-{new[-1]}-{len(partitions)}")
