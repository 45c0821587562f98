"""Argument values as RabbitMQ names and prints them in error texts."""

from __future__ import annotations

from typing import Any


# Values that remember RabbitMQ's name for their wire type.  A protocol
# decoder produces them so that error texts can name the type ("invalid
# type 'signedint'"), matching can compare type classes, and re-encoding
# keeps every value's original width.
class Byte(int):
    type_name = "byte"


class UnsignedByte(int):
    type_name = "unsignedbyte"


class Short(int):
    type_name = "short"


class UnsignedShort(int):
    type_name = "unsignedshort"


class SignedInt(int):
    type_name = "signedint"


class UnsignedInt(int):
    type_name = "unsignedint"


class Long(int):
    type_name = "long"


class Float(float):
    type_name = "float"


class Double(float):
    type_name = "double"


class Binary(bytes):
    type_name = "binary"


def value_type_name(value: Any) -> str:
    """RabbitMQ's name for the wire type of an argument value.

    A protocol layer that knows the exact wire type attaches it as a
    ``type_name`` attribute; otherwise it is inferred from the Python type.
    """
    name = getattr(value, "type_name", None)
    if name:
        return name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long" if not -(2**31) <= value < 2**31 else "signedint"
    if isinstance(value, float):
        return "double"
    if isinstance(value, (str, bytes)):
        return "longstr"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "void"
    return type(value).__name__


def _type_class(name: str) -> str:
    if name in ("byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort", "unsignedint"):
        return "int"
    if name in ("float", "double"):
        return "float"
    return name


def _erl_format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _describe_arg(value: Any) -> str:
    if value is _MISSING:
        return "none"
    return f"the value '{_erl_format(value)}' of type '{value_type_name(value)}'"


_MISSING = object()


def type_name(value: Any) -> str:
    """Alias of :func:`value_type_name`."""
    return value_type_name(value)


def erlang_term(value: Any) -> str:
    """A value as Erlang's ``~p`` prints it: binaries as ``<<"text">>``."""
    if isinstance(value, (str, bytes, bytearray)):
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        if all(32 <= b <= 126 for b in data):
            escaped = data.decode("ascii").replace("\\", "\\\\").replace('"', '\\"')
            return f'<<"{escaped}">>'
        return "<<" + ",".join(str(b) for b in data) + ">>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
