"""AMQP fault injection: describe methods for the core's fault rules.

A rule matches a method frame a client sends by ``method`` (``"basic.publish"``,
``"queue.declare"``, ...; any method when omitted), optionally narrowed by
``queue``, ``exchange`` and ``routing_key``, and then:

- ``close_channel``: closes the channel with ``reply_code`` (default 406
  PRECONDITION_FAILED) and ``reply_text``, as RabbitMQ closes a channel on a
  soft error; the method is not carried out.  On channel 0 (connection
  methods) it closes the connection.
- ``close_connection``: ``connection.close`` with ``reply_code`` (default
  320 CONNECTION_FORCED, what RabbitMQ sends when an operator closes a
  connection) and ``reply_text``.
- ``nack``: for ``basic.publish`` only: the message is not routed, and a
  channel in confirm mode gets ``basic.nack`` for it (RabbitMQ nacks when a
  queue could not take a message).
- ``delay``: holds the method ``delay_ms`` milliseconds before carrying it
  out; the connection's later frames wait behind it.
- ``drop``: closes the socket without a word.
- ``observe``: only records the method.
"""

from __future__ import annotations

import re
from typing import Any

from wiregate.core.faults import PROTOCOLS, ProtocolFaults

from . import codec
from .replies import CONNECTION_FORCED, KIND_BY_CODE, PRECONDITION_FAILED

__all__ = ["method_fields", "method_name"]

FAULT_TEXT = "fault injected by wiregate"

_DEFAULT_CODES = {"close_channel": PRECONDITION_FAILED, "close_connection": CONNECTION_FORCED}


def method_name(index: int) -> str:
    """The spec's name of a method (``"basic.publish"``, ``"queue.declare-ok"``, as the trace names
    them); ``"60.40"``-style for unknown ones."""
    cls = codec.method_class(index)
    if cls is None:
        return f"{index >> 16}.{index & 0xFFFF}"
    class_name, _, method = cls.name.partition(".")
    return f"{class_name.lower()}.{re.sub(r'(?<!^)(?=[A-Z])', '-', method).lower()}"


#: the spec's names, found also without hyphens (pamqp's spelling: "queue.declareok")
_KNOWN_METHODS = {name.replace("-", ""): name for name in (method_name(index) for index in codec._FIELDS)}


def _normalize(spec: dict[str, Any]) -> None:
    method = spec.get("method")
    if method is not None:
        canonical = _KNOWN_METHODS.get(method.lower().replace("-", "")) if isinstance(method, str) else None
        if canonical is None:
            raise ValueError(f"unknown AMQP method {method!r} (e.g. 'basic.publish', 'queue.declare')")
        spec["method"] = canonical
    for key in ("queue", "exchange", "routing_key"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise ValueError(f"{key} must be a string")
    action = spec["action"]
    if action in _DEFAULT_CODES:
        code = spec.setdefault("reply_code", _DEFAULT_CODES[action])
        if not isinstance(code, int) or isinstance(code, bool) or code not in KIND_BY_CODE:
            raise ValueError(f"reply_code must be an AMQP reply code ({', '.join(map(str, sorted(KIND_BY_CODE)))})")
        text = spec.setdefault("reply_text", FAULT_TEXT)
        if not isinstance(text, str) or len(text.encode()) > 200:
            raise ValueError("reply_text must be a string of at most 200 bytes")
    if action == "nack" and spec.get("method", "basic.publish") != "basic.publish":
        raise ValueError("nack applies to basic.publish only")
    if action == "nack":
        spec["method"] = "basic.publish"
    if action == "delay":
        delay = spec.get("delay_ms")
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay <= 0:
            raise ValueError("a delay rule needs delay_ms > 0")


PROTOCOLS["amqp"] = ProtocolFaults(
    match_keys=("method", "queue", "exchange", "routing_key"),
    actions={
        "close_channel": ("reply_code", "reply_text"),
        "close_connection": ("reply_code", "reply_text"),
        "nack": (),
        "delay": ("delay_ms",),
        "drop": (),
        "observe": (),
    },
    normalize=_normalize,
)


def method_fields(index: int, channel: int, payload: bytes, vhost: str | None) -> dict[str, Any]:
    """What a fault rule can match in one method frame.

    Returns:
        ``{"method", "channel", "vhost"}`` plus ``queue``, ``exchange`` and
        ``routing_key`` when the method has them (arguments that do not
        decode are left out: the method itself will fail properly).
    """
    fields: dict[str, Any] = {"method": method_name(index), "channel": channel, "vhost": vhost}
    if codec.method_class(index) is None:
        return fields
    try:
        frame = codec.decode_method(index, payload)
    except (codec.DecodeError, IndexError, ValueError):
        return fields
    for key in ("queue", "exchange", "routing_key"):
        value = getattr(frame, key, None)
        if isinstance(value, str):
            fields[key] = value
    return fields
