"""Record batch v2 (magic 2) headers: validation and in-place patching.

Produce stores a batch as the bytes the client sent.  Only the 61-byte
header is read; records are never decoded on that path, so compressed
batches (gzip, snappy, lz4, zstd) cost the same as plain ones.  Layout
(Kafka's ``DefaultRecordBatch``)::

    0  baseOffset int64          <- patched on append (not covered by the CRC)
    8  batchLength int32            bytes after this field
    12 partitionLeaderEpoch int32 <- patched on append (not covered by the CRC)
    16 magic int8
    17 crc uint32                   CRC-32C of bytes 21..end
    21 attributes int16             bits 0-2 codec, 3 LogAppendTime, 4 transactional, 5 control
    23 lastOffsetDelta int32
    27 baseTimestamp int64
    35 maxTimestamp int64
    43 producerId int64
    51 producerEpoch int16
    53 baseSequence int32
    57 recordCount int32
    61 records

The checks and their order follow Kafka 4.0: ``ProduceRequest.validateRecords``
(one batch of magic 2 per partition), ``UnifiedLog.analyzeAndValidateRecords``
(base offset 0, size against ``max.message.bytes``, then the CRC) and
``LogValidator.validateBatch`` (offset range against the record count,
no control batches, a sequence when there is a producer id).

Decoding records (``iter_record_timestamps``) exists for the paths that
need it off the hot path: ListOffsets by timestamp.
"""

from __future__ import annotations

import gzip
import struct
from typing import Iterator

from wiregate import _crc
from kio.schema.errors import ErrorCode

HEADER_SIZE = 61
#: the 12 bytes before batchLength's payload (baseOffset + batchLength)
LOG_OVERHEAD = 12
#: Kafka's LegacyRecord.RECORD_OVERHEAD_V0: the smallest batchLength a stream accepts
_MIN_LENGTH = 14

CODEC_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4

_int64 = struct.Struct(">q")
_int32 = struct.Struct(">i")
_uint32 = struct.Struct(">I")
_int16 = struct.Struct(">h")
# attributes .. recordCount, after the CRC
_tail = struct.Struct(">hiqqqhii")


class InvalidBatch(Exception):
    """A batch Kafka would refuse; ``error_code`` is what Produce answers."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class BatchHeader:
    """The fields of a validated batch header."""

    __slots__ = (
        "size", "attributes", "last_offset_delta", "base_timestamp", "max_timestamp",
        "producer_id", "producer_epoch", "base_sequence", "record_count",
    )

    def __init__(self, size: int, fields: tuple[int, ...]) -> None:
        self.size = size
        (
            self.attributes, self.last_offset_delta, self.base_timestamp, self.max_timestamp,
            self.producer_id, self.producer_epoch, self.base_sequence, self.record_count,
        ) = fields

    @property
    def codec(self) -> int:
        return self.attributes & CODEC_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0

    @property
    def last_sequence(self) -> int:
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def increment_sequence(sequence: int, increment: int) -> int:
    """Kafka's DefaultRecordBatch.incrementSequence: sequences wrap at 2**31-1."""
    if sequence > 0x7FFFFFFF - increment:
        return increment - (0x7FFFFFFF - sequence) - 1
    return sequence + increment


def checksum(batch: bytes | bytearray | memoryview) -> int:
    """The CRC-32C a batch header should carry (over attributes..end)."""
    return _crc.crc32c(memoryview(batch)[21:])


def _batch_size(data: bytes | bytearray, pos: int) -> int | None:
    """Size of the batch starting at ``pos`` (Kafka's ByteBufferLogInputStream); None if incomplete."""
    remaining = len(data) - pos
    if remaining < LOG_OVERHEAD:
        return None
    length = _int32.unpack_from(data, pos + 8)[0]
    if length < _MIN_LENGTH:
        raise InvalidBatch(ErrorCode.corrupt_message, f"record size {length} is less than the minimum record overhead ({_MIN_LENGTH})")
    size = length + LOG_OVERHEAD
    if remaining < size or remaining < 17:
        return None
    magic = data[pos + 16]
    if magic > 2:
        raise InvalidBatch(ErrorCode.corrupt_message, f"invalid magic found in record: {magic}")
    return size


def validate(data: bytes | bytearray, *, max_message_bytes: int, api_version: int = 12) -> BatchHeader:
    """Validate the one record batch of a Produce partition.

    Args:
        data: the partition's ``records`` bytes.
        max_message_bytes: the topic's ``max.message.bytes``.
        api_version: the Produce version (zstd needs v7+).

    Returns:
        The header of the batch.  Bytes after a complete batch that do not
        form a second batch are ignored, as Kafka trims them.

    Raises:
        InvalidBatch: INVALID_RECORD, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE or
            UNSUPPORTED_COMPRESSION_TYPE, as Kafka answers.
    """
    size = _batch_size(data, 0)
    if size is None:
        raise InvalidBatch(ErrorCode.invalid_record, "Produce requests must have at least one record batch per partition")
    if data[16] != 2:
        raise InvalidBatch(ErrorCode.invalid_record, "Produce requests are only allowed to contain record batches with magic version 2")
    if size < HEADER_SIZE:
        raise InvalidBatch(ErrorCode.corrupt_message, f"record batch is corrupt (the size {size} is smaller than the minimum allowed overhead {HEADER_SIZE})")
    header = BatchHeader(size, _tail.unpack_from(data, 21))
    if header.codec > ZSTD:
        raise InvalidBatch(ErrorCode.unknown_server_error, f"unknown compression type id: {header.codec}")
    if header.codec == ZSTD and api_version < 7:
        raise InvalidBatch(ErrorCode.unsupported_compression_type, f"Produce requests with version {api_version} are not allowed to use ZStandard compression")
    if _batch_size(data, size) is not None:
        raise InvalidBatch(ErrorCode.invalid_record, "Produce requests are only allowed to contain exactly one record batch per partition")
    if _int64.unpack_from(data, 0)[0] != 0:
        raise InvalidBatch(ErrorCode.invalid_record, f"the baseOffset of the record batch should be 0, but it is {_int64.unpack_from(data, 0)[0]}")
    if size > max_message_bytes:
        raise InvalidBatch(ErrorCode.message_too_large, f"the record batch size is {size} bytes which exceeds the maximum configured value of {max_message_bytes}")
    stored = _uint32.unpack_from(data, 17)[0]
    if stored != _crc.crc32c(memoryview(data)[21:size]):
        raise InvalidBatch(ErrorCode.corrupt_message, f"record is corrupt (stored crc = {stored})")
    if header.last_offset_delta < 0:
        raise InvalidBatch(ErrorCode.invalid_record, f"batch has an invalid offset range: [0, {header.last_offset_delta}]")
    if header.record_count <= 0:
        raise InvalidBatch(ErrorCode.invalid_record, f"invalid reported count for record batch: {header.record_count}")
    if header.last_offset_delta + 1 != header.record_count:
        raise InvalidBatch(ErrorCode.invalid_record, f"inconsistent batch offset range [0, {header.last_offset_delta}] and count of records {header.record_count}")
    if header.is_control:
        raise InvalidBatch(ErrorCode.invalid_record, "clients are not allowed to write control records")
    if header.has_producer_id and header.base_sequence < 0:
        raise InvalidBatch(ErrorCode.invalid_record, f"invalid sequence number {header.base_sequence} in record batch with producerId {header.producer_id}")
    return header


def assigned(data: bytes, size: int, base_offset: int, leader_epoch: int) -> bytes:
    """The first ``size`` bytes of ``data`` with base offset and leader epoch patched, in one copy."""
    view = memoryview(data)
    return b"".join((_int64.pack(base_offset), view[8:12], _int32.pack(leader_epoch), view[16:size]))


def assign(batch: bytearray, base_offset: int, leader_epoch: int) -> None:
    """Patch the base offset and partition leader epoch (neither is covered by the CRC)."""
    _int64.pack_into(batch, 0, base_offset)
    _int32.pack_into(batch, 12, leader_epoch)


def set_log_append_time(batch: bytearray, now_ms: int) -> None:
    """Turn a batch into LogAppendTime: timestamp type bit and maxTimestamp, then a new CRC.

    This is what Kafka's ``setMaxTimestamp(LOG_APPEND_TIME, now)`` does in
    place; consumers read every record's timestamp from maxTimestamp.
    """
    attributes = _int16.unpack_from(batch, 21)[0] | TIMESTAMP_TYPE_BIT
    _int16.pack_into(batch, 21, attributes)
    _int64.pack_into(batch, 35, now_ms)
    _uint32.pack_into(batch, 17, _crc.crc32c(memoryview(batch)[21:]))


def base_offset(batch: bytes) -> int:
    return _int64.unpack_from(batch, 0)[0]


def max_timestamp(batch: bytes) -> int:
    return _int64.unpack_from(batch, 35)[0]


def partition_leader_epoch(batch: bytes) -> int:
    return _int32.unpack_from(batch, 12)[0]


# ------------------------------------------------------------ decoding
def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint (Kafka's ByteUtils.readVarlong) and the next position."""
    shift = 0
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def decompress(codec: int, data: bytes) -> bytes:
    """The records section of a compressed batch, uncompressed.

    Raises:
        ValueError: the codec needs a library that is not installed
            (snappy, lz4 and zstd come from ``cramjam``).
    """
    if codec == NONE:
        return data
    if codec == GZIP:
        return gzip.decompress(data)
    try:
        import cramjam
    except ImportError:
        raise ValueError(f"decoding codec {codec} needs cramjam") from None
    if codec == SNAPPY:
        return _snappy(cramjam, data)
    if codec == LZ4:
        return bytes(cramjam.lz4.decompress(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.decompress(data))
    raise ValueError(f"unknown codec {codec}")


_XERIAL = b"\x82SNAPPY\x00"


def _snappy(cramjam: object, data: bytes) -> bytes:
    # The Java client frames snappy the xerial way (a magic header, then
    # length-prefixed raw blocks); librdkafka sends one raw block.
    raw = cramjam.snappy.decompress_raw  # type: ignore[attr-defined]
    if not data.startswith(_XERIAL):
        return bytes(raw(data))
    out = []
    pos = 16
    while pos + 4 <= len(data):
        length = _int32.unpack_from(data, pos)[0]
        out.append(bytes(raw(data[pos + 4 : pos + 4 + length])))
        pos += 4 + length
    return b"".join(out)


def iter_record_timestamps(batch: bytes) -> Iterator[tuple[int, int]]:
    """(offset, timestamp) of each record of a stored batch.

    For LogAppendTime batches every record has the batch's maxTimestamp, as
    Kafka's DefaultRecordBatch reports.
    """
    header = BatchHeader(len(batch), _tail.unpack_from(batch, 21))
    base = base_offset(batch)
    if header.attributes & TIMESTAMP_TYPE_BIT:
        for delta in range(header.record_count):
            yield base + delta, header.max_timestamp
        return
    for offset_delta, timestamp, _null_key in iter_records(batch):
        yield base + offset_delta, timestamp


def iter_records(batch: bytes) -> Iterator[tuple[int, int, bool]]:
    """(offset delta, timestamp, key is null) of each record of a batch.

    Only for what needs records (compacted topics, timestamp bounds,
    ListOffsets inside a batch): Produce and Fetch never call it otherwise.
    """
    header = BatchHeader(len(batch), _tail.unpack_from(batch, 21))
    for data, timestamp_delta, offset_delta, pos in _record_starts(batch, header):
        key_length, _ = _varint(data, pos)
        yield offset_delta, header.base_timestamp + timestamp_delta, key_length < 0


def _record_starts(batch: bytes, header: BatchHeader) -> Iterator[tuple[bytes, int, int, int]]:
    """(records section, timestamp delta, offset delta, position of the key) of each record."""
    data = decompress(header.codec, bytes(batch[HEADER_SIZE:]))
    pos = 0
    for _ in range(header.record_count):
        length, pos = _varint(data, pos)
        end = pos + length
        timestamp_delta, pos = _varint(data, pos + 1)  # past the attributes byte
        offset_delta, pos = _varint(data, pos)
        yield data, timestamp_delta, offset_delta, pos
        pos = end


# ------------------------------------------------------------ whole records
def decode_records(batch: bytes) -> list[tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]]:
    """(offset, timestamp ms, key, value, headers) of each record of a stored batch.

    For reading what is stored (``wiregate.testing``); control batches
    (transaction markers) have no user records and give none.
    """
    header = BatchHeader(len(batch), _tail.unpack_from(batch, 21))
    if header.is_control:
        return []
    base = base_offset(batch)
    log_append = bool(header.attributes & TIMESTAMP_TYPE_BIT)
    out = []
    for data, timestamp_delta, offset_delta, pos in _record_starts(batch, header):
        key, pos = _varbytes(data, pos)
        value, pos = _varbytes(data, pos)
        count, pos = _varint(data, pos)
        headers = []
        for _ in range(count):
            name, pos = _varbytes(data, pos)
            header_value, pos = _varbytes(data, pos)
            headers.append(((name or b"").decode("utf-8", "replace"), header_value))
        timestamp = header.max_timestamp if log_append else header.base_timestamp + timestamp_delta
        out.append((base + offset_delta, timestamp, key, value, headers))
    return out


def _varbytes(data: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = _varint(data, pos)
    if length < 0:
        return None, pos
    return bytes(data[pos : pos + length]), pos + length


def _put_varint(out: bytearray, value: int) -> None:
    value = (value << 1) ^ (value >> 63)
    while value & ~0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_varbytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _put_varint(out, -1)
        return
    _put_varint(out, len(value))
    out += value


def encode_batch(records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]]) -> bytearray:
    """An uncompressed magic-2 batch of (key, value, headers, timestamp ms) records, base offset 0.

    Not for the Produce path (which stores what clients send): for putting
    records into a topic from Python (``wiregate.testing``).
    """
    body = bytearray()
    base_timestamp = records[0][3] if records else 0
    for delta, (key, value, headers, timestamp) in enumerate(records):
        record = bytearray(b"\x00")
        _put_varint(record, timestamp - base_timestamp)
        _put_varint(record, delta)
        _put_varbytes(record, key)
        _put_varbytes(record, value)
        _put_varint(record, len(headers))
        for name, header_value in headers:
            _put_varbytes(record, name.encode())
            _put_varbytes(record, header_value)
        _put_varint(body, len(record))
        body += record
    max_timestamp = max((r[3] for r in records), default=base_timestamp)
    batch = bytearray(HEADER_SIZE) + body
    _int64.pack_into(batch, 0, 0)
    _int32.pack_into(batch, 8, len(batch) - LOG_OVERHEAD)
    _int32.pack_into(batch, 12, 0)
    batch[16] = 2
    _tail.pack_into(batch, 21, 0, len(records) - 1, base_timestamp, max_timestamp, -1, -1, -1, len(records))
    _uint32.pack_into(batch, 17, _crc.crc32c(memoryview(batch)[21:]))
    return batch


# ------------------------------------------------------------ compaction
#: attributes bit 6: baseTimestamp holds the batch's delete horizon (KIP-534)
DELETE_HORIZON_BIT = 0x40
_KEPT_ATTRIBUTES = TIMESTAMP_TYPE_BIT | TRANSACTIONAL_BIT | CONTROL_BIT


def record_count(batch: bytes) -> int:
    """Records in a stored batch (0 for a batch the cleaner left empty)."""
    return _int32.unpack_from(batch, 57)[0]


def delete_horizon(batch: bytes) -> int | None:
    """The delete horizon (ms) the log cleaner set on a batch, None when it has none."""
    if _int16.unpack_from(batch, 21)[0] & DELETE_HORIZON_BIT:
        return _int64.unpack_from(batch, 27)[0]
    return None


def _raw_records(batch: bytes) -> tuple[BatchHeader, list[tuple[int, int, int, bytes | None, bool, bytes]]]:
    """The header and, per record, (attributes, timestamp, offset delta, key, has value, bytes from the key to the end)."""
    try:
        header = BatchHeader(len(batch), _tail.unpack_from(batch, 21))
        data = decompress(header.codec, bytes(batch[HEADER_SIZE:]))
        out = []
        pos = 0
        for _ in range(header.record_count):
            length, pos = _varint(data, pos)
            end = pos + length
            attributes = data[pos]
            timestamp_delta, pos = _varint(data, pos + 1)
            offset_delta, pos = _varint(data, pos)
            rest = pos
            key, pos = _varbytes(data, pos)
            value_length, pos = _varint(data, pos)
            if end > len(data):
                raise ValueError("record past the end of the batch")
            out.append((attributes, header.base_timestamp + timestamp_delta, offset_delta, key, value_length >= 0, bytes(data[rest:end])))
            pos = end
    except ValueError:
        raise
    except Exception as error:  # truncated data, a codec's own error
        raise ValueError(f"undecodable batch: {error}") from None
    return header, out


def compaction_records(batch: bytes) -> list[tuple[int, bytes | None, bool]]:
    """(offset, key, has a value) of each record, for the log cleaner; control batches give none.

    Raises:
        ValueError: the batch cannot be decoded (a codec without its library, corrupt data).
    """
    if _int16.unpack_from(batch, 21)[0] & CONTROL_BIT:
        return []
    header, records = _raw_records(batch)
    base = base_offset(batch)
    return [(base + offset_delta, key, has_value) for _a, _t, offset_delta, key, has_value, _rest in records]


def rebuild_batch(batch: bytes, keep: list[int], horizon: int | None) -> bytes:
    """The batch with only the records at offsets ``keep``, as Kafka's cleaner writes it.

    Base offset, lastOffsetDelta (so the last sequence survives), producer
    id, epoch and base sequence, partition leader epoch and the timestamp
    type stay; each kept record keeps its offset delta, timestamp, key,
    value and headers byte for byte.  The batch is written uncompressed
    (Kafka recompresses with the original codec), with ``horizon`` as its
    delete horizon when given (baseTimestamp, attributes bit 6), and a new
    CRC.  With nothing kept it is an empty batch header (recordCount 0,
    baseTimestamp -1, the original maxTimestamp), Kafka's
    ``writeEmptyHeader``.
    """
    header, records = _raw_records(batch)
    base = base_offset(batch)
    wanted = set(keep)
    kept = [r for r in records if base + r[2] in wanted]
    attributes = header.attributes & _KEPT_ATTRIBUTES
    body = bytearray()
    if kept:
        if horizon is not None:
            attributes |= DELETE_HORIZON_BIT
        base_timestamp = horizon if horizon is not None else kept[0][1]
        if header.attributes & TIMESTAMP_TYPE_BIT:
            max_ts = header.max_timestamp
        else:
            max_ts = max(r[1] for r in kept)
        for record_attributes, timestamp, offset_delta, _key, _has_value, rest in kept:
            record = bytearray((record_attributes,))
            _put_varint(record, timestamp - base_timestamp)
            _put_varint(record, offset_delta)
            record += rest
            _put_varint(body, len(record))
            body += record
    else:
        base_timestamp, max_ts = -1, header.max_timestamp
    out = bytearray(HEADER_SIZE) + body
    _int64.pack_into(out, 0, base)
    _int32.pack_into(out, 8, len(out) - LOG_OVERHEAD)
    _int32.pack_into(out, 12, partition_leader_epoch(batch))
    out[16] = 2
    _tail.pack_into(
        out, 21, attributes, header.last_offset_delta, base_timestamp, max_ts,
        header.producer_id, header.producer_epoch, header.base_sequence, len(kept),
    )
    _uint32.pack_into(out, 17, _crc.crc32c(memoryview(out)[21:]))
    return bytes(out)


class CompactionCodec:
    """Record batches for ``core.retention`` (its RecordCodec)."""

    compaction_records = staticmethod(compaction_records)
    delete_horizon = staticmethod(delete_horizon)
    max_timestamp = staticmethod(max_timestamp)

    @staticmethod
    def rebuild(payload: bytes, keep: list[int], horizon: int | None) -> bytes:
        return rebuild_batch(payload, keep, horizon)

    @staticmethod
    def size(payload: bytes) -> int:
        return len(payload)


COMPACTION_CODEC = CompactionCodec()
