"""Array counts (and nulls) are checked before kio sees a request.

kio's native reader reserves room for an array's elements from the count on
the wire before reading any of them (``Vec::with_capacity``): a compact array
claiming ~4 billion elements in a 20-byte request asks for 32 GB, the Rust
allocator aborts, and the whole server process dies — found by the fuzzer
(tests/fuzz/kafka.py).  So every request body is walked first, using the
same schema (the kio entity classes and their ``kafka_type`` metadata),
without building anything: each array count must fit in the bytes left
(every element takes at least one byte), or the request is refused as
undecodable — Kafka closes the connection on such a request too.  The walk
also refuses a null where the schema has no null (an array, string or bytes
field that is not nullable in that version): kio returns None there, which
the handlers would trip over; Kafka's parser refuses it.

The walk only reads lengths and counts and skips over everything else, so
it costs a fraction of the decode it protects.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import types
import typing
from collections.abc import Callable
from typing import Any

_i16 = struct.Struct(">h")
_i32 = struct.Struct(">i")

#: ``(payload, position, end) -> new position``; raises BadLengths
Skipper = Callable[[bytes, int, int], int]

_FIXED = {
    "int8": 1, "uint8": 1, "bool": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "int64": 8, "uint64": 8, "float64": 8, "uuid": 16, "timedelta_i32": 4, "timedelta_i64": 8,
    "datetime_i64": 8, "error_code": 2,
}


class BadLengths(ValueError):
    """A count or length in the request does not fit in its bytes."""


def check(cls: type, payload: bytes, pos: int) -> None:
    """Walk the body of ``cls`` (a kio request entity) starting at ``pos``.

    Raises:
        BadLengths: an array count, string or bytes length runs past the end.
    """
    _skipper(cls)(payload, pos, len(payload))


def _uvarint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise BadLengths("varint runs past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 35:
            raise BadLengths("varint too long")


def _fixed(size: int) -> Skipper:
    def skip(data: bytes, pos: int, end: int) -> int:
        pos += size
        if pos > end:
            raise BadLengths("field runs past the end")
        return pos

    return skip


def _compact_bytes(nullable: bool) -> Skipper:
    def skip(data: bytes, pos: int, end: int) -> int:
        length, pos = _uvarint(data, pos, end)
        if length == 0 and not nullable:
            raise BadLengths("non-nullable field serialized as null")
        pos += max(length - 1, 0)
        if pos > end:
            raise BadLengths("compact string runs past the end")
        return pos

    return skip


def _legacy_sized(prefix: struct.Struct, nullable: bool) -> Skipper:
    width = prefix.size

    def skip(data: bytes, pos: int, end: int) -> int:
        if pos + width > end:
            raise BadLengths("length runs past the end")
        length = prefix.unpack_from(data, pos)[0]
        if length < 0 and not nullable:
            raise BadLengths("non-nullable field serialized as null")
        pos += width + max(length, 0)
        if pos > end:
            raise BadLengths("string or bytes run past the end")
        return pos

    return skip


def _primitive(kafka_type: str, flexible: bool, nullable: bool = True) -> Skipper:
    if kafka_type in _FIXED:
        return _fixed(_FIXED[kafka_type])
    if kafka_type in ("string", "bytes", "records"):
        if flexible:
            return _compact_bytes(nullable)
        return _legacy_sized(_i16 if kafka_type == "string" else _i32, nullable)
    raise LookupError(kafka_type)


def _array(element: Skipper, flexible: bool, size: int | None = None, nullable: bool = True) -> Skipper:
    """An array of ``element``; ``size`` when every element has that fixed size.

    A non-nullable array sent as null is refused (Kafka's parser refuses it:
    kio would hand the handler a None where it expects a tuple).
    """

    def skip(data: bytes, pos: int, end: int) -> int:
        if flexible:
            if pos < end and data[pos] < 0x80:
                count = data[pos] - 1
                pos += 1
            else:
                count, pos = _uvarint(data, pos, end)
                count -= 1
        else:
            if pos + 4 > end:
                raise BadLengths("array count runs past the end")
            count = _i32.unpack_from(data, pos)[0]
            pos += 4
        if count <= 0:
            if count < 0 and not nullable:
                raise BadLengths("non-nullable array serialized as null")
            return pos
        if count > end - pos:
            raise BadLengths(f"array of {count} elements in {end - pos} bytes")
        if size is not None:
            return pos + count * size
        for _ in range(count):
            pos = element(data, pos, end)
        return pos

    return skip


def _flexible_fixed_array(size: int, tagged: Skipper, nullable: bool) -> Skipper:
    """A compact array of flexible entities whose fields are all fixed-size (e.g. Fetch's partitions)."""

    def skip(data: bytes, pos: int, end: int) -> int:
        if pos < end and data[pos] < 0x80:
            count = data[pos] - 1
            pos += 1
        else:
            count, pos = _uvarint(data, pos, end)
            count -= 1
        if count <= 0:
            if count < 0 and not nullable:
                raise BadLengths("non-nullable array serialized as null")
            return pos
        if count > end - pos:
            raise BadLengths(f"array of {count} elements in {end - pos} bytes")
        for _ in range(count):
            pos += size
            if pos >= end:
                raise BadLengths("struct runs past the end")
            if data[pos] == 0:
                pos += 1
            else:
                pos = tagged(data, pos, end)
        return pos

    return skip


def _nullable_entity(inner: Skipper) -> Skipper:
    def skip(data: bytes, pos: int, end: int) -> int:
        if pos >= end:
            raise BadLengths("struct marker runs past the end")
        marker = data[pos]
        pos += 1
        return pos if marker == 0xFF else inner(data, pos, end)

    return skip


def _inner_type(kind: Any) -> tuple[Any, bool]:
    """(type without None, optional)."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return args[0], True
    return kind, False


def _fixed_size(field: dataclasses.Field) -> int | None:
    kind, _optional = _inner_type(field.type)
    if typing.get_origin(kind) is tuple or dataclasses.is_dataclass(kind):
        return None
    return _FIXED.get(field.metadata.get("kafka_type", ""))


def _field_skipper(field: dataclasses.Field, flexible: bool) -> Skipper:
    kind, optional = _inner_type(field.type)
    # tagged fields are optional by their presence: kio reads them leniently
    nullable = optional or "tag" in field.metadata
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        if dataclasses.is_dataclass(element):
            prefix = _flexible_prefix(element)
            if prefix is not None and flexible:
                return _flexible_fixed_array(prefix, _tagged(_tagged_fields(element)), nullable)
            return _array(_skipper(element), flexible, _entity_size(element), nullable)
        kafka_type = field.metadata["kafka_type"]
        return _array(_primitive(kafka_type, flexible, False), flexible, _FIXED.get(kafka_type), nullable)
    if dataclasses.is_dataclass(kind):
        inner = _skipper(kind)
        return _nullable_entity(inner) if optional else inner
    return _primitive(field.metadata["kafka_type"], flexible, nullable)


@functools.lru_cache(maxsize=None)
def _entity_size(cls: type) -> int | None:
    """The encoded size of a non-flexible entity made only of fixed-size fields."""
    if getattr(cls, "__flexible__", False):
        return None
    total = 0
    for field in dataclasses.fields(cls):
        size = _fixed_size(field)
        if size is None:
            return None
        total += size
    return total


@functools.lru_cache(maxsize=None)
def _flexible_prefix(cls: type) -> int | None:
    """For a flexible entity whose untagged fields are all fixed-size: their total size."""
    if not getattr(cls, "__flexible__", False):
        return None
    total = 0
    for field in dataclasses.fields(cls):
        if "tag" in field.metadata:
            continue
        size = _fixed_size(field)
        if size is None:
            return None
        total += size
    return total


def _tagged_fields(cls: type) -> dict[int, Skipper]:
    return {field.metadata["tag"]: _field_skipper(field, True) for field in dataclasses.fields(cls) if "tag" in field.metadata}


def _tagged(tagged: dict[int, Skipper]) -> Skipper:
    def skip(data: bytes, pos: int, end: int) -> int:
        count, pos = _uvarint(data, pos, end)
        if count > end - pos:
            raise BadLengths(f"{count} tagged fields in {end - pos} bytes")
        for _ in range(count):
            tag, pos = _uvarint(data, pos, end)
            size, pos = _uvarint(data, pos, end)
            stop = pos + size
            if stop > end:
                raise BadLengths("tagged field runs past the end")
            known = tagged.get(tag)
            if known is not None:
                known(data, pos, stop)
            pos = stop
        return pos

    return skip


@functools.lru_cache(maxsize=None)
def _skipper(cls: type) -> Skipper:
    """A function skipping one encoded ``cls``, generated from its fields.

    Consecutive fixed-size fields become one addition; the tagged-field
    section of a flexible entity is one byte check when empty (the usual
    case).
    """
    flexible = bool(getattr(cls, "__flexible__", False))
    env: dict[str, Any] = {"BadLengths": BadLengths}
    lines = ["def skip(data, pos, end):"]
    fixed = 0
    tagged: dict[int, Skipper] = {}
    for n, field in enumerate(dataclasses.fields(cls)):
        if "tag" in field.metadata:
            tagged[field.metadata["tag"]] = _field_skipper(field, flexible)
            continue
        size = _fixed_size(field)
        if size is not None:
            fixed += size
            continue
        if fixed:
            lines.append(f"    pos += {fixed}")
            fixed = 0
        env[f"s{n}"] = _field_skipper(field, flexible)
        lines.append(f"    pos = s{n}(data, pos, end)")
    if fixed:
        lines.append(f"    pos += {fixed}")
    if flexible:
        env["tagged"] = _tagged(tagged)
        lines.append("    if pos >= end: raise BadLengths('tagged fields run past the end')")
        lines.append("    if data[pos] == 0: return pos + 1")
        lines.append("    return tagged(data, pos, end)")
    else:
        lines.append("    if pos > end: raise BadLengths('struct runs past the end')")
        lines.append("    return pos")
    exec("\n".join(lines), env)  # noqa: S102 - code generated from the schema, no input in it
    return env["skip"]
