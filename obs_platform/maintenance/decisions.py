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
