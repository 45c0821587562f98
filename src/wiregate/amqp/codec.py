"""Decoding of client methods and field tables, keeping wire types.

pamqp describes every method (its fields and their domains); we use those
descriptions but decode ourselves, for two reasons: field-table values must
remember their wire type (RabbitMQ names it in error texts — "Invalid
x-match field type byte" — and compares header values by type class), and
a single pass over a memoryview avoids pamqp's repeated slicing.
"""

from __future__ import annotations

import datetime
import decimal
import struct
from typing import Any

from pamqp import commands

from wiregate.core.values import (
    Binary,
    Byte,
    Double,
    Float,
    Long,
    Short,
    SignedInt,
    UnsignedByte,
    UnsignedInt,
    UnsignedShort,
)


class DecodeError(ValueError):
    """The bytes do not form a valid method or table."""


class Timestamp(int):
    """A 'T' value too large for ``datetime`` (seconds after year 9999); encoded back as 'T'."""

    type_name = "timestamp"


_s8 = struct.Struct(">b")
_u8 = struct.Struct(">B")
_s16 = struct.Struct(">h")
_u16 = struct.Struct(">H")
_s32 = struct.Struct(">i")
_u32 = struct.Struct(">I")
_s64 = struct.Struct(">q")
_u64 = struct.Struct(">Q")
_f32 = struct.Struct(">f")
_f64 = struct.Struct(">d")


def _longstr_value(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def decode_value(data: bytes, pos: int) -> tuple[Any, int]:
    """Decode one typed field value at ``pos``; returns (value, new position)."""
    kind = data[pos]
    pos += 1
    if kind == 0x53:  # 'S'
        n = _u32.unpack_from(data, pos)[0]
        end = pos + 4 + n
        if end > len(data):
            raise DecodeError("long string exceeds the data")
        return _longstr_value(bytes(data[pos + 4 : end])), end
    if kind == 0x49:  # 'I'
        return SignedInt(_s32.unpack_from(data, pos)[0]), pos + 4
    if kind == 0x74:  # 't'
        return bool(data[pos]), pos + 1
    if kind == 0x62:  # 'b'
        return Byte(_s8.unpack_from(data, pos)[0]), pos + 1
    if kind == 0x42:  # 'B'
        return UnsignedByte(data[pos]), pos + 1
    if kind == 0x73:  # 's'
        return Short(_s16.unpack_from(data, pos)[0]), pos + 2
    if kind == 0x75:  # 'u'
        return UnsignedShort(_u16.unpack_from(data, pos)[0]), pos + 2
    if kind == 0x69:  # 'i'
        return UnsignedInt(_u32.unpack_from(data, pos)[0]), pos + 4
    if kind == 0x6C:  # 'l'
        return Long(_s64.unpack_from(data, pos)[0]), pos + 8
    if kind == 0x66:  # 'f'
        return Float(_f32.unpack_from(data, pos)[0]), pos + 4
    if kind == 0x64:  # 'd'
        return Double(_f64.unpack_from(data, pos)[0]), pos + 8
    if kind == 0x44:  # 'D'
        scale = data[pos]
        unscaled = _s32.unpack_from(data, pos + 1)[0]
        return decimal.Decimal(unscaled).scaleb(-scale), pos + 5
    if kind == 0x54:  # 'T'
        seconds = _u64.unpack_from(data, pos)[0]
        try:
            return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc), pos + 8
        except (OverflowError, OSError, ValueError):
            # past year 9999: RabbitMQ keeps any 64-bit value, so do we
            return Timestamp(seconds), pos + 8
    if kind == 0x46:  # 'F'
        return decode_table(data, pos)
    if kind == 0x41:  # 'A'
        n = _u32.unpack_from(data, pos)[0]
        pos += 4
        end = pos + n
        if end > len(data):
            raise DecodeError("array exceeds the data")
        items = []
        while pos < end:
            value, pos = decode_value(data, pos)
            items.append(value)
        if pos != end:
            raise DecodeError("array length mismatch")
        return items, end
    if kind == 0x78:  # 'x'
        n = _u32.unpack_from(data, pos)[0]
        end = pos + 4 + n
        if end > len(data):
            raise DecodeError("byte array exceeds the data")
        return Binary(data[pos + 4 : end]), end
    if kind == 0x56:  # 'V'
        return None, pos
    raise DecodeError(f"unknown field type {chr(kind)!r}")


def decode_table(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    """Decode a field table at ``pos``; returns (table, new position)."""
    n = _u32.unpack_from(data, pos)[0]
    pos += 4
    end = pos + n
    if end > len(data):
        raise DecodeError("table exceeds the data")
    table: dict[str, Any] = {}
    while pos < end:
        klen = data[pos]
        key = bytes(data[pos + 1 : pos + 1 + klen]).decode("utf-8", "replace")
        pos += 1 + klen
        table[key], pos = decode_value(data, pos)
    if pos != end:
        raise DecodeError("table length mismatch")
    return table, end


def _field_types(cls: type) -> list[tuple[str, str]]:
    return [(name, cls.amqp_type(name)) for name in cls.__slots__]


_FIELDS: dict[int, tuple[type, list[tuple[str, str]]]] = {
    cls.index: (cls, _field_types(cls))
    for cls in commands.INDEX_MAPPING.values()
}


def method_class(method_index: int) -> type | None:
    entry = _FIELDS.get(method_index)
    return entry[0] if entry else None


def decode_method(method_index: int, payload: bytes) -> Any:
    """Decode a method frame's payload (starting with its 4-byte index).

    Returns a pamqp command instance whose table fields hold typed values.

    Raises:
        KeyError: unknown method index.
        DecodeError: malformed arguments.
    """
    cls, fields = _FIELDS[method_index]
    frame = cls.__new__(cls)
    pos = 4
    bit = 8
    bits = 0
    data = payload
    try:
        for name, kind in fields:
            if kind == "bit":
                if bit == 8:
                    bits = data[pos]
                    pos += 1
                    bit = 0
                value: Any = bool(bits & (1 << bit))
                bit += 1
            else:
                bit = 8
                if kind == "shortstr":
                    n = data[pos]
                    end = pos + 1 + n
                    if end > len(data):
                        raise DecodeError("short string exceeds the data")
                    value = bytes(data[pos + 1 : end]).decode("utf-8")
                    pos = end
                elif kind == "short":
                    value = _u16.unpack_from(data, pos)[0]
                    pos += 2
                elif kind == "long":
                    value = _u32.unpack_from(data, pos)[0]
                    pos += 4
                elif kind == "longlong":
                    value = _u64.unpack_from(data, pos)[0]
                    pos += 8
                elif kind == "octet":
                    value = data[pos]
                    pos += 1
                elif kind == "table":
                    value, pos = decode_table(data, pos)
                elif kind == "longstr":
                    n = _u32.unpack_from(data, pos)[0]
                    end = pos + 4 + n
                    if end > len(data):
                        raise DecodeError("long string exceeds the data")
                    value = _longstr_value(bytes(data[pos + 4 : end]))
                    pos = end
                elif kind == "timestamp":
                    value = _u64.unpack_from(data, pos)[0]
                    pos += 8
                else:
                    raise DecodeError(f"unsupported domain {kind}")
            setattr(frame, name, value)
    except (IndexError, struct.error, UnicodeDecodeError) as error:
        raise DecodeError(str(error)) from None
    return frame


_ERL_ESCAPES = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v", 0x08: "\\b", 0x0C: "\\f", 0x1B: "\\e", 0x22: '\\"', 0x5C: "\\\\"}


# ---------------------------------------------------------------- encoding
_CODE_BY_TYPE_NAME = {
    "byte": (b"b", _s8),
    "unsignedbyte": (b"B", _u8),
    "short": (b"s", _s16),
    "unsignedshort": (b"u", _u16),
    "signedint": (b"I", _s32),
    "unsignedint": (b"i", _u32),
    "long": (b"l", _s64),
    "float": (b"f", _f32),
    "double": (b"d", _f64),
    "timestamp": (b"T", _u64),
}


def encode_value(value: Any) -> bytes:
    """One typed field value; a value decoded here is re-encoded with its own type."""
    type_name = getattr(value, "type_name", None)
    if type_name in _CODE_BY_TYPE_NAME:
        code, packer = _CODE_BY_TYPE_NAME[type_name]
        return code + packer.pack(value)
    if type_name == "binary":
        return b"x" + _u32.pack(len(value)) + bytes(value)
    if isinstance(value, bool):
        return b"t" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return b"I" + _s32.pack(value)
        return b"l" + _s64.pack(value)
    if isinstance(value, float):
        return b"d" + _f64.pack(value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return b"S" + _u32.pack(len(data)) + data
    if isinstance(value, (bytes, bytearray)):
        return b"S" + _u32.pack(len(value)) + bytes(value)
    if isinstance(value, dict):
        return b"F" + encode_table(value)
    if isinstance(value, (list, tuple)):
        body = b"".join(encode_value(v) for v in value)
        return b"A" + _u32.pack(len(body)) + body
    if value is None:
        return b"V"
    if isinstance(value, datetime.datetime):
        return b"T" + _u64.pack(int(value.timestamp()))
    if isinstance(value, decimal.Decimal):
        sign, digits, exponent = value.as_tuple()
        scale = max(0, -int(exponent))
        unscaled = int(value.scaleb(scale))
        return b"D" + _u8.pack(scale) + _s32.pack(unscaled)
    raise TypeError(f"cannot encode {type(value).__name__} in a field table")


def encode_table(table: dict[str, Any]) -> bytes:
    """A field table, keys in the dict's order."""
    parts = []
    for key, value in table.items():
        data = key.encode("utf-8")
        parts.append(_u8.pack(len(data)) + data + encode_value(value))
    body = b"".join(parts)
    return _u32.pack(len(body)) + body


def erlang_binary(data: bytes) -> str:
    """Bytes as Erlang's ~p prints a binary: ``<<"text">>`` when printable, else ``<<0,20,0,40>>``."""
    data = bytes(data)
    if data and all(32 <= b <= 126 or 160 <= b <= 255 or b in _ERL_ESCAPES for b in data):
        return '<<"' + "".join(_ERL_ESCAPES.get(b, chr(b)) for b in data) + '">>'
    return "<<" + ",".join(str(b) for b in data) + ">>"
