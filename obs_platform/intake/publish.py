"""Encode PipelineEvents with the platform's Avro codec and publish them to the events topic, returning the
publish futures so a caller can answer only once Pub/Sub has the message (the same path as ``sdk.EventEmitter``)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent import futures
from typing import Any

from obs_platform.events.codec import EventCodec
from obs_platform.settings import Settings


class EventPublisher:
    """One batching Pub/Sub publisher and one codec; thread-safe (the Pub/Sub client is)."""

    def __init__(self, settings: Settings, max_latency_s: float = 0.005, codec: EventCodec | None = None,
                 source: str | None = None):
        from obs_platform.bus.client import publisher, topic_path

        self._client = publisher(settings, max_latency_s=max_latency_s)
        self._topic = topic_path(settings)
        self.codec = codec or EventCodec()
        self._source = source

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """Raises ``DecodeError`` when the event breaks the schema or a semantic rule."""
        return self.codec.encode(event)

    def publish_encoded(self, items: Iterable[tuple[bytes, str]]) -> list[futures.Future]:
        """Publish (encoded event, pipelineName) pairs; the futures resolve to message ids."""
        now = str(int(time.time() * 1000))
        attributes = {"publishedAtMs": now, "schemaVersion": str(self.codec.writer.version)}
        if self._source:
            attributes["source"] = self._source
        return [self._client.publish(self._topic, data, pipelineName=pipeline, **attributes)
                for data, pipeline in items]

    def publish(self, events: Iterable[Mapping[str, Any]], timeout: float = 30.0) -> list[str]:
        """Encode, publish and wait: every event is on the topic when this returns (raises otherwise)."""
        pending = self.publish_encoded((self.encode(e), e["pipelineName"]) for e in events)
        return [f.result(timeout=timeout) for f in pending]

    def close(self) -> None:
        self._client.stop()
