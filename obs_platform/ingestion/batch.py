"""Turn a pulled batch into table rows and dead letters. Pure: no Spark, no Pub/Sub calls."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from obs_platform.events.codec import DecodeError, EventCodec
from obs_platform.ingestion.pubsub_reader import PulledMessage
from obs_platform.lakehouse.dead_letters import DEAD_LETTER_SCHEMA
from obs_platform.lakehouse.table import PARTITION_FIELD

_TS = pa.timestamp("ms", tz="UTC")
_PRIMITIVES = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "double": pa.float64(),
               "float": pa.float32(), "boolean": pa.bool_(), "bytes": pa.binary()}


def _arrow_type(avro_type) -> tuple[pa.DataType, bool]:
    """(arrow type, nullable) for the Avro types a PipelineEvent schema may use."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise ValueError(f"unsupported union {avro_type}: only [null, T] is mapped to a column")
        return _arrow_type(branches[0])[0], "null" in avro_type
    if isinstance(avro_type, dict):
        kind, logical = avro_type.get("type"), avro_type.get("logicalType")
        if logical == "timestamp-millis":
            return _TS, False
        if kind == "enum":
            return pa.string(), False
        if kind == "map":
            return pa.map_(pa.string(), _arrow_type(avro_type["values"])[0]), True
        return _arrow_type(kind)
    if avro_type in _PRIMITIVES:
        return _PRIMITIVES[avro_type], False
    raise ValueError(f"unsupported Avro type {avro_type!r}")


def row_schema(reader_schema: dict) -> pa.Schema:
    """The table's row schema for a reader schema: its fields (enums as strings, timestamp-millis as UTC
    timestamps, [null, T] nullable), then schemaVersion and the partition column. A newer schema with more
    fields yields more columns, which Hudi adds to the table on the next commit (no rewrite)."""
    fields = []
    for f in reader_schema["fields"]:
        arrow, nullable = _arrow_type(f["type"])
        fields.append(pa.field(f["name"], arrow, nullable=nullable))
    fields.append(pa.field("schemaVersion", pa.int32(), nullable=False))
    fields.append(pa.field(PARTITION_FIELD, pa.string(), nullable=False))
    return pa.schema(fields)


@dataclass(frozen=True)
class DecodedBatch:
    rows: pa.Table                 # row_schema(codec.reader.parsed)
    dead_letters: pa.Table         # DEAD_LETTER_SCHEMA
    sources: tuple[PulledMessage, ...] = ()  # the message of each row, in row order

    def reject(self, rejected: dict[int, tuple[str, str]]) -> DecodedBatch:
        """This batch with the rows at the given indexes moved to dead letters, each with (reason, detail)."""
        if not rejected:
            return self
        keep = pa.array([i not in rejected for i in range(self.rows.num_rows)])
        letters = dead_letter_table([(self.sources[i], *rejected[i]) for i in sorted(rejected)])
        return DecodedBatch(rows=self.rows.filter(keep),
                            dead_letters=pa.concat_tables([self.dead_letters, letters]),
                            sources=tuple(m for i, m in enumerate(self.sources) if i not in rejected))

    @property
    def good(self) -> int:
        return self.rows.num_rows

    @property
    def bad(self) -> int:
        return self.dead_letters.num_rows


def partition_of(event_timestamp: datetime) -> str:
    """``yyyy/MM/dd`` of the event's start time, in UTC."""
    return event_timestamp.astimezone(UTC).strftime("%Y/%m/%d")


def dead_letter_table(letters: Sequence[tuple[PulledMessage, str, str]]) -> pa.Table:
    """Dead letters (DEAD_LETTER_SCHEMA) for (message, reason, detail) triples: the message kept whole."""
    received_at = datetime.fromtimestamp(time.time(), tz=UTC)
    dead: dict[str, list] = {name: [] for name in DEAD_LETTER_SCHEMA.names}
    for msg, reason, detail in letters:
        dead["messageId"].append(msg.message_id)
        dead["publishTime"].append(msg.publish_time)
        dead["receivedAt"].append(received_at)
        dead["attributes"].append(list(msg.attributes.items()))
        dead["data"].append(msg.data)
        dead["reason"].append(reason)
        dead["detail"].append(detail[:2000])
    return pa.table(dead, schema=DEAD_LETTER_SCHEMA)


def decode_batch(messages: Sequence[PulledMessage], codec: EventCodec) -> DecodedBatch:
    """Decode every message; what cannot be decoded becomes a dead letter with its reason. Nothing is dropped."""
    schema = row_schema(codec.reader.parsed)
    columns: dict[str, list] = {name: [] for name in schema.names}
    map_columns = {f.name for f in schema if pa.types.is_map(f.type)}
    dead: list[tuple[PulledMessage, str, str]] = []
    sources: list[PulledMessage] = []
    for msg in messages:
        try:
            record = codec.decode(msg.data)
        except DecodeError as exc:
            dead.append((msg, exc.reason, exc.detail))
            continue
        sources.append(msg)
        for name in schema.names[:-1]:
            value = record.get(name)
            if name in map_columns:
                value = list((value or {}).items())
            columns[name].append(value)
        columns[PARTITION_FIELD].append(partition_of(record["eventTimestamp"]))
    return DecodedBatch(rows=pa.table(columns, schema=schema), dead_letters=dead_letter_table(dead),
                        sources=tuple(sources))


def concat_batches(parts: Sequence[DecodedBatch]) -> DecodedBatch:
    """One batch of decoded pages (the pulling threads decode page by page)."""
    if len(parts) == 1:
        return parts[0]
    return DecodedBatch(rows=pa.concat_tables([p.rows for p in parts]),
                        dead_letters=pa.concat_tables([p.dead_letters for p in parts]),
                        sources=tuple(m for p in parts for m in p.sources))
