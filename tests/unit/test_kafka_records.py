"""Record batch v2 header validation and patching (kafka_wire.records)."""

from __future__ import annotations

import gzip
import struct

import pytest
from crc32c import crc32c
from kio.schema.errors import ErrorCode

from wiregate.kafka_wire import records
from wiregate.kafka_wire.records import InvalidBatch, validate

MAX = 1048588


def _varint(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _record(offset_delta: int, timestamp_delta: int, value: bytes) -> bytes:
    body = b"\x00" + _varint(timestamp_delta) + _varint(offset_delta) + _varint(-1) + _varint(len(value)) + value + _varint(0)
    return _varint(len(body)) + body


def make_batch(
    values: list[bytes] | None = None,
    *,
    base_timestamp: int = 1_000,
    timestamp_step: int = 10,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    attributes: int = 0,
    codec: int = records.NONE,
    base_offset: int = 0,
    count: int | None = None,
    last_offset_delta: int | None = None,
    magic: int = 2,
) -> bytes:
    """A record batch v2 as a client builds it."""
    values = [b"a", b"b", b"c"] if values is None else values
    body = b"".join(_record(i, i * timestamp_step, v) for i, v in enumerate(values))
    if codec == records.GZIP:
        body = gzip.compress(body)
    max_timestamp = base_timestamp + (len(values) - 1) * timestamp_step
    tail = struct.pack(
        ">hiqqqhii",
        attributes | codec,
        len(values) - 1 if last_offset_delta is None else last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(values) if count is None else count,
    ) + body
    crc = crc32c(tail)
    head = struct.pack(">qiib", base_offset, 4 + 1 + 4 + len(tail), -1, magic) + struct.pack(">I", crc)
    return head + tail


def _code(data: bytes, **kwargs: int) -> ErrorCode:
    with pytest.raises(InvalidBatch) as caught:
        validate(data, max_message_bytes=kwargs.pop("max_message_bytes", MAX), **kwargs)
    return caught.value.error_code


def test_valid_batch_header() -> None:
    batch = make_batch(producer_id=7, producer_epoch=1, base_sequence=4)
    header = validate(batch, max_message_bytes=MAX)
    assert header.size == len(batch)
    assert header.record_count == 3
    assert header.last_offset_delta == 2
    assert (header.producer_id, header.producer_epoch, header.base_sequence, header.last_sequence) == (7, 1, 4, 6)
    assert header.max_timestamp == 1_020
    assert header.codec == records.NONE


def test_compressed_batch_is_accepted_without_decoding() -> None:
    batch = make_batch(codec=records.GZIP)
    assert validate(batch, max_message_bytes=MAX).codec == records.GZIP


def test_trailing_partial_batch_is_ignored() -> None:
    batch = make_batch()
    header = validate(batch + batch[:20], max_message_bytes=MAX)
    assert header.size == len(batch)


def test_empty_or_truncated_is_invalid_record() -> None:
    batch = make_batch()
    assert _code(b"") == ErrorCode.invalid_record
    assert _code(batch[:11]) == ErrorCode.invalid_record
    assert _code(batch[:-1]) == ErrorCode.invalid_record


def test_length_below_minimum_is_corrupt() -> None:
    batch = bytearray(make_batch())
    struct.pack_into(">i", batch, 8, 13)
    assert _code(bytes(batch)) == ErrorCode.corrupt_message


def test_length_below_header_is_corrupt() -> None:
    batch = bytearray(make_batch()[:40])
    struct.pack_into(">i", batch, 8, 40 - 12)
    assert _code(bytes(batch)) == ErrorCode.corrupt_message


def test_magic_above_two_is_corrupt() -> None:
    assert _code(make_batch(magic=3)) == ErrorCode.corrupt_message


def test_legacy_magic_is_invalid_record() -> None:
    assert _code(make_batch(magic=1)) == ErrorCode.invalid_record


def test_bad_crc_is_corrupt() -> None:
    batch = bytearray(make_batch())
    batch[-1] ^= 0xFF
    assert _code(bytes(batch)) == ErrorCode.corrupt_message


def test_crc_does_not_cover_offset_and_epoch() -> None:
    batch = bytearray(make_batch())
    records.assign(batch, 12345, 7)
    assert records.base_offset(bytes(batch)) == 12345
    assert records.partition_leader_epoch(bytes(batch)) == 7
    assert struct.unpack_from(">I", batch, 17)[0] == records.checksum(batch)


def test_nonzero_base_offset_is_invalid_record() -> None:
    assert _code(make_batch(base_offset=5)) == ErrorCode.invalid_record


def test_count_mismatch_is_invalid_record() -> None:
    assert _code(make_batch(count=2)) == ErrorCode.invalid_record
    assert _code(make_batch(count=0, last_offset_delta=-1)) == ErrorCode.invalid_record
    assert _code(make_batch(last_offset_delta=-2)) == ErrorCode.invalid_record


def test_oversize_is_message_too_large_before_crc() -> None:
    batch = bytearray(make_batch([b"x" * 200]))
    assert _code(bytes(batch), max_message_bytes=100) == ErrorCode.message_too_large
    batch[-1] ^= 0xFF
    assert _code(bytes(batch), max_message_bytes=100) == ErrorCode.message_too_large
    assert validate(make_batch([b"x" * 200]), max_message_bytes=len(make_batch([b"x" * 200]))).record_count == 1


def test_two_batches_are_invalid_record() -> None:
    batch = make_batch()
    assert _code(batch + batch) == ErrorCode.invalid_record


def test_control_batch_is_invalid_record() -> None:
    assert _code(make_batch(attributes=records.CONTROL_BIT)) == ErrorCode.invalid_record


def test_producer_id_without_sequence_is_invalid_record() -> None:
    assert _code(make_batch(producer_id=3, producer_epoch=0, base_sequence=-1)) == ErrorCode.invalid_record


def test_zstd_needs_produce_v7() -> None:
    batch = make_batch(codec=records.ZSTD)
    assert _code(batch, api_version=6) == ErrorCode.unsupported_compression_type
    assert validate(batch, max_message_bytes=MAX, api_version=7).codec == records.ZSTD


def test_unknown_codec() -> None:
    assert _code(make_batch(codec=5)) == ErrorCode.unknown_server_error


def test_log_append_time_rewrites_header_and_crc() -> None:
    batch = bytearray(make_batch())
    records.set_log_append_time(batch, 99_999)
    header = validate(bytes(batch), max_message_bytes=MAX)
    assert header.attributes & records.TIMESTAMP_TYPE_BIT
    assert header.max_timestamp == 99_999
    assert [t for _, t in records.iter_record_timestamps(bytes(batch))] == [99_999] * 3


def test_sequence_wraps() -> None:
    assert records.increment_sequence(0x7FFFFFFF, 1) == 0
    assert records.increment_sequence(0x7FFFFFFE, 3) == 1
    assert records.increment_sequence(5, 2) == 7


@pytest.mark.parametrize("codec", [records.NONE, records.GZIP])
def test_record_timestamps(codec: int) -> None:
    batch = bytearray(make_batch([b"1", b"2", b"3", b"4"], codec=codec, base_timestamp=500, timestamp_step=7))
    records.assign(batch, 40, 0)
    assert list(records.iter_record_timestamps(bytes(batch))) == [(40, 500), (41, 507), (42, 514), (43, 521)]
