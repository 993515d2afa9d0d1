"""The event contract: the Avro schemas in ``schemas/`` and the single-object codec."""

from obs_platform.events.codec import (
    STATUSES,
    DecodeError,
    EventCodec,
    SchemaRegistry,
    crc64_avro,
)

__all__ = ["STATUSES", "DecodeError", "EventCodec", "SchemaRegistry", "crc64_avro"]
