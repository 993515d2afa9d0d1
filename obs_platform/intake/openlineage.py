"""OpenLineage RunEvents -> PipelineEvents.

The body (one event, a JSON array, or NDJSON; optionally gzip) is parsed, every event is validated against
the OpenLineage 2-0-2 RunEvent schema (``RUN_EVENT_SCHEMA``: the spec's required fields and formats for the
event, run, job, datasets and facets, plus the facets this mapping reads), then mapped:

| OpenLineage | PipelineEvent |
|---|---|
| run.runId | eventId |
| run.facets.parent.root.run.runId, else parent.run.runId, else run.runId | correlationId |
| parent.root.job.name, else parent.job.name, else job.namespace | pipelineName |
| job.name | stageName |
| START / RUNNING / COMPLETE / FAIL, ABORT | STARTED / RUNNING / COMPLETED / FAILED |
| OTHER | not stored: answered 202 with the reason (it carries metadata, not a state) |
| eventTime | lastUpdatedAt |
| the run's start (see ``run_start``) | eventTimestamp |
| sum of outputs[].outputFacets.outputStatistics.rowCount | processedRecordCount |
| sum of inputs[].inputFacets.inputStatistics.rowCount | sourceRecordCount |
| run.facets.errorMessage.message | errorMessage |
| producer, job.namespace, eventType, dataset names, nominal time, direct parent | attributes (``ol.*``) |

Anything that cannot be mapped raises ``IntakeError`` naming the field (a 4xx for the caller).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jsonschema_rs

from obs_platform.events.codec import MAX_ATTRIBUTES, MAX_FUTURE_SKEW_MS, MAX_KEY_CHARS, MAX_TEXT_CHARS

MAX_BODY_BYTES = 16 * 1024 * 1024       # decompressed; 413 past it (also bounds a gzip bomb)
MAX_EVENTS_PER_REQUEST = 10_000         # 413 past it
STATUS_BY_TYPE = {"START": "STARTED", "RUNNING": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED",
                  "ABORT": "FAILED"}
NOT_STORED_TYPES = {"OTHER": "eventType OTHER carries extra metadata for a run, not a state change; it is accepted "
                             "but not stored (storing it as a state could roll a finished run back)"}
ATTRIBUTE_LIST_CHARS = 4096             # dataset name lists are cut here (with a count) to keep rows small

_DATE_TIME = {"type": "string", "format": "date-time"}
_URI = {"type": "string", "format": "uri"}
_UUID = {"type": "string", "format": "uuid"}
_NAME = {"type": "string", "minLength": 1}


def _facet(properties: dict | None = None, required: list[str] | None = None) -> dict:
    extra: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        extra["required"] = required
    return {"allOf": [{"$ref": "#/$defs/BaseFacet"}, extra]}


def _facets(named: dict[str, dict] | None = None) -> dict:
    return {"type": "object", "properties": named or {}, "additionalProperties": {"$ref": "#/$defs/BaseFacet"}}


_STATISTICS = {"rowCount": {"type": "integer"}, "size": {"type": "integer"}, "fileCount": {"type": "integer"}}

# The OpenLineage spec 2-0-2 (https://openlineage.io/spec/2-0-2/OpenLineage.json) RunEvent, with the facets this
# mapping reads at their spec versions (ParentRunFacet 1-2-0, ErrorMessageRunFacet 1-0-1, NominalTimeRunFacet
# 1-0-1, Input/OutputStatistics 1-0-0/1-0-2). openlineage-python ships attrs models, not the JSON, so the
# constraints are written out here; a test checks that what the real client serialises passes.
RUN_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$comment": "OpenLineage 2-0-2 RunEvent: https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": _DATE_TIME,
        "producer": _URI,
        "schemaURL": _URI,
        "run": {"type": "object", "required": ["runId"], "properties": {"runId": _UUID, "facets": _facets({
            "parent": _facet({
                "run": {"type": "object", "required": ["runId"], "properties": {"runId": _UUID}},
                "job": {"type": "object", "required": ["namespace", "name"],
                        "properties": {"namespace": {"type": "string"}, "name": _NAME}},
                "root": {"type": "object", "required": ["run", "job"], "properties": {
                    "run": {"type": "object", "required": ["runId"], "properties": {"runId": _UUID}},
                    "job": {"type": "object", "required": ["namespace", "name"],
                            "properties": {"namespace": {"type": "string"}, "name": _NAME}}}},
            }, ["run", "job"]),
            "errorMessage": _facet({"message": {"type": "string"}, "programmingLanguage": {"type": "string"},
                                    "stackTrace": {"type": "string"}}, ["message", "programmingLanguage"]),
            "nominalTime": _facet({"nominalStartTime": _DATE_TIME, "nominalEndTime": _DATE_TIME},
                                  ["nominalStartTime"]),
        })}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": _NAME, "name": _NAME, "facets": _facets()}},
        "inputs": {"type": "array", "items": {"$ref": "#/$defs/Dataset", "properties": {
            "inputFacets": _facets({"inputStatistics": _facet(_STATISTICS)})}}},
        "outputs": {"type": "array", "items": {"$ref": "#/$defs/Dataset", "properties": {
            "outputFacets": _facets({"outputStatistics": _facet(_STATISTICS)})}}},
    },
    "$defs": {
        "BaseFacet": {"type": "object", "required": ["_producer", "_schemaURL"],
                      "properties": {"_producer": _URI, "_schemaURL": _URI}},
        "Dataset": {"type": "object", "required": ["namespace", "name"],
                    "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                                   "facets": _facets()}},
    },
}


@lru_cache(maxsize=1)
def _validator():
    return jsonschema_rs.validator_for(RUN_EVENT_SCHEMA, validate_formats=True)


class IntakeError(Exception):
    """An answer other than 2xx: ``status``, a reason, and the field (JSON path) and event index at fault."""

    def __init__(self, status: int, detail: str, field: str | None = None, index: int | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.index = index

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "field": self.field, "index": self.index}


# --- the body ------------------------------------------------------------------------------------------------

def decompress(raw: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > MAX_BODY_BYTES:
            raise IntakeError(413, f"body has {len(raw):,} bytes; at most {MAX_BODY_BYTES:,}")
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise IntakeError(415, f"Content-Encoding {encoding!r} is not supported (gzip or none)",
                          "Content-Encoding")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise IntakeError(400, f"the gzip body does not decompress: {exc}", "Content-Encoding") from None
    if len(out) > MAX_BODY_BYTES:
        raise IntakeError(413, f"the decompressed body passes {MAX_BODY_BYTES:,} bytes")
    if not inflater.eof:
        raise IntakeError(400, "the gzip body is truncated", "Content-Encoding")
    return out


def parse_body(body: bytes, content_type: str | None) -> list[Any]:
    """One JSON event, a JSON array of events, or NDJSON (one event per line)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntakeError(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    media = (content_type or "").split(";")[0].strip().lower()
    if not text.strip():
        raise IntakeError(400, "the body is empty; send a RunEvent, a JSON array of them, or NDJSON")
    if media not in ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq"):
        try:
            parsed = json.loads(text)
        except RecursionError:
            raise IntakeError(400, "the body nests JSON too deeply") from None
        except json.JSONDecodeError as exc:
            if "\n" not in text.strip():
                raise IntakeError(400, f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
                    from None
            parsed = None  # several lines: NDJSON
        if parsed is not None:
            events = parsed if isinstance(parsed, list) else [parsed]
            return _bounded(events)
    events = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except RecursionError:
            raise IntakeError(400, f"NDJSON line {number} nests JSON too deeply", index=len(events)) from None
        except json.JSONDecodeError as exc:
            raise IntakeError(400, f"NDJSON line {number} is not JSON: {exc.msg} at column {exc.colno}",
                              index=len(events)) from None
    return _bounded(events)


def _bounded(events: list[Any]) -> list[Any]:
    if not events:
        raise IntakeError(400, "the batch is empty")
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise IntakeError(413, f"{len(events):,} events in one request; at most {MAX_EVENTS_PER_REQUEST:,}")
    return events


def validate(event: Any, index: int) -> None:
    """Against ``RUN_EVENT_SCHEMA``; the first error names its JSON path."""
    if not isinstance(event, dict):
        raise IntakeError(422, f"a RunEvent is a JSON object, not {type(event).__name__}", "$", index)
    if "run" not in event and ("dataset" in event or "job" in event):
        raise IntakeError(422, "only RunEvents make timeline rows (this looks like a DatasetEvent or JobEvent)",
                          "run", index)
    for error in _validator().iter_errors(event):
        parts = list(error.instance_path)
        if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
            parts.append(str(error.kind.property))  # name the missing field, not its parent
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        raise IntakeError(422, f"{path or 'event'}: {error.message}", path or "$", index)


# --- the run's start: a stable eventTimestamp ----------------------------------------------------------------

class RunStarts:
    """The first eventTime this process saw per runId (bounded, least recently used out). Only the last resort
    of ``run_start``: it is lost on restart and not shared between BFF processes."""

    def __init__(self, capacity: int = 200_000):
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first(self, run_id: str, event_ms: int) -> int:
        with self._lock:
            known = self._seen.get(run_id)
            if known is not None:
                self._seen.move_to_end(run_id)
                return known
            self._seen[run_id] = event_ms
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return event_ms


_EPOCH_2000_MS = 946_684_800_000


def uuid7_millis(run_id: str) -> int | None:
    """The Unix milliseconds a UUIDv7 carries in its first 48 bits; None for other versions."""
    try:
        parsed = uuid.UUID(run_id)
    except ValueError:
        return None
    if parsed.version != 7:
        return None
    return parsed.int >> 80


def run_start(event: dict, event_ms: int, starts: RunStarts, now_ms: int) -> tuple[int, str]:
    """When the run started, the same for every event of the run (the table's partition is the day of
    eventTimestamp and its key eventId, so a run whose events disagreed could split across partitions):

    1. a UUIDv7 runId (what OpenLineage's clients, Airflow's provider and Spark's integration generate): the
       instant in its first 48 bits; stateless and the same in every process;
    2. else the nominalTime facet's nominalStartTime (a scheduled run's nominal start, on every event of it);
    3. else the first eventTime of the run this process saw (the START's, when events arrive in order);
       a restart, or another BFF process, in the middle of such a run falls back to that event's own time.
    """
    run_id = event["run"]["runId"]
    millis = uuid7_millis(run_id)
    if millis is not None and _EPOCH_2000_MS <= millis <= now_ms + MAX_FUTURE_SKEW_MS:
        return millis, "runId-uuid7"
    nominal = (((event["run"].get("facets") or {}).get("nominalTime") or {}).get("nominalStartTime"))
    if nominal:
        return _millis(nominal, "run.facets.nominalTime.nominalStartTime"), "nominalTime"
    return starts.first(run_id, event_ms), "firstSeenEventTime"


def _millis(value: str, field: str) -> int:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise IntakeError(422, f"{field}: {value!r} is not an ISO-8601 date-time", field) from None
    if parsed.tzinfo is None:
        raise IntakeError(422, f"{field}: {value!r} has no UTC offset", field)
    return int(parsed.astimezone(UTC).timestamp() * 1000)


# --- the mapping ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mapped:
    """A RunEvent that becomes a PipelineEvent (``record``), or one accepted but not stored (``reason``)."""

    index: int
    run_id: str
    event_type: str
    record: dict[str, Any] | None = None
    reason: str | None = None


def _row_count(datasets: list, facets_key: str, facet: str, side: str) -> int | None:
    total = None
    for i, dataset in enumerate(datasets or []):
        stats = ((dataset.get(facets_key) or {}).get(facet) or {})
        count = stats.get("rowCount")
        if count is None:
            continue
        if count < 0:
            raise IntakeError(422, f"{side}[{i}].{facets_key}.{facet}.rowCount is negative ({count})",
                              f"{side}[{i}].{facets_key}.{facet}.rowCount")
        total = (total or 0) + count
    return total


def _names(datasets: list) -> str | None:
    names = [f"{d['namespace']}/{d['name']}" if d.get("namespace") else d["name"] for d in datasets or []]
    if not names:
        return None
    text = json.dumps(names)
    kept = len(names)
    while len(text) > ATTRIBUTE_LIST_CHARS and kept > 1:
        kept -= 1
        text = json.dumps([*names[:kept], f"... {len(names) - kept} more"])
    return text[:ATTRIBUTE_LIST_CHARS]


def _key(value: str, field: str) -> str:
    if not value.strip():
        raise IntakeError(422, f"{field} is empty", field)
    if len(value) > MAX_KEY_CHARS:
        raise IntakeError(422, f"{field} has {len(value):,} characters; at most {MAX_KEY_CHARS:,}", field)
    return value


def map_event(event: dict, index: int, starts: RunStarts, now_ms: int | None = None) -> Mapped:
    """One validated RunEvent -> a PipelineEvent record (or a reason it is not stored)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        return _map(event, index, starts, now_ms)
    except IntakeError as exc:
        exc.index = index
        raise


def _map(event: dict, index: int, starts: RunStarts, now_ms: int) -> Mapped:
    run, job = event["run"], event["job"]
    run_id = run["runId"]
    event_type = event.get("eventType")
    if event_type is None:
        raise IntakeError(422, "eventType is missing: without it the run's state is unknown", "eventType")
    if event_type in NOT_STORED_TYPES:
        return Mapped(index, run_id, event_type, reason=NOT_STORED_TYPES[event_type])
    event_ms = _millis(event["eventTime"], "eventTime")
    if event_ms > now_ms + MAX_FUTURE_SKEW_MS:
        raise IntakeError(422, f"eventTime is {(event_ms - now_ms) / 1000:,.0f} s ahead of the intake's clock "
                               f"(at most {MAX_FUTURE_SKEW_MS // 1000} s)", "eventTime")
    started_ms, start_source = run_start(event, event_ms, starts, now_ms)
    if started_ms > now_ms + MAX_FUTURE_SKEW_MS:
        raise IntakeError(422, "the run's start (nominalStartTime) is in the future",
                          "run.facets.nominalTime.nominalStartTime")

    facets = run.get("facets") or {}
    parent = facets.get("parent")
    root = (parent or {}).get("root")
    if root:
        correlation, pipeline, pipeline_field = root["run"]["runId"], root["job"]["name"], "run.facets.parent.root.job.name"
    elif parent:
        correlation, pipeline, pipeline_field = parent["run"]["runId"], parent["job"]["name"], "run.facets.parent.job.name"
    else:
        correlation, pipeline, pipeline_field = run_id, job["namespace"], "job.namespace"

    error = facets.get("errorMessage")
    error_message = None
    attributes: dict[str, str] = {
        "ol.eventType": event_type, "ol.producer": event["producer"], "ol.namespace": job["namespace"],
        "ol.startedFrom": start_source,
    }
    if error:
        error_message = error["message"]
        if len(error_message) > MAX_TEXT_CHARS:
            attributes["ol.errorMessageChars"] = str(len(error_message))
            error_message = error_message[:MAX_TEXT_CHARS - 20] + " ...[truncated]"
        attributes["ol.programmingLanguage"] = error["programmingLanguage"][:200]
    elif event_type in ("FAIL", "ABORT"):
        error_message = f"OpenLineage {event_type} (no errorMessage facet)"
    nominal = facets.get("nominalTime")
    if nominal:
        attributes["ol.nominalStartTime"] = nominal["nominalStartTime"]
        if nominal.get("nominalEndTime"):
            attributes["ol.nominalEndTime"] = nominal["nominalEndTime"]
    if parent and root:
        attributes["ol.parentRunId"] = parent["run"]["runId"]
        attributes["ol.parentJob"] = f"{parent['job']['namespace']}/{parent['job']['name']}"[:MAX_KEY_CHARS]
    for key, datasets in (("ol.inputs", event.get("inputs")), ("ol.outputs", event.get("outputs"))):
        names = _names(datasets)
        if names:
            attributes[key] = names
    attributes = {k: v[:MAX_TEXT_CHARS] for k, v in list(attributes.items())[:MAX_ATTRIBUTES]}

    record = {
        "eventId": _key(run_id, "run.runId"),
        "correlationId": _key(correlation, "run.facets.parent.run.runId" if parent else "run.runId"),
        "pipelineName": _key(pipeline, pipeline_field),
        "stageName": _key(job["name"], "job.name"),
        "status": STATUS_BY_TYPE[event_type],
        "eventTimestamp": started_ms,
        "lastUpdatedAt": event_ms,
        "processedRecordCount": _row_count(event.get("outputs"), "outputFacets", "outputStatistics", "outputs"),
        "sourceRecordCount": _row_count(event.get("inputs"), "inputFacets", "inputStatistics", "inputs"),
        "errorMessage": error_message,
        "attributes": attributes,
    }
    return Mapped(index, run_id, event_type, record=record)


def read_events(raw: bytes, content_encoding: str | None, content_type: str | None, starts: RunStarts,
                now_ms: int | None = None) -> list[Mapped]:
    """The whole request, or an IntakeError for the first problem (nothing of a bad batch is published)."""
    events = parse_body(decompress(raw, content_encoding), content_type)
    for index, event in enumerate(events):
        validate(event, index)
    return [map_event(event, index, starts, now_ms) for index, event in enumerate(events)]
