"""Which commits to savepoint (they hold a FAILED event) and which savepoints have expired. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def instant_time(instant: str) -> datetime:
    """A Hudi instant (yyyyMMddHHmmssSSS, UTC timeline) as a datetime."""
    return datetime.strptime(instant[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC) + timedelta(
        milliseconds=int(instant[14:17] or 0))


def expired_savepoints(held: list[str], retention_hours: int, now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    return [i for i in held if now - instant_time(i) > timedelta(hours=retention_hours)]


def failure_commits(changed_rows: list[dict]) -> dict[str, list[str]]:
    """commit instant -> eventIds that are FAILED in it, from rows changed since the sensor's cursor."""
    out: dict[str, list[str]] = {}
    for row in changed_rows:
        if row.get("status") == "FAILED":
            out.setdefault(row["commitTime"], []).append(row["eventId"])
    return out
