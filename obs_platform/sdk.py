"""What a pipeline author calls: one context manager per stage run.

    from obs_platform.sdk import EventEmitter

    emitter = EventEmitter.from_settings()
    with emitter.stage_run("orders", "extract", correlation_id=batch_id, source_records=1200) as run:
        for chunk in chunks:
            load(chunk)
            run.progress(processed=run.processed + len(chunk))      # RUNNING, with counts
    # leaving the block emits COMPLETED; an exception emits FAILED with its message, then re-raises
    emitter.flush()

Every state of one stage run reuses one ``eventId`` with a strictly increasing ``lastUpdatedAt``, so the
table keeps exactly the newest state of each stage run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from obs_platform.events.codec import EventCodec
from obs_platform.settings import Settings, get_settings

log = logging.getLogger(__name__)

Publish = Callable[[bytes, dict[str, str]], "futures.Future[str] | None"]


class _Clock:
    """Milliseconds that never repeat or go back within this process (ordering field safety)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, int(time.time() * 1000))
            return self._last


@dataclass
class StageRun:
    """One stage run of one batch. Mutate through ``progress``/``retrying``; the emitter publishes."""

    emitter: EventEmitter
    pipeline_name: str
    stage_name: str
    correlation_id: str
    event_id: str
    started_at_ms: int
    source_records: int | None = None
    processed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    ended: bool = False

    def _emit(self, status: str, error: str | None = None) -> None:
        self.emitter.emit(
            {
                "eventId": self.event_id,
                "correlationId": self.correlation_id,
                "pipelineName": self.pipeline_name,
                "stageName": self.stage_name,
                "status": status,
                "eventTimestamp": self.started_at_ms,
                "processedRecordCount": self.processed,
                "sourceRecordCount": self.source_records,
                "errorMessage": error,
                **self.extra,
            }
        )

    def progress(self, processed: int | None = None, source_records: int | None = None) -> None:
        """Report RUNNING with the current counts."""
        if processed is not None:
            self.processed = processed
        if source_records is not None:
            self.source_records = source_records
        self._emit("RUNNING")

    def retrying(self, error: str) -> None:
        """Report RETRYING: the stage hit ``error`` and is trying again."""
        self._emit("RETRYING", error)

    def fail(self, error: str) -> None:
        """Report FAILED without raising (e.g. the stage decided to give up); the block then ends as is."""
        self._emit("FAILED", error)
        self.ended = True


class EventEmitter:
    """Encodes events with the Avro single-object codec and publishes them to the events topic."""

    def __init__(self, publish: Publish, codec: EventCodec | None = None):
        self._publish = publish
        self._codec = codec or EventCodec()
        self._clock = _Clock()
        self._pending: list[futures.Future] = []
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, schema_version: int | None = None) -> EventEmitter:
        from obs_platform.bus.client import publisher, topic_path

        settings = settings or get_settings()
        client = publisher(settings)
        topic = topic_path(settings)

        def publish(data: bytes, attributes: dict[str, str]) -> futures.Future:
            return client.publish(topic, data, **attributes)

        return cls(publish, EventCodec(writer_version=schema_version))

    def emit(self, event: dict[str, Any]) -> None:
        """Stamp ``lastUpdatedAt`` (unless given), encode and publish one event."""
        event.setdefault("lastUpdatedAt", self._clock.now_ms())
        data = self._codec.encode(event)
        attributes = {
            "publishedAtMs": str(int(time.time() * 1000)),
            "schemaVersion": str(self._codec.writer.version),
            "pipelineName": event["pipelineName"],
        }
        fut = self._publish(data, attributes)
        if fut is not None:
            with self._lock:
                self._pending.append(fut)
                if len(self._pending) > 10_000:
                    self._drain(self._pending[:5_000])
                    del self._pending[:5_000]

    def now_ms(self) -> int:
        return self._clock.now_ms()

    @contextmanager
    def stage_run(
        self, pipeline_name: str, stage_name: str, correlation_id: str | None = None,
        source_records: int | None = None, event_id: str | None = None, **extra: Any,
    ) -> Iterator[StageRun]:
        """STARTED on entry; COMPLETED on a clean exit, FAILED (with the error) on an exception — unless the
        run already ended through ``run.fail()``."""
        run = StageRun(
            emitter=self, pipeline_name=pipeline_name, stage_name=stage_name,
            correlation_id=correlation_id or uuid.uuid4().hex, event_id=event_id or uuid.uuid4().hex,
            started_at_ms=self._clock.now_ms(), source_records=source_records, extra=extra,
        )
        run._emit("STARTED")
        try:
            yield run
        except BaseException as exc:
            if not run.ended:
                run._emit("FAILED", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        else:
            if not run.ended:
                run._emit("COMPLETED")

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until everything emitted so far is accepted by Pub/Sub (raises on a publish error)."""
        with self._lock:
            pending, self._pending = self._pending, []
        self._drain(pending, timeout)

    @staticmethod
    def _drain(pending: list[futures.Future], timeout: float = 30.0) -> None:
        for fut in pending:
            fut.result(timeout=timeout)
