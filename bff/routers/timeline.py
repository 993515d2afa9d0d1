"""The table's timeline: commits (for a time-travel slider) and table-service activity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bff.deps import Authenticated, ReaderDep, SettingsDep
from bff.models import Commit, CommitList, Maintenance, TimelineAction
from bff.routers.params import ERRORS

router = APIRouter(prefix="/api", tags=["timeline"], dependencies=Authenticated)


@router.get("/commits", response_model=CommitList, operation_id="listCommits", responses=ERRORS)
def list_commits(reader: ReaderDep,
                 limit: Annotated[int, Query(ge=1, le=10_000, description="Newest commits to return.")] = 100) -> CommitList:
    """Completed commits of the active timeline, newest first, with what each wrote."""
    commits = reader.commits()
    return CommitList(total=len(commits), commits=[Commit(
        instant=c.instant, completedAt=c.completed_at, action=c.action, operation=c.operation,
        rowsInserted=c.rows_inserted, rowsUpdated=c.rows_updated, rowsWritten=c.rows_written,
        bytesWritten=c.bytes_written) for c in commits[:limit]])


def _action(a) -> TimelineAction | None:
    return TimelineAction(instant=a.instant, action=a.action, completedAt=a.completed_at) if a else None


@router.get("/maintenance", response_model=Maintenance, operation_id="getMaintenance", responses=ERRORS)
def maintenance(reader: ReaderDep, settings: SettingsDep) -> Maintenance:
    """The latest clustering, compaction, clean and rollback on the timeline, and how far back time travel
    actually reaches (the oldest retained commit)."""
    m = reader.maintenance()
    return Maintenance(
        latestCommit=m.latest_commit, commitCount=m.commit_count, oldestRetainedCommit=m.oldest_retained_commit,
        earliestCommitToRetain=m.earliest_commit_to_retain, timeTravelHorizonHours=settings.time_travel_horizon_hours,
        timeTravelHorizonCommits=getattr(settings, "time_travel_horizon_commits", None), savepoints=m.savepoints,
        lastClustering=_action(m.last_clustering), lastCompaction=_action(m.last_compaction),
        lastClean=_action(m.last_clean), lastRollback=_action(m.last_rollback),
        pending=[_action(a) for a in m.pending])
