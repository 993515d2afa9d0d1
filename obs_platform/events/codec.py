"""Avro single-object encoding for PipelineEvent.

Wire format (Avro spec, "Single object encoding"): the two bytes ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary body.
The fingerprint names the writer schema, so a reader resolves writer -> reader schema and v1 and v2
producers can publish side by side.
"""

from __future__ import annotations

import io
import json
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import parse_schema, to_parsing_canonical_form

from obs_platform.settings import REPO_ROOT

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
STATUSES = ("STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING")
SCHEMA_DIR = REPO_ROOT / "schemas"

_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_CRC64_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Avro spec's 64-bit Rabin fingerprint (CRC-64-AVRO) of ``data``."""
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp


# Limits a well-behaved producer never meets; past them a message is a dead letter with the reason in brackets.
MAX_MESSAGE_BYTES = 256 * 1024          # [too_large] a PipelineEvent is ~120 bytes; Pub/Sub allows 10 MB
MAX_ATTRIBUTES = 256                    # [invalid_value] entries in the v2 attributes map
MAX_KEY_CHARS = 1024                    # [invalid_value] eventId, correlationId, pipelineName, stageName
MAX_TEXT_CHARS = 64 * 1024              # [invalid_value] errorMessage, an attribute's key or value
MAX_FUTURE_SKEW_MS = 15 * 60 * 1000     # [future_timestamp] a clock this far ahead would win every merge forever


class DecodeError(ValueError):
    """A message that cannot become a PipelineEvent. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RegisteredSchema:
    version: int
    path: Path
    parsed: dict
    fingerprint: bytes  # 8 bytes, little-endian, as on the wire

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.parsed["fields"]]


class SchemaRegistry:
    """The PipelineEvent schemas shipped in ``schemas/``, by version and by fingerprint.

    ``PipelineEvent.avsc`` is v1; ``PipelineEvent.vN.avsc`` is vN. The newest is the reader schema.
    """

    def __init__(self, schema_dir: Path = SCHEMA_DIR):
        self._by_version: dict[int, RegisteredSchema] = {}
        for path in sorted(schema_dir.glob("PipelineEvent*.avsc")):
            stem = path.name.removesuffix(".avsc")
            version = 1 if stem == "PipelineEvent" else int(stem.rsplit(".v", 1)[1])
            parsed = parse_schema(json.loads(path.read_text()))
            canonical = to_parsing_canonical_form(parsed).encode()
            fingerprint = struct.pack("<Q", crc64_avro(canonical))
            self._by_version[version] = RegisteredSchema(version, path, parsed, fingerprint)
        if not self._by_version:
            raise FileNotFoundError(f"no PipelineEvent*.avsc schema in {schema_dir}")
        self._by_fingerprint = {s.fingerprint: s for s in self._by_version.values()}

    @property
    def versions(self) -> list[int]:
        return sorted(self._by_version)

    @property
    def latest(self) -> RegisteredSchema:
        return self._by_version[max(self._by_version)]

    def version(self, version: int) -> RegisteredSchema:
        try:
            return self._by_version[version]
        except KeyError:
            raise KeyError(f"PipelineEvent schema v{version} not found; known: {self.versions}") from None

    def by_fingerprint(self, fingerprint: bytes) -> RegisteredSchema | None:
        return self._by_fingerprint.get(fingerprint)


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    return SchemaRegistry()


def _to_millis(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return value


class EventCodec:
    """Encodes events with one writer schema version and decodes any known version to the reader schema."""

    def __init__(self, registry: SchemaRegistry | None = None, writer_version: int | None = None):
        self.registry = registry or default_registry()
        self.writer = self.registry.version(writer_version) if writer_version else self.registry.latest
        self.reader = self.registry.latest

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """Validate ``event`` against the writer schema and return its single-object encoding."""
        record = {k: _to_millis(v) for k, v in event.items()}
        problem = semantic_problem(record)
        if problem:
            raise DecodeError("invalid_value", problem)
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(self.writer.fingerprint)
        try:
            fastavro.schemaless_writer(buf, self.writer.parsed, record, strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DecodeError("schema_mismatch", f"event does not match schema v{self.writer.version}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes, now_ms: int | None = None) -> dict[str, Any]:
        """Decode one message to a dict in the reader schema's shape, or raise DecodeError."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise DecodeError("too_large", f"{len(data):,} bytes; a PipelineEvent may take {MAX_MESSAGE_BYTES:,}")
        if len(data) < HEADER_LEN or data[:2] != MAGIC:
            raise DecodeError("bad_header", f"not Avro single-object encoded (first bytes {data[:4].hex()!r})")
        writer = self.registry.by_fingerprint(data[2:HEADER_LEN])
        if writer is None:
            raise DecodeError("unknown_schema", f"unknown writer schema fingerprint {data[2:HEADER_LEN].hex()}")
        body = io.BytesIO(data)
        body.seek(HEADER_LEN)
        try:
            record = fastavro.schemaless_reader(body, writer.parsed, self.reader.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt bodies
            raise DecodeError("corrupt_body", f"cannot decode with schema v{writer.version}: {exc!r}") from exc
        if body.tell() != len(data):
            raise DecodeError("corrupt_body", f"{len(data) - body.tell()} trailing bytes after the record")
        problem = semantic_problem(record)
        if problem:
            raise DecodeError("invalid_value", problem)
        future = future_problem(record, now_ms if now_ms is not None else int(time.time() * 1000))
        if future:
            raise DecodeError("future_timestamp", future)
        record["schemaVersion"] = writer.version
        return record


def semantic_problem(record: Mapping[str, Any]) -> str | None:
    """Rules Avro's types can't say; None when the record is fine."""
    for key in ("eventId", "correlationId", "pipelineName", "stageName"):
        value = record.get(key)
        if isinstance(value, str) and not value.strip():
            return f"{key} is empty"
    for key in ("processedRecordCount", "sourceRecordCount"):
        value = record.get(key)
        if isinstance(value, int) and value < 0:
            return f"{key} is negative ({value})"
    status = record.get("status")
    if status is not None and status not in STATUSES:
        return f"status {status!r} is not one of {list(STATUSES)}"
    score = record.get("dataQualityScore")
    if score is not None and not 0.0 <= score <= 1.0:
        return f"dataQualityScore {score} is outside 0.0..1.0"
    for key in ("eventId", "correlationId", "pipelineName", "stageName"):
        value = record.get(key)
        if isinstance(value, str) and len(value) > MAX_KEY_CHARS:
            return f"{key} has {len(value):,} characters; at most {MAX_KEY_CHARS:,}"
    error = record.get("errorMessage")
    if isinstance(error, str) and len(error) > MAX_TEXT_CHARS:
        return f"errorMessage has {len(error):,} characters; at most {MAX_TEXT_CHARS:,}"
    attributes = record.get("attributes") or {}
    if len(attributes) > MAX_ATTRIBUTES:
        return f"attributes has {len(attributes):,} entries; at most {MAX_ATTRIBUTES}"
    if any(len(k) > MAX_TEXT_CHARS or len(v or "") > MAX_TEXT_CHARS for k, v in attributes.items()):
        return f"an attribute key or value has more than {MAX_TEXT_CHARS:,} characters"
    return None


def _millis(value) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return value if isinstance(value, int) else None


def future_problem(record: Mapping[str, Any], now_ms: int) -> str | None:
    """A state stamped far ahead of the clock would win every later merge (newest lastUpdatedAt wins) and
    freeze its stage run; None when both timestamps are at most MAX_FUTURE_SKEW_MS ahead of ``now_ms``."""
    for key in ("lastUpdatedAt", "eventTimestamp"):
        value = _millis(record.get(key))
        if value is not None and value > now_ms + MAX_FUTURE_SKEW_MS:
            ahead = (value - now_ms) / 1000
            return f"{key} is {ahead:,.0f} s ahead of the ingestion's clock (at most {MAX_FUTURE_SKEW_MS // 1000} s)"
    return None
