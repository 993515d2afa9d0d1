"""Dagster's own runs -> PipelineEvents, read from the instance's event log with a cursor.

A run is a batch (correlationId = run id, pipelineName = job name); each step (an op, or the op of an asset
materialisation) is a stage run (eventId = ``<run id>:<step key>``, stageName = step key):

| Dagster event | status |
|---|---|
| STEP_START | STARTED |
| STEP_UP_FOR_RETRY | RETRYING (with the error) |
| STEP_RESTARTED | RUNNING |
| STEP_SUCCESS | COMPLETED |
| STEP_FAILURE | FAILED (with the error and its causes) |
| RUN_FAILURE / RUN_CANCELED without a failed step | a stage ``run`` FAILED with the run's message |

eventTimestamp is the step's first STEP_START (read back from the run's log, so the same in every tick and
after a restart); lastUpdatedAt is the event's time, nudged to at least eventTimestamp + 1 ms (COMPLETED/FAILED
+ 2 ms) so a state never ties with the one before it.

The cursor (JSON, stored by the sensor) holds one position per run-status event type
(``fetch_run_status_changes``) and, for each run started but not yet finished, its position in the run's log
(``get_records_for_run``). Every position moves only after the tick's events were published and confirmed, so
a daemon restart resumes where the last completed tick ended: nothing is missed; a tick that died after
publishing republishes the same events (same eventId and lastUpdatedAt: the upsert leaves the row as it was).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterEventType, DagsterInstance, RunStatusChangeRecordsFilter

STEP_TYPES = {
    DagsterEventType.STEP_START: "STARTED",
    DagsterEventType.STEP_UP_FOR_RETRY: "RETRYING",
    DagsterEventType.STEP_RESTARTED: "RUNNING",
    DagsterEventType.STEP_SUCCESS: "COMPLETED",
    DagsterEventType.STEP_FAILURE: "FAILED",
}
_RANK = {"STARTED": 0, "RETRYING": 1, "RUNNING": 1, "COMPLETED": 2, "FAILED": 2}
END_TYPES = (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED)
RUN_STAGE = "run"
ERROR_CHARS = 8000


@dataclass
class Cursor:
    status: dict[str, str | None] = field(default_factory=dict)   # run-status event type -> fetch cursor
    runs: dict[str, str | None] = field(default_factory=dict)     # open run id -> its log cursor

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(status=dict(data.get("status", {})), runs=dict(data.get("runs", {})))

    def dump(self) -> str:
        return json.dumps({"status": self.status, "runs": self.runs}, sort_keys=True)


def _ms(timestamp: float) -> int:
    return int(round(timestamp * 1000))


def error_text(error: Any) -> str | None:
    """A SerializableErrorInfo as text: its message and each cause's, the user's exception last."""
    parts = []
    while error is not None and len(parts) < 5:
        message = (error.message or "").strip()
        if message:
            parts.append(message)
        error = error.cause
    return " <- caused by: ".join(parts)[:ERROR_CHARS] if parts else None


class RunEventReader:
    """Turns what the instance's event log recorded since ``cursor`` into PipelineEvent dicts."""

    def __init__(self, instance: DagsterInstance, page: int = 500):
        self.instance = instance
        self.page = page

    def read(self, cursor: Cursor) -> tuple[list[dict[str, Any]], Cursor]:
        """Events since ``cursor`` and the cursor after them; ``cursor`` itself is not modified."""
        new = Cursor(status=dict(cursor.status), runs=dict(cursor.runs))
        events: list[dict[str, Any]] = []
        # 1. runs that ended, then runs that started, since the cursor. Ends first: a run's RUN_START is
        #    logged before its end, so every run whose end is read here has its start read here or earlier
        #    (an end of a run that is not open means it never started, e.g. it failed to launch)
        ended = []
        for event_type in END_TYPES:
            ended += self._status_changes(new, event_type)
        for record in self._status_changes(new, DagsterEventType.RUN_START):
            new.runs.setdefault(record.event_log_entry.run_id, None)
        ended_ids = {r.event_log_entry.run_id for r in ended}
        # 2. the steps of every open run (an ended run is read to its end)
        failed_steps: dict[str, bool] = {}
        for run_id in list(new.runs):
            read, position, any_failed = self._steps(run_id, new.runs.get(run_id), to_end=run_id in ended_ids)
            events += read
            new.runs[run_id] = position
            failed_steps[run_id] = any_failed
        # 3. ended runs: a failure outside any step becomes a "run" stage; then the run is closed
        for record in ended:
            run_id = record.event_log_entry.run_id
            if record.event_log_entry.dagster_event_type != DagsterEventType.RUN_SUCCESS and \
                    not failed_steps.get(run_id) and not self._any_step_failed(run_id):
                events.append(self._run_failure(record))
            new.runs.pop(run_id, None)
        return events, new

    def _status_changes(self, cursor: Cursor, event_type: DagsterEventType) -> list:
        out = []
        while True:
            result = self.instance.fetch_run_status_changes(
                RunStatusChangeRecordsFilter(event_type=event_type), limit=self.page,
                cursor=cursor.status.get(event_type.value), ascending=True)
            out += result.records
            if result.records:
                cursor.status[event_type.value] = result.cursor
            if not result.has_more:
                return out

    def _steps(self, run_id: str, position: str | None, to_end: bool) -> tuple[list[dict], str | None, bool]:
        events, starts, failed = [], None, False
        run = self.instance.get_run_by_id(run_id)
        while True:
            conn = self.instance.get_records_for_run(run_id, cursor=position, of_type=set(STEP_TYPES),
                                                     limit=self.page, ascending=True)
            for record in conn.records:
                entry = record.event_log_entry
                if starts is None:
                    starts = self._step_starts(run_id)
                status = STEP_TYPES[entry.dagster_event_type]
                failed = failed or status == "FAILED"
                events.append(self._step_event(run, entry, status, starts))
            if conn.records:
                position = conn.cursor
            if not conn.has_more or not to_end and len(events) >= self.page:
                return events, position, failed

    def _step_starts(self, run_id: str) -> dict[str, int]:
        starts: dict[str, int] = {}
        conn = self.instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START, ascending=True)
        for record in conn.records:
            starts.setdefault(record.event_log_entry.step_key, _ms(record.event_log_entry.timestamp))
        return starts

    def _any_step_failed(self, run_id: str) -> bool:
        return bool(self.instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE, limit=1).records)

    def _step_event(self, run, entry, status: str, starts: dict[str, int]) -> dict[str, Any]:
        at = _ms(entry.timestamp)
        started = starts.get(entry.step_key, at)
        error = None
        data = entry.dagster_event.event_specific_data
        if status in ("FAILED", "RETRYING"):
            error = error_text(getattr(data, "error", None)) or entry.dagster_event.message or status
        return self._event(run, entry.run_id, entry.job_name, entry.step_key, status, started,
                           max(at, started + _RANK[status]), error, entry.dagster_event_type.value)

    def _run_failure(self, record) -> dict[str, Any]:
        entry = record.event_log_entry
        run = self.instance.get_run_by_id(entry.run_id)
        started = _ms(run_start(self.instance, entry.run_id) or entry.timestamp)
        data = entry.dagster_event.event_specific_data
        message = error_text(getattr(data, "error", None)) or entry.dagster_event.message or "run failed"
        return self._event(run, entry.run_id, entry.job_name, RUN_STAGE, "FAILED", started,
                           max(_ms(entry.timestamp), started + 2), message[:ERROR_CHARS], entry.dagster_event_type.value)

    @staticmethod
    def _event(run, run_id: str, job_name: str | None, stage: str, status: str, started: int, updated: int,
               error: str | None, dagster_type: str) -> dict[str, Any]:
        job = job_name or (run.job_name if run else "dagster")
        attributes = {"dagster.runId": run_id, "dagster.eventType": dagster_type, "dagster.job": job}
        if run is not None and run.remote_job_origin is not None:
            attributes["dagster.location"] = run.remote_job_origin.location_name
        return {"eventId": f"{run_id}:{stage}", "correlationId": run_id,
                "pipelineName": "dagster-assets" if job.startswith("__ASSET_JOB") else job,
                "stageName": stage, "status": status, "eventTimestamp": started, "lastUpdatedAt": updated,
                "processedRecordCount": None, "sourceRecordCount": None, "errorMessage": error,
                "attributes": attributes}


def run_start(instance: DagsterInstance, run_id: str) -> float | None:
    record = instance.get_run_record_by_id(run_id)
    return record.start_time if record else None


def emit_new_runs(instance: DagsterInstance, cursor: str | None,
                  publish: Callable[[Sequence[dict[str, Any]]], Any]) -> tuple[int, str]:
    """Read, publish (``publish`` returns once Pub/Sub confirmed) and return the count and the new cursor; if
    publishing raises, the cursor does not move and the next call tries the same events again."""
    events, new = RunEventReader(instance).read(Cursor.parse(cursor))
    if events:
        publish(events)
    return len(events), new.dump()
