"""The event contract: Avro single-object encoding, schema resolution, and what is rejected."""

import io
import struct
from datetime import UTC, datetime

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from obs_platform.events.codec import MAGIC, DecodeError, EventCodec, crc64_avro, default_registry

T0 = datetime(2026, 11, 26, 9, 30, 0, 123000, tzinfo=UTC)


def event(**overrides):
    base = dict(eventId="e1", correlationId="c1", pipelineName="orders", stageName="extract", status="RUNNING",
                eventTimestamp=T0, processedRecordCount=10, sourceRecordCount=20, errorMessage=None,
                lastUpdatedAt=T0)
    return {**base, **overrides}


def test_crc64_avro_matches_the_spec_and_fastavro():
    # Avro spec: the fingerprint of the empty string is the empty constant itself.
    assert crc64_avro(b"") == 0xC15D213AA4D7A795
    for schema in (default_registry().version(v) for v in default_registry().versions):
        canonical = to_parsing_canonical_form(schema.parsed)
        assert schema.fingerprint.hex() == fingerprint(canonical, "CRC-64-AVRO")


def test_single_object_header_names_the_writer_schema():
    data = EventCodec(writer_version=1).encode(event())
    assert data[:2] == MAGIC == b"\xc3\x01"
    assert data[2:10] == default_registry().version(1).fingerprint
    assert struct.unpack("<Q", data[2:10])[0] == crc64_avro(
        to_parsing_canonical_form(default_registry().version(1).parsed).encode())


def test_all_five_statuses_round_trip():
    codec = EventCodec()
    for status in ("STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING"):
        assert codec.decode(codec.encode(event(status=status)))["status"] == status


def test_v1_message_reads_as_v2_with_defaults():
    v1_bytes = EventCodec(writer_version=1).encode(event(errorMessage="boom"))
    record = EventCodec().decode(v1_bytes)
    assert record["schemaVersion"] == 1
    assert record["errorMessage"] == "boom"
    assert record["eventTimestamp"] == T0
    assert record["dataQualityScore"] is None and record["attributes"] == {}


def test_v2_message_keeps_its_new_fields():
    v2 = EventCodec(writer_version=2)
    record = v2.decode(v2.encode(event(dataQualityScore=0.97, attributes={"owner": "team-a"})))
    assert record["schemaVersion"] == 2
    assert record["dataQualityScore"] == 0.97 and record["attributes"] == {"owner": "team-a"}


def test_timestamps_are_timestamp_millis_inside_the_type():
    fields = {f["name"]: f for f in default_registry().latest.parsed["fields"]}
    for name in ("eventTimestamp", "lastUpdatedAt"):
        assert fields[name]["type"] == {"type": "long", "logicalType": "timestamp-millis"}


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "bad_header"),
        (b"{\"eventId\": \"e1\"}", "bad_header"),
        (MAGIC + b"\x00" * 8 + b"\x02e1", "unknown_schema"),
    ],
)
def test_undecodable_bytes_are_rejected_with_a_reason(data, reason):
    with pytest.raises(DecodeError) as err:
        EventCodec().decode(data)
    assert err.value.reason == reason


def test_truncated_body_is_corrupt():
    data = EventCodec().encode(event())
    with pytest.raises(DecodeError) as err:
        EventCodec().decode(data[:-5])
    assert err.value.reason == "corrupt_body"


def _raw_v1(record):
    """Bytes a careless producer might send: a valid header and Avro body, bypassing the codec's checks."""
    schema = default_registry().version(1)
    buf = io.BytesIO()
    buf.write(MAGIC + schema.fingerprint)
    fastavro.schemaless_writer(buf, schema.parsed, record)
    return buf.getvalue()


@pytest.mark.parametrize(
    "change, reason_text",
    [
        ({"processedRecordCount": -1}, "processedRecordCount is negative"),
        ({"eventId": " "}, "eventId is empty"),
    ],
)
def test_schema_valid_but_invalid_values_are_rejected(change, reason_text):
    with pytest.raises(DecodeError) as err:
        EventCodec().decode(_raw_v1(event(**change)))
    assert err.value.reason == "invalid_value"
    assert reason_text in err.value.detail


def test_encoder_refuses_an_unknown_status():
    with pytest.raises(DecodeError):
        EventCodec().encode(event(status="PAUSED"))
