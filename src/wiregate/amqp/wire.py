"""AMQP 0-9-1 frame layout and the encoders for server-to-client methods.

Client-to-server methods are decoded with pamqp (plus a hand-written fast
path for basic.publish and basic.ack, see ``connection.py``).  Replies are
encoded here with plain struct packing: pamqp validates names on marshal
against the spec's grammar, which RabbitMQ itself does not enforce, so a
queue RabbitMQ accepts could not be echoed back through pamqp.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import encode as _pamqp_encode

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
FRAME_HEADER_SIZE = 7
#: header (7) plus frame-end (1): what a frame costs beyond its payload
FRAME_OVERHEAD = 8
FRAME_MIN_SIZE = 4096

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

_frame_head = struct.Struct(">BHI")
_method_head = struct.Struct(">BHII")
_content_head = struct.Struct(">BHIHHQ")
_u8 = struct.Struct(">B")
_u16 = struct.Struct(">H")
_u32 = struct.Struct(">I")
_u64 = struct.Struct(">Q")
_deliver_tail = struct.Struct(">QB")

HEARTBEAT_FRAME = _frame_head.pack(FRAME_HEARTBEAT, 0, 0) + FRAME_END_BYTE


def index(class_id: int, method_id: int) -> int:
    return (class_id << 16) | method_id


def shortstr(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) > 255:
        data = data[:255]
    return _u8.pack(len(data)) + data


def longstr(value: str | bytes) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _u32.pack(len(data)) + data


def table(value: dict[str, Any] | None) -> bytes:
    return _pamqp_encode.field_table(value or {})


def method(channel: int, method_index: int, args: bytes = b"") -> bytes:
    """One complete method frame."""
    return _method_head.pack(FRAME_METHOD, channel, 4 + len(args), method_index) + args + FRAME_END_BYTE


def content(channel: int, body_size: int, properties: bytes, body: bytes, frame_max: int) -> list[bytes]:
    """The content header frame and body frames of one message."""
    parts = [
        _content_head.pack(FRAME_HEADER, channel, 12 + len(properties), 60, 0, body_size),
        properties,
        FRAME_END_BYTE,
    ]
    if body_size:
        chunk = frame_max - FRAME_OVERHEAD
        if body_size <= chunk:
            parts += (_frame_head.pack(FRAME_BODY, channel, body_size), body, FRAME_END_BYTE)
        else:
            view = memoryview(body)
            for start in range(0, body_size, chunk):
                piece = view[start : start + chunk]
                parts += (_frame_head.pack(FRAME_BODY, channel, len(piece)), piece, FRAME_END_BYTE)
    return parts


# ---------------------------------------------------------------- methods
CONNECTION_START = index(10, 10)
CONNECTION_START_OK = index(10, 11)
CONNECTION_SECURE_OK = index(10, 21)
CONNECTION_TUNE = index(10, 30)
CONNECTION_TUNE_OK = index(10, 31)
CONNECTION_OPEN = index(10, 40)
CONNECTION_OPEN_OK = index(10, 41)
CONNECTION_CLOSE = index(10, 50)
CONNECTION_CLOSE_OK = index(10, 51)
CONNECTION_BLOCKED = index(10, 60)
CONNECTION_UNBLOCKED = index(10, 61)
CONNECTION_UPDATE_SECRET = index(10, 70)
CONNECTION_UPDATE_SECRET_OK = index(10, 71)
CHANNEL_OPEN = index(20, 10)
CHANNEL_OPEN_OK = index(20, 11)
CHANNEL_FLOW = index(20, 20)
CHANNEL_FLOW_OK = index(20, 21)
CHANNEL_CLOSE = index(20, 40)
CHANNEL_CLOSE_OK = index(20, 41)
EXCHANGE_DECLARE_OK = index(40, 11)
EXCHANGE_DELETE_OK = index(40, 21)
EXCHANGE_BIND_OK = index(40, 31)
EXCHANGE_UNBIND_OK = index(40, 51)
QUEUE_DECLARE_OK = index(50, 11)
QUEUE_BIND_OK = index(50, 21)
QUEUE_PURGE_OK = index(50, 31)
QUEUE_DELETE_OK = index(50, 41)
QUEUE_UNBIND_OK = index(50, 51)
BASIC_QOS_OK = index(60, 11)
BASIC_CONSUME_OK = index(60, 21)
BASIC_CANCEL = index(60, 30)
BASIC_CANCEL_OK = index(60, 31)
BASIC_PUBLISH = index(60, 40)
BASIC_RETURN = index(60, 50)
BASIC_DELIVER = index(60, 60)
BASIC_GET_OK = index(60, 71)
BASIC_GET_EMPTY = index(60, 72)
BASIC_ACK = index(60, 80)
BASIC_RECOVER_OK = index(60, 111)
BASIC_NACK = index(60, 120)
TX_SELECT_OK = index(90, 11)
TX_COMMIT_OK = index(90, 21)
TX_ROLLBACK_OK = index(90, 31)
CONFIRM_SELECT_OK = index(85, 11)


def connection_start(server_properties: dict[str, Any], mechanisms: str, locales: str) -> bytes:
    return method(0, CONNECTION_START, b"\x00\x09" + table(server_properties) + longstr(mechanisms) + longstr(locales))


def connection_tune(channel_max: int, frame_max: int, heartbeat: int) -> bytes:
    return method(0, CONNECTION_TUNE, struct.pack(">HIH", channel_max, frame_max, heartbeat))


def reply_text(text: str) -> bytes:
    """A reply text as RabbitMQ sends it: cut to 252 bytes plus "..." when too long."""
    data = text.encode("utf-8")
    if len(data) > 255:
        data = data[:252] + b"..."
    return shortstr(data)


def close(channel: int, reply_code: int, text: str, failing_index: int) -> bytes:
    close_index = CONNECTION_CLOSE if channel == 0 else CHANNEL_CLOSE
    args = _u16.pack(reply_code) + reply_text(text) + struct.pack(">HH", failing_index >> 16, failing_index & 0xFFFF)
    return method(channel, close_index, args)


def queue_declare_ok(channel: int, name: str, message_count: int, consumer_count: int) -> bytes:
    return method(channel, QUEUE_DECLARE_OK, shortstr(name) + struct.pack(">II", message_count, consumer_count))


def count_reply(channel: int, method_index: int, count: int) -> bytes:
    return method(channel, method_index, _u32.pack(count))


def tag_reply(channel: int, method_index: int, tag: str) -> bytes:
    return method(channel, method_index, shortstr(tag))


def basic_cancel(channel: int, tag: str) -> bytes:
    return method(channel, BASIC_CANCEL, shortstr(tag) + b"\x01")


def basic_return_head(channel: int, code: int, text: str, exchange: str, routing_key: str) -> bytes:
    return method(channel, BASIC_RETURN, _u16.pack(code) + shortstr(text) + shortstr(exchange) + shortstr(routing_key))


def basic_deliver_head(channel: int, tag_frame: bytes, delivery_tag: int, redelivered: bool, exchange_rk: bytes) -> bytes:
    """basic.deliver, with the consumer tag and exchange/routing key pre-encoded."""
    args = tag_frame + _deliver_tail.pack(delivery_tag, 1 if redelivered else 0) + exchange_rk
    return _method_head.pack(FRAME_METHOD, channel, 4 + len(args), BASIC_DELIVER) + args + FRAME_END_BYTE


def deliver_prefix(channel: int, tag_frame: bytes, exchange_rk: bytes) -> bytes:
    """basic.deliver up to its delivery tag: frame head, method index and
    consumer tag (the frame size counts the tag, redelivered flag and
    exchange/routing key that follow)."""
    size = 4 + len(tag_frame) + _deliver_tail.size + len(exchange_rk)
    return _method_head.pack(FRAME_METHOD, channel, size, BASIC_DELIVER) + tag_frame


def basic_get_ok_head(channel: int, delivery_tag: int, redelivered: bool, exchange: str, routing_key: str, message_count: int) -> bytes:
    args = _deliver_tail.pack(delivery_tag, 1 if redelivered else 0) + shortstr(exchange) + shortstr(routing_key) + _u32.pack(message_count)
    return method(channel, BASIC_GET_OK, args)


def basic_get_empty(channel: int) -> bytes:
    return method(channel, BASIC_GET_EMPTY, b"\x00")


def basic_ack(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    return method(channel, BASIC_ACK, _deliver_tail.pack(delivery_tag, 1 if multiple else 0))


def basic_nack(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    return method(channel, BASIC_NACK, _deliver_tail.pack(delivery_tag, 1 if multiple else 0))
