"""Turn a pulled batch into table rows and dead letters. Pure: no Spark, no Pub/Sub calls."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from obs_platform.events.codec import DecodeError, EventCodec
from obs_platform.ingestion.pubsub_reader import PulledMessage
from obs_platform.lakehouse.table import EVENT_COLUMNS, PARTITION_FIELD

_TS = pa.timestamp("ms", tz="UTC")

# The table's row schema as written by the stream (Hudi adds its _hoodie_* meta columns).
ROW_SCHEMA = pa.schema(
    [
        pa.field("eventId", pa.string(), nullable=False),
        pa.field("correlationId", pa.string(), nullable=False),
        pa.field("pipelineName", pa.string(), nullable=False),
        pa.field("stageName", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("eventTimestamp", _TS, nullable=False),
        pa.field("processedRecordCount", pa.int64()),
        pa.field("sourceRecordCount", pa.int64()),
        pa.field("errorMessage", pa.string()),
        pa.field("lastUpdatedAt", _TS, nullable=False),
        pa.field("dataQualityScore", pa.float64()),
        pa.field("attributes", pa.map_(pa.string(), pa.string())),
        pa.field("schemaVersion", pa.int32(), nullable=False),
        pa.field(PARTITION_FIELD, pa.string(), nullable=False),
    ]
)
assert tuple(ROW_SCHEMA.names[:-1]) == EVENT_COLUMNS

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("messageId", pa.string(), nullable=False),
        pa.field("publishTime", _TS, nullable=False),
        pa.field("receivedAt", _TS, nullable=False),
        pa.field("attributes", pa.map_(pa.string(), pa.string())),
        pa.field("data", pa.binary(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class DecodedBatch:
    rows: pa.Table                 # ROW_SCHEMA
    dead_letters: pa.Table         # DEAD_LETTER_SCHEMA
    oldest_publish_ms: int | None  # for publish-to-commit latency

    @property
    def good(self) -> int:
        return self.rows.num_rows

    @property
    def bad(self) -> int:
        return self.dead_letters.num_rows


def partition_of(event_timestamp: datetime) -> str:
    """``yyyy/MM/dd`` of the event's start time, in UTC."""
    return event_timestamp.astimezone(UTC).strftime("%Y/%m/%d")


def decode_batch(messages: Sequence[PulledMessage], codec: EventCodec) -> DecodedBatch:
    """Decode every message; what cannot be decoded becomes a dead letter with its reason. Nothing is dropped."""
    columns: dict[str, list] = {name: [] for name in ROW_SCHEMA.names}
    dead: dict[str, list] = {name: [] for name in DEAD_LETTER_SCHEMA.names}
    received_at = datetime.fromtimestamp(time.time(), tz=UTC)
    for msg in messages:
        try:
            record = codec.decode(msg.data)
        except DecodeError as exc:
            dead["messageId"].append(msg.message_id)
            dead["publishTime"].append(msg.publish_time)
            dead["receivedAt"].append(received_at)
            dead["attributes"].append(list(msg.attributes.items()))
            dead["data"].append(msg.data)
            dead["reason"].append(exc.reason)
            dead["detail"].append(exc.detail[:2000])
            continue
        for name in EVENT_COLUMNS:
            value = record.get(name)
            if name == "attributes":
                value = list((value or {}).items())
            columns[name].append(value)
        columns[PARTITION_FIELD].append(partition_of(record["eventTimestamp"]))
    oldest = min((m.publish_time for m in messages), default=None)
    return DecodedBatch(
        rows=pa.table(columns, schema=ROW_SCHEMA),
        dead_letters=pa.table(dead, schema=DEAD_LETTER_SCHEMA),
        oldest_publish_ms=int(oldest.timestamp() * 1000) if oldest else None,
    )
