"""Kafka framing and the kio codec glue.

Requests are size-prefixed; the header is v1 (non-flexible request) or v2
(flexible), and responses carry header v0 or v1 the same way, except
ApiVersions responses, which always use header v0 (KIP-511).  kio provides
one frozen dataclass per (API, version, request/response), generated from
Kafka's own JSON schemas; :func:`build` fills a response for whatever
version was negotiated from version-neutral keyword arguments, so a handler
is written once for all its versions.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import struct
import types
import typing
import uuid
from typing import Any

from kio.index import load_payload_module
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from . import guard

_size = struct.Struct(">i")
_head = struct.Struct(">hhi")

#: Kafka's socket.request.max.bytes default: 100 MiB
MAX_REQUEST_SIZE = 104857600


class ProtocolError(Exception):
    """The peer broke the framing or sent an undecodable request: close the connection."""


@functools.lru_cache(maxsize=None)
def request_class(api_key: int, version: int) -> type:
    module = load_payload_module(api_key, version, EntityType.request)
    return _entity_in(module, "Request")


@functools.lru_cache(maxsize=None)
def response_class(api_key: int, version: int) -> type:
    module = load_payload_module(api_key, version, EntityType.response)
    return _entity_in(module, "Response")


def _entity_in(module: types.ModuleType, suffix: str) -> type:
    for name, value in vars(module).items():
        if (
            isinstance(value, type)
            and dataclasses.is_dataclass(value)
            and name.endswith(suffix)
            and getattr(value, "__type__", None) in (EntityType.request, EntityType.response)
        ):
            return value
    raise LookupError(f"no {suffix} entity in {module.__name__}")


@functools.lru_cache(maxsize=None)
def _reader(cls: type) -> Any:
    return entity_reader(cls)


@functools.lru_cache(maxsize=None)
def _writer(cls: type) -> Any:
    return entity_writer(cls)


def decode_request(api_key: int, version: int, payload: bytes) -> tuple[Any, Any]:
    """Decode header and body of one request payload (after the size prefix).

    Returns:
        (header, request) kio entities.

    Raises:
        ProtocolError: the bytes do not decode.
    """
    cls = request_class(api_key, version)
    header_cls = cls.__header_schema__
    try:
        header, used = _reader(header_cls)(payload, 0)
        # kio reserves memory from array counts before reading: a lying count
        # would abort the process, so counts are checked first (guard.py)
        guard.check(cls, payload, used)
        request, _ = _reader(cls)(payload, used)
    except Exception as error:  # kio raises several types for bad input
        raise ProtocolError(f"cannot decode {cls.__name__} v{version}: {error}") from None
    return header, request


# ------------------------------------------------------------------ Produce requests
# Producers send a Produce request per batch (librdkafka: up to ~1 MB each).
# kio's reader copies the records out of the payload and builds a frozen
# dataclass per level; this reads the same fields by hand and leaves each
# partition's records as a memoryview slice of the payload: no copy until
# the batch is stored (``records.assigned``).  Anything unusual — a tagged
# field, a null array, trailing bytes, a short read — returns None and the
# request goes through kio, which answers it as before (decoded or a
# ProtocolError).  tests/unit/test_kafka_produce_encoding.py compares the
# two field for field.
_i16_at = struct.Struct(">h").unpack_from
_i32_at = struct.Struct(">i").unpack_from
_acks_timeout = struct.Struct(">hi").unpack_from


class ProducePartition:
    """One partition of a hand-decoded Produce request (kio's ``PartitionProduceData`` fields)."""

    __slots__ = ("index", "records")

    def __init__(self, index: int, records: memoryview | None) -> None:
        self.index = index
        #: a view of the request payload: valid while the request is being handled, never kept
        self.records = records


class ProduceTopic:
    """One topic of a hand-decoded Produce request (kio's ``TopicProduceData`` fields)."""

    __slots__ = ("name", "partition_data")

    def __init__(self, name: str, partition_data: tuple[ProducePartition, ...]) -> None:
        self.name = name
        self.partition_data = partition_data


class ProduceRequest:
    """A hand-decoded Produce request v3-v12 (kio's ``ProduceRequest`` fields)."""

    __slots__ = ("transactional_id", "acks", "timeout", "topic_data")

    def __init__(self, transactional_id: str | None, acks: int, timeout_ms: int, topic_data: tuple[ProduceTopic, ...]) -> None:
        self.transactional_id = transactional_id
        self.acks = acks
        self.timeout = datetime.timedelta(milliseconds=timeout_ms)
        self.topic_data = topic_data


class _Unusual(Exception):
    """The request is not one the hand reader takes: kio reads it."""


def _read_uvarint(data: memoryview, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise _Unusual


def _size_at(data: memoryview, pos: int, flexible: bool, width: int) -> tuple[int, int]:
    """A string or bytes length, or an array count (-1: null), and the next
    position: compact (unsigned varint of the value + 1) in flexible
    versions, a signed big-endian int of ``width`` bytes (2 or 4) before."""
    if flexible:
        value, pos = _read_uvarint(data, pos)
        return value - 1, pos
    return (_i16_at if width == 2 else _i32_at)(data, pos)[0], pos + width


def _no_tags(data: memoryview, pos: int) -> int:
    if data[pos] != 0:
        raise _Unusual  # a tagged field: kio knows what to do with it
    return pos + 1


def decode_produce(payload: memoryview, version: int) -> tuple[str | None, ProduceRequest] | None:
    """(client_id, request) of a Produce request v3-v12 payload, or None for kio to read.

    ``payload`` starts at the request header (after the size prefix); the
    records are views of it.
    """
    if not 3 <= version <= 12:
        return None
    end = len(payload)
    try:
        length = _i16_at(payload, 8)[0]
        pos = 10
        if length < -1:
            return None
        if length == -1:
            client_id = None
        else:
            client_id = str(payload[pos : pos + length], "utf-8")
            pos += length
            if pos > end:
                return None
        flexible = version >= 9
        if flexible:
            pos = _no_tags(payload, pos)  # request header v2
        length, pos = _size_at(payload, pos, flexible, 2)
        if length < -1:
            return None
        if length == -1:
            transactional_id = None
        else:
            if pos + length > end:
                return None
            transactional_id = str(payload[pos : pos + length], "utf-8")
            pos += length
        acks, timeout_ms = _acks_timeout(payload, pos)
        pos += 6
        count, pos = _size_at(payload, pos, flexible, 4)
        if count < 0 or count > end - pos:
            return None
        topics = []
        for _ in range(count):
            length, pos = _size_at(payload, pos, flexible, 2)
            if length < 0 or pos + length > end:
                return None
            name = str(payload[pos : pos + length], "utf-8")
            pos += length
            partitions_count, pos = _size_at(payload, pos, flexible, 4)
            if partitions_count < 0 or partitions_count > end - pos:
                return None
            partitions = []
            for _ in range(partitions_count):
                index = _i32_at(payload, pos)[0]
                pos += 4
                length, pos = _size_at(payload, pos, flexible, 4)
                if length < -1:
                    return None
                if length == -1:
                    records = None
                else:
                    if pos + length > end:
                        return None
                    records = payload[pos : pos + length]
                    pos += length
                if flexible:
                    pos = _no_tags(payload, pos)
                partitions.append(ProducePartition(index, records))
            if flexible:
                pos = _no_tags(payload, pos)
            topics.append(ProduceTopic(name, tuple(partitions)))
        if flexible:
            pos = _no_tags(payload, pos)
    except (_Unusual, IndexError, struct.error, UnicodeDecodeError):
        return None
    if pos != end:
        return None
    return client_id, ProduceRequest(transactional_id, acks, timeout_ms, tuple(topics))


class _Parts(list):
    """A write-only stream that keeps the pieces: the response is joined once,
    so record batches (most of a Fetch answer) are copied once, not three times."""

    write = list.append


class RecordParts:
    """A Fetch partition's record batches, not joined.

    The Fetch writer puts the stored batches into the response as they are,
    so they are copied once, when the connection joins its output; kio's
    writer (the fallback) gets them joined.
    """

    __slots__ = ("parts", "size")

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.size = sum(map(len, parts))

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


def _joined_records(response: Any) -> Any:
    """``response`` with every :class:`RecordParts` joined (for kio's writer)."""
    topics = []
    for topic in response.responses:
        partitions = tuple(
            dataclasses.replace(p, records=bytes(p.records)) if isinstance(p.records, RecordParts) else p
            for p in topic.partitions
        )
        topics.append(dataclasses.replace(topic, partitions=partitions))
    return dataclasses.replace(response, responses=tuple(topics))


def encode_response_parts(response: Any, correlation_id: int) -> list[bytes]:
    """One framed response as pieces to be joined: size, response header, body."""
    cls = type(response)
    parts = _Parts()
    parts.append(b"")  # the size, once known
    parts.append(_size.pack(correlation_id))
    if cls.__flexible__ and cls.__api_key__ != 18:
        parts.append(b"\x00")  # response header v1: empty tagged fields
    fast = _FAST_WRITERS.get(cls.__api_key__)
    if fast is None or not fast(parts, response, cls.__flexible__):
        if cls.__api_key__ == 1:
            response = _joined_records(response)
        _writer(cls)(parts, response)
    parts[0] = _size.pack(sum(map(len, parts)))
    return parts


def encode_response(response: Any, correlation_id: int) -> bytes:
    """One framed response: size, response header, body."""
    return b"".join(encode_response_parts(response, correlation_id))


# ------------------------------------------------------------------ Produce answers
# Every producer waits for these, one per request: kio's generic writer
# (which type-checks each field) took ~40% of a small Produce's CPU.  This
# writes the common answer — no record errors, no leader hints, no node
# endpoints — field for field as kio does for every version (3-12);
# anything else falls back to kio.  tests/unit/test_kafka_produce_encoding.py
# compares the two byte for byte.
_i16 = struct.Struct(">h")
_i32 = struct.Struct(">i")
_i64 = struct.Struct(">q")
_partition_v3 = struct.Struct(">ihqq")
_partition_v5 = struct.Struct(">ihqqq")
_NO_LEADER = (-1, -1)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(text: str, flexible: bool) -> bytes:
    data = text.encode()
    return (_uvarint(len(data) + 1) if flexible else _i16.pack(len(data))) + data


def _millis(moment: Any) -> int:
    if moment is None:
        return -1
    return int(moment.timestamp() * 1000) if isinstance(moment, datetime.datetime) else int(moment)


def _write_produce_response(parts: list[bytes], response: Any, flexible: bool) -> bool:
    version = response.__version__
    if version < 3:
        return False
    if version >= 10 and getattr(response, "node_endpoints", ()):
        return False
    pieces = []
    topics = response.responses
    pieces.append(_uvarint(len(topics) + 1) if flexible else _i32.pack(len(topics)))
    for topic in topics:
        pieces.append(_string(topic.name, flexible))
        partitions = topic.partition_responses
        pieces.append(_uvarint(len(partitions) + 1) if flexible else _i32.pack(len(partitions)))
        for partition in partitions:
            if version >= 8 and (partition.record_errors or partition.error_message is not None):
                return False
            if version >= 10:
                leader = partition.current_leader
                if (leader.leader_id, leader.leader_epoch) != _NO_LEADER:
                    return False
            append_time = _millis(partition.log_append_time)
            if version >= 5:
                pieces.append(_partition_v5.pack(partition.index, partition.error_code, partition.base_offset, append_time, partition.log_start_offset))
            else:
                pieces.append(_partition_v3.pack(partition.index, partition.error_code, partition.base_offset, append_time))
            if version >= 8:
                # no record errors; a null error message
                pieces.append(b"\x01\x00\x00" if flexible else b"\x00\x00\x00\x00\xff\xff")
            elif flexible:
                pieces.append(b"\x00")
        if flexible:
            pieces.append(b"\x00")
    pieces.append(_i32.pack(int(response.throttle_time.total_seconds() * 1000)))
    if flexible:
        pieces.append(b"\x00")
    parts.extend(pieces)
    return True


# ------------------------------------------------------------------ Fetch answers
# The same for Fetch (versions 4-17): consumers poll all the time, and most
# answers carry no aborted-transaction list, leader hints or node endpoints.
_fetch_head_v7 = struct.Struct(">hi")  # error_code, session_id
_partition_v4 = struct.Struct(">ihqq")
_partition_v5_fetch = struct.Struct(">ihqqq")
_aborted = struct.Struct(">qq")
_NO_EPOCH_END = (-1, -1)


def _array_head(count: int, flexible: bool) -> bytes:
    return _uvarint(count + 1) if flexible else _i32.pack(count)


def _write_fetch_response(parts: list[bytes], response: Any, flexible: bool) -> bool:
    version = response.__version__
    if version < 4:
        return False
    if version >= 16 and response.node_endpoints:
        return False
    pieces = [_i32.pack(int(response.throttle_time.total_seconds() * 1000))]
    if version >= 7:
        pieces.append(_fetch_head_v7.pack(response.error_code, response.session_id))
    topics = response.responses
    pieces.append(_array_head(len(topics), flexible))
    for topic in topics:
        if version >= 13:
            if topic.topic_id is None:
                return False
            pieces.append(topic.topic_id.bytes)
        else:
            pieces.append(_string(topic.topic, flexible))
        partitions = topic.partitions
        pieces.append(_array_head(len(partitions), flexible))
        for partition in partitions:
            if version >= 12:
                diverging, leader, snapshot = partition.diverging_epoch, partition.current_leader, partition.snapshot_id
                if (
                    (diverging.epoch, diverging.end_offset) != _NO_EPOCH_END
                    or (leader.leader_id, leader.leader_epoch) != _NO_LEADER
                    or (snapshot.end_offset, snapshot.epoch) != _NO_EPOCH_END
                ):
                    return False
            if version >= 5:
                pieces.append(_partition_v5_fetch.pack(
                    partition.partition_index, partition.error_code, partition.high_watermark,
                    partition.last_stable_offset, partition.log_start_offset,
                ))
            else:
                pieces.append(_partition_v4.pack(
                    partition.partition_index, partition.error_code, partition.high_watermark, partition.last_stable_offset,
                ))
            aborted = partition.aborted_transactions
            if aborted is None:
                pieces.append(b"\x00" if flexible else b"\xff\xff\xff\xff")
            else:
                pieces.append(_array_head(len(aborted), flexible))
                for transaction in aborted:
                    pieces.append(_aborted.pack(transaction.producer_id, transaction.first_offset))
                    if flexible:
                        pieces.append(b"\x00")
            if version >= 11:
                pieces.append(_i32.pack(partition.preferred_read_replica))
            records = partition.records
            if records is None:
                pieces.append(b"\x00" if flexible else b"\xff\xff\xff\xff")
            else:
                pieces.append(_uvarint(len(records) + 1) if flexible else _i32.pack(len(records)))
                if type(records) is RecordParts:
                    pieces.extend(records.parts)
                else:
                    pieces.append(records)
            if flexible:
                pieces.append(b"\x00")
        if flexible:
            pieces.append(b"\x00")
    if flexible:
        pieces.append(b"\x00")
    parts.extend(pieces)
    return True


_FAST_WRITERS = {0: _write_produce_response, 1: _write_fetch_response}


def peek_header(payload: bytes) -> tuple[int, int, int]:
    """api_key, api_version and correlation_id: the first 8 bytes of every request."""
    if len(payload) < 8:
        raise ProtocolError("request shorter than its header")
    return _head.unpack_from(payload, 0)


# ------------------------------------------------------------------ build
@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[tuple[str, Any, Any], ...]:
    hints = typing.get_type_hints(cls)
    result = []
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = field.default_factory()  # type: ignore[misc]
        else:
            default = _NO_DEFAULT
        result.append((field.name, hints[field.name], default))
    return tuple(result)


_NO_DEFAULT = object()


def _zero(kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(kind)
        if type(None) in args:
            return None
        return _zero(args[0])
    if origin is tuple:
        return ()
    if kind is bool:
        return False
    if isinstance(kind, type):
        if issubclass(kind, ErrorCode):
            return ErrorCode.none
        if issubclass(kind, datetime.timedelta):
            return datetime.timedelta(0)
        if issubclass(kind, datetime.datetime):
            return datetime.datetime.fromtimestamp(0, tz=datetime.timezone.utc)
        if issubclass(kind, int):
            return 0
        if issubclass(kind, float):
            return 0.0
        if issubclass(kind, str):
            return ""
        if issubclass(kind, bytes):
            return b""
        if kind is uuid.UUID:
            return uuid.UUID(int=0)
        if dataclasses.is_dataclass(kind):
            return build(kind)
    return None


def _identity(value: Any) -> Any:
    return value


@functools.lru_cache(maxsize=None)
def _converter(kind: Any) -> Any:
    """A function turning a version-neutral value into one of field type ``kind`` (worked out once per type)."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _converter(inner[0]) if len(inner) == 1 else _identity
    if origin is tuple:
        element = _converter(typing.get_args(kind)[0])
        if element is _identity:
            return tuple
        return lambda value: tuple([element(item) for item in value])
    if isinstance(kind, type):
        if dataclasses.is_dataclass(kind):
            return lambda value: build(kind, **value) if isinstance(value, dict) else value
        if issubclass(kind, ErrorCode):
            return lambda value: value if isinstance(value, ErrorCode) else ErrorCode(value)
        if issubclass(kind, datetime.timedelta):
            return lambda value: value if isinstance(value, datetime.timedelta) else datetime.timedelta(milliseconds=value)
    return _identity


def _coerce(kind: Any, value: Any) -> Any:
    return None if value is None else _converter(kind)(value)


@functools.lru_cache(maxsize=None)
def _plan(cls: type) -> tuple[tuple[str, Any, Any, bool], ...]:
    """Per field: name, converter, default, whether the default is a typed zero to compute."""
    plan = []
    for name, kind, default in _fields(cls):
        if default is _NO_DEFAULT:
            plan.append((name, _converter(kind), kind, True))
        else:
            plan.append((name, _converter(kind), default, False))
    return tuple(plan)


def build(cls: type, **values: Any) -> Any:
    """An instance of a kio entity of any version from version-neutral values.

    Fields the version lacks are ignored; fields the caller did not give take
    the schema default or a zero of their type (0, "", (), None when
    nullable, ErrorCode.none).  Nested entities may be given as dicts and
    durations as milliseconds.
    """
    kwargs = {}
    for name, convert, default, zero in _plan(cls):
        if name in values:
            value = values[name]
            kwargs[name] = None if value is None else convert(value)
        elif zero:
            kwargs[name] = _zero(default)
        else:
            kwargs[name] = default
    return cls(**kwargs)


def field_class(cls: type, name: str) -> type:
    """The entity class of a nested field (the element class for arrays)."""
    for field_name, kind, _ in _fields(cls):
        if field_name == name:
            origin = typing.get_origin(kind)
            if origin in (types.UnionType, typing.Union):
                kind = [a for a in typing.get_args(kind) if a is not type(None)][0]
                origin = typing.get_origin(kind)
            if origin is tuple:
                return typing.get_args(kind)[0]
            return kind
    raise KeyError(name)
