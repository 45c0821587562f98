"""AMQP 0-9-1 fuzzing: protocol-aware sessions, mutated, against the sans-IO connection.

A session is a valid handshake (header, start-ok, tune-ok, open, channel
opens) followed by method frames of every method pamqp knows, their fields
drawn from the codec's field types (names from small pools so that
declarations, bindings, consumers and acks meet each other; tables full of
the ``x-`` arguments RabbitMQ validates, with every field-table type),
publishes with content headers (random property blocks) and bodies.  Then
the frame list is mutated: bit flips, truncation, length lies, channel and
type changes, dropped/duplicated/swapped frames, garbage frames, content
header/body size mismatches; sometimes the handshake itself is hit.

:func:`run_case` feeds one session (in random chunks) to an
``AMQPConnection`` and :func:`check` states the invariants; the oracle
reads the server's output frame by frame.
"""

from __future__ import annotations

import random
import struct
import time
from typing import Any

from pamqp import commands
from pamqp import frame as pamqp_frame

from wiregate.amqp import AMQPConnection
from wiregate.amqp import codec
from wiregate.core import Broker

from .common import Failure, chunks, mutate_bytes, pick_int

HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"
_frame_head = struct.Struct(">BHI")

#: reply codes a connection.close may carry for hostile input (541 = crash)
CONNECTION_CODES = frozenset({403, 501, 502, 503, 504, 505, 506, 530, 540})
#: reply codes a channel.close may carry
CHANNEL_CODES = frozenset({311, 312, 313, 403, 404, 405, 406})

CONNECTION_CLOSE = (10 << 16) | 50
CONNECTION_CLOSE_OK = (10 << 16) | 51
CONNECTION_OPEN_OK = (10 << 16) | 41
CHANNEL_CLOSE = (20 << 16) | 40
CHANNEL_CLOSE_OK = (20 << 16) | 41

QUEUES = ("q0", "q1", "q2", "dlq", "s0", "qq0", "", "amq.gen-x", "amq.rabbitmq.reply-to", "amq.rabbitmq.reply-to.a.b", "\u00e9" * 127)
EXCHANGES = ("", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "x0", "x1", "xd", "amq.x", "nope")
ROUTING_KEYS = ("", "q0", "q1", "a.b.c", "#", "*.b.*", "a.#", "#.#", "*", "dlq", "a..b")
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers", "x-delayed-message", "x-consistent-hash", "", "DIRECT")
TAGS = ("", "c0", "c1", "amq.ctag-x")
VHOSTS = ("/", "/", "/", "", "nope")

QUEUE_ARGUMENTS = (
    "x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-overflow", "x-dead-letter-exchange",
    "x-dead-letter-routing-key", "x-max-priority", "x-queue-type", "x-queue-mode", "x-single-active-consumer",
    "x-delivery-limit", "x-max-age", "x-stream-max-segment-size-bytes", "x-queue-master-locator",
    "x-max-in-memory-length", "x-dead-letter-strategy", "x-quorum-initial-group-size", "x-initial-cluster-size",
)
EXCHANGE_ARGUMENTS = ("alternate-exchange", "x-delayed-type", "x-match")
CONSUME_ARGUMENTS = ("x-priority", "x-stream-offset", "x-cancel-on-ha-failover", "x-credit")
BIND_ARGUMENTS = ("x-match", "k", "x-k", "CC")
STRING_VALUES = ("classic", "quorum", "stream", "lazy", "default", "drop-head", "reject-publish", "reject-publish-dlx",
                 "all", "any", "all-with-x", "any-with-x", "first", "last", "next", "1h", "7D", "x0", "dlq", "", "direct", "topic")


def method_indices() -> dict[int, list[int]]:
    """Every method index pamqp knows, by class id."""
    by_class: dict[int, list[int]] = {}
    for index in codec._FIELDS:
        by_class.setdefault(index >> 16, []).append(index)
    return by_class


_BY_CLASS = method_indices()
_CHANNEL_LEVEL = [index for class_id in (20, 40, 50, 60, 85, 90) for index in _BY_CLASS.get(class_id, [])]
#: the methods a client really sends get more weight
_COMMON = [
    (50 << 16) | 10, (50 << 16) | 20, (50 << 16) | 30, (50 << 16) | 40, (50 << 16) | 50,
    (40 << 16) | 10, (40 << 16) | 20, (40 << 16) | 30, (40 << 16) | 40,
    (60 << 16) | 10, (60 << 16) | 20, (60 << 16) | 30, (60 << 16) | 70, (60 << 16) | 80, (60 << 16) | 90,
    (60 << 16) | 100, (60 << 16) | 110, (60 << 16) | 120, (85 << 16) | 10, (90 << 16) | 10, (90 << 16) | 20,
    (90 << 16) | 30, (20 << 16) | 20, (20 << 16) | 40, (20 << 16) | 10,
]


# ----------------------------------------------------------------- encoding
def shortstr(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return bytes([len(raw) & 0xFF]) + raw[:255]


def longstr(data: bytes | str) -> bytes:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return _frame_head.pack(frame_type, channel & 0xFFFF, len(payload)) + payload + FRAME_END


def method_frame(channel: int, index: int, args: bytes) -> bytes:
    return frame(1, channel, struct.pack(">I", index) + args)


def field_value(rng: random.Random, depth: int = 0) -> bytes:
    """One typed field-table value of any AMQP type (nested up to a few levels)."""
    kind = rng.choice("StbBsuIilfdDTFAxVSSIl" if depth < 3 else "StbBsuIilfdDTxVSI")
    if kind == "S":
        return b"S" + longstr(rng.choice(STRING_VALUES) if rng.random() < 0.7 else rng.randbytes(rng.randint(0, 12)))
    if kind == "t":
        return b"t" + bytes([rng.choice((0, 1, 2, 255))])
    if kind in "bB":
        return kind.encode() + bytes([rng.randrange(256)])
    if kind in "su":
        return kind.encode() + struct.pack(">H", pick_int(rng, 0, 0xFFFF))
    if kind in "Ii":
        return kind.encode() + struct.pack(">I", rng.choice((0, 1, 10, 100, 1000, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32))))
    if kind == "l":
        return b"l" + struct.pack(">Q", rng.choice((0, 1, 5, 1000, 2**63 - 1, 2**63, 2**64 - 1, rng.getrandbits(64))))
    if kind == "f":
        return b"f" + rng.randbytes(4)
    if kind == "d":
        return b"d" + rng.randbytes(8)
    if kind == "D":
        return b"D" + bytes([rng.randrange(256)]) + rng.randbytes(4)
    if kind == "T":
        return b"T" + struct.pack(">Q", rng.choice((0, 1714566645, 2**63, 2**64 - 1, rng.getrandbits(64))))
    if kind == "F":
        return b"F" + field_table(rng, rng.choice((QUEUE_ARGUMENTS, BIND_ARGUMENTS)), depth + 1)
    if kind == "A":
        body = b"".join(field_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
        return b"A" + struct.pack(">I", len(body)) + body
    if kind == "x":
        return b"x" + longstr(rng.randbytes(rng.randint(0, 6)))
    return b"V"


def field_table(rng: random.Random, keys: tuple[str, ...] = QUEUE_ARGUMENTS, depth: int = 0) -> bytes:
    parts = []
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        key = rng.choice(keys) if rng.random() < 0.85 else rng.choice(("", "x-" + "a" * 40, "\u00e9t\u00e9"))
        parts.append(shortstr(key) + field_value(rng, depth))
    body = b"".join(parts)
    return struct.pack(">I", len(body)) + body


def _table_for(rng: random.Random, index: int, name: str) -> bytes:
    if name == "client_properties":
        caps = field_table(rng, ("publisher_confirms", "consumer_cancel_notify", "connection.blocked", "authentication_failure_close"))
        body = shortstr("capabilities") + b"F" + caps
        if rng.random() < 0.3:
            body += shortstr("product") + b"S" + longstr("fuzz")
        return struct.pack(">I", len(body)) + body
    class_id = index >> 16
    if class_id == 50 and index != (50 << 16) | 20:
        return field_table(rng, QUEUE_ARGUMENTS)
    if class_id == 40 and index == (40 << 16) | 10:
        return field_table(rng, EXCHANGE_ARGUMENTS)
    if index == (60 << 16) | 20:
        return field_table(rng, CONSUME_ARGUMENTS)
    return field_table(rng, BIND_ARGUMENTS)


def _shortstr_for(rng: random.Random, name: str) -> bytes:
    if rng.random() < 0.04:
        return shortstr(rng.randbytes(rng.choice((1, 5, 255))))  # may be invalid UTF-8
    if name == "queue":
        return shortstr(rng.choice(QUEUES))
    if name in ("exchange", "destination", "source"):
        return shortstr(rng.choice(EXCHANGES))
    if name == "routing_key":
        return shortstr(rng.choice(ROUTING_KEYS))
    if name == "exchange_type":
        return shortstr(rng.choice(EXCHANGE_TYPES))
    if name == "consumer_tag":
        return shortstr(rng.choice(TAGS))
    if name == "mechanism":
        return shortstr(rng.choice(("PLAIN", "AMQPLAIN", "EXTERNAL", "", "plain")))
    if name == "locale":
        return shortstr(rng.choice(("en_US", "")))
    if name == "virtual_host":
        return shortstr(rng.choice(VHOSTS))
    if name == "reply_text":
        return shortstr(rng.choice(("", "bye", "x" * 255)))
    return shortstr(rng.choice(("", "a", "x" * 255)))


def _int_for(rng: random.Random, name: str, bits: int) -> int:
    high = (1 << bits) - 1
    if name in ("delivery_tag",):
        return rng.choice((0, 1, 2, 3, 4, 5, 1, 1, high, rng.randint(0, 50)))
    if name == "channel_max":
        return rng.choice((0, 1, 2, 16, 2047, 2048, 65535))
    if name == "frame_max":
        return rng.choice((0, 1, 4095, 4096, 8192, 131072, 131073, high))
    if name == "heartbeat":
        return rng.choice((0, 0, 1, 60, 65535))
    if name in ("prefetch_count",):
        return rng.choice((0, 1, 2, 10, 65535))
    if name == "reply_code":
        return rng.choice((200, 320, 404, 406, 501, 0, 65535))
    return pick_int(rng, 0, high)


def method_args(rng: random.Random, index: int) -> bytes:
    """The argument bytes of one method, field by field as the codec reads them."""
    _cls, fields = codec._FIELDS[index]
    out = bytearray()
    bit = 8
    for name, kind in fields:
        if kind == "bit":
            if bit == 8:
                out.append(0)
                bit = 0
            probability = 0.15 if name in ("nowait", "passive", "immediate", "internal") else 0.35
            if rng.random() < probability:
                out[-1] |= 1 << bit
            bit += 1
            continue
        bit = 8
        if kind == "shortstr":
            out += _shortstr_for(rng, name)
        elif kind == "short":
            out += struct.pack(">H", _int_for(rng, name, 16))
        elif kind == "long":
            out += struct.pack(">I", _int_for(rng, name, 32))
        elif kind == "longlong":
            out += struct.pack(">Q", _int_for(rng, name, 64))
        elif kind == "octet":
            out.append(rng.randrange(256))
        elif kind == "table":
            out += _table_for(rng, index, name)
        elif kind == "longstr":
            if name == "response":
                out += longstr(rng.choice((b"\x00guest\x00guest", b"\x00guest\x00wrong", b"guest", b"", b"\x00\x00\x00")))
            else:
                out += longstr(rng.randbytes(rng.randint(0, 10)))
        elif kind == "timestamp":
            out += struct.pack(">Q", rng.getrandbits(64))
    return bytes(out)


# ------------------------------------------------------------- properties
def property_block(rng: random.Random) -> bytes:
    """A basic property block: random flags, each present property with a plausible or hostile value."""
    flags = rng.getrandbits(16) & 0xFFFC if rng.random() < 0.5 else rng.choice((0, 0x2000, 0x1000, 0x0100, 0x0200, 0x0010, 0x3800))
    if rng.random() < 0.03:
        flags |= 1  # a continuation word
    parts = [struct.pack(">H", flags)]
    if flags & 1:
        parts.append(struct.pack(">H", rng.getrandbits(16) & 0xFFFE))
    for bit, domain, pool in (
        (0x8000, "s", ("text/plain", "")),
        (0x4000, "s", ("gzip",)),
        (0x2000, "t", None),
        (0x1000, "o", (1, 2, 0, 255)),
        (0x0800, "o", (0, 1, 5, 9, 10, 255)),
        (0x0400, "s", ("c1",)),
        (0x0200, "s", ("amq.rabbitmq.reply-to", "q0", "amq.rabbitmq.reply-to.x")),
        (0x0100, "s", ("0", "10", "-1", "x", "", "99999999999999999999", "1e3")),
        (0x0080, "s", ("m1",)),
        (0x0040, "T", None),
        (0x0020, "s", ("type",)),
        (0x0010, "s", ("guest", "mallory", "")),
        (0x0008, "s", ("app",)),
        (0x0004, "s", ("cluster",)),
    ):
        if not flags & bit:
            continue
        if domain == "s":
            parts.append(shortstr(rng.choice(pool)))  # type: ignore[arg-type]
        elif domain == "o":
            parts.append(bytes([rng.choice(pool)]))  # type: ignore[arg-type]
        elif domain == "T":
            parts.append(struct.pack(">Q", rng.getrandbits(64)))
        else:
            keys = ("CC", "BCC", "x-match", "k", "x-death", "x-delay", "x-first-death-reason")
            parts.append(field_table(rng, keys))
    return b"".join(parts)


def publish_frames(rng: random.Random, channel: int, frame_max: int) -> list[bytes]:
    """basic.publish, a content header and body frames (sizes sometimes lying)."""
    args = b"\x00\x00" + shortstr(rng.choice(EXCHANGES)) + shortstr(rng.choice(ROUTING_KEYS)) + bytes([rng.choice((0, 0, 1, 2, 3))])
    frames = [method_frame(channel, (60 << 16) | 40, args)]
    body = rng.randbytes(rng.choice((0, 1, 5, 100, frame_max - 8, frame_max)))
    declared = len(body)
    roll = rng.random()
    if roll < 0.05:
        declared += rng.choice((-1, 1, 1000))
    elif roll < 0.07:
        declared = rng.choice((2**63, 2**64 - 1, 134217729))
    declared = max(0, min(declared, 2**64 - 1))
    class_id = 60 if rng.random() < 0.97 else rng.choice((0, 50, 61))
    header = struct.pack(">HHQ", class_id, 0, declared) + property_block(rng)
    frames.append(frame(2, channel, header))
    piece = max(1, frame_max - 8)
    for start in range(0, len(body), piece):
        frames.append(frame(3, channel, body[start : start + piece]))
    return frames


# ---------------------------------------------------------------- sessions
class Session:
    """One generated client conversation: frames plus what the generator knows about them."""

    __slots__ = ("frames", "handshake_frames", "header", "frame_max")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.handshake_frames = 0
        self.header = HEADER
        self.frame_max = 131072

    def data(self) -> bytes:
        return self.header + b"".join(self.frames)


def handshake(rng: random.Random, session: Session, channels: list[int]) -> None:
    """start-ok, tune-ok, open and channel.open frames (rarely odd values)."""
    odd = rng.random() < 0.1
    if odd:
        session.frames.append(method_frame(0, (10 << 16) | 11, method_args(rng, (10 << 16) | 11)))
    else:
        mechanism = rng.random()
        if mechanism < 0.95:
            response = longstr(b"\x00guest\x00guest")
            name = "PLAIN"
        else:
            table = shortstr("LOGIN") + b"S" + longstr("guest") + shortstr("PASSWORD") + b"S" + longstr("guest")
            response = longstr(table)
            name = "AMQPLAIN"
        props = _table_for(rng, 0, "client_properties")
        session.frames.append(method_frame(0, (10 << 16) | 11, props + shortstr(name) + response + shortstr("en_US")))
    frame_max = rng.choice((4096, 8192, 131072, 131072))
    session.frame_max = frame_max
    if odd and rng.random() < 0.5:
        session.frames.append(method_frame(0, (10 << 16) | 31, method_args(rng, (10 << 16) | 31)))
    else:
        session.frames.append(method_frame(0, (10 << 16) | 31, struct.pack(">HIH", rng.choice((2047, 16, 3, 1)), frame_max, 0)))
    vhost = rng.choice(VHOSTS) if odd else "/"
    session.frames.append(method_frame(0, (10 << 16) | 40, shortstr(vhost) + b"\x00\x00"))
    for channel in channels:
        session.frames.append(method_frame(channel, (20 << 16) | 10, b"\x00"))
    session.handshake_frames = len(session.frames)


def operations(rng: random.Random, session: Session, channels: list[int], count: int) -> None:
    for _ in range(count):
        roll = rng.random()
        channel = rng.choice(channels) if rng.random() < 0.95 else rng.choice((0, 7, 65535))
        if roll < 0.28:
            session.frames.extend(publish_frames(rng, channel, session.frame_max))
        elif roll < 0.85:
            index = rng.choice(_COMMON) if rng.random() < 0.8 else rng.choice(_CHANNEL_LEVEL)
            session.frames.append(method_frame(channel, index, method_args(rng, index)))
        elif roll < 0.9:
            index = rng.choice(_BY_CLASS[10])
            session.frames.append(method_frame(rng.choice((0, 0, 0, channel)), index, method_args(rng, index)))
        elif roll < 0.94:
            session.frames.append(frame(8, 0 if rng.random() < 0.9 else channel, b""))
        else:
            session.frames.append(frame(rng.choice((1, 2, 3, 4, 8, 9, 0, 206)), channel, rng.randbytes(rng.randint(0, 20))))


def mutate_frames(rng: random.Random, session: Session) -> None:
    """Frame-level mutations: byte damage, length lies, channel/type changes, order changes."""
    frames = session.frames
    if not frames:
        return
    start = session.handshake_frames if rng.random() < 0.9 and session.handshake_frames < len(frames) else 0
    for _ in range(rng.choice((1, 1, 1, 2, 3, 6))):
        if not frames:
            return
        i = rng.randrange(start, len(frames)) if start < len(frames) else rng.randrange(len(frames))
        data = frames[i]
        if not data:  # cut to nothing by an earlier mutation
            del frames[i]
            continue
        kind = rng.randrange(12)
        if kind <= 2:  # damage the payload
            frames[i] = mutate_bytes(rng, data, protect=7)
        elif kind == 3:  # damage anything, header included
            frames[i] = mutate_bytes(rng, data)
        elif kind == 4:  # a length lie
            size = rng.choice((0, 1, 3, len(data) - 9, len(data) - 7, len(data), 4096, 131064, 131065, 131072, 0x7FFFFFFF, 0xFFFFFFFF))
            frames[i] = data[:3] + struct.pack(">I", max(0, size) & 0xFFFFFFFF) + data[7:]
        elif kind == 5:  # another channel
            frames[i] = data[:1] + struct.pack(">H", rng.choice((0, 1, 2, 3, 4, 100, 65535))) + data[3:]
        elif kind == 6:  # another frame type
            frames[i] = bytes([rng.choice((0, 1, 2, 3, 4, 8, 65, 206, 255))]) + data[1:]
        elif kind == 7:  # dropped
            del frames[i]
        elif kind == 8:  # duplicated
            frames.insert(i, data)
        elif kind == 9 and i + 1 < len(frames):  # swapped with the next
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
        elif kind == 10:  # a window shuffled
            window = frames[i : i + rng.randint(2, 6)]
            rng.shuffle(window)
            frames[i : i + len(window)] = window
        else:  # the frame end marker broken, or the frame cut short
            frames[i] = data[:-1] + bytes([rng.randrange(256)]) if rng.random() < 0.5 else data[: rng.randrange(len(data))]
    if rng.random() < 0.02:
        session.header = mutate_bytes(rng, HEADER)


def generate(rng: random.Random) -> Session:
    """One session: a handshake, operations, mutations, and sometimes a polite close."""
    session = Session()
    channels = rng.choice(([1], [1], [1, 2], [1, 2, 3], [5]))
    handshake(rng, session, channels)
    operations(rng, session, channels, rng.randint(3, 40))
    if rng.random() < 0.75:
        mutate_frames(rng, session)
    roll = rng.random()
    if roll < 0.15:
        session.frames.append(method_frame(channels[0], CHANNEL_CLOSE, struct.pack(">H", 200) + shortstr("") + b"\x00\x00\x00\x00"))
    elif roll < 0.3:
        session.frames.append(method_frame(0, CONNECTION_CLOSE, struct.pack(">H", 200) + shortstr("") + b"\x00\x00\x00\x00"))
    return session


# ------------------------------------------------------------------ oracle
def parse_output(data: bytes) -> tuple[list[tuple[int, int, bytes]], str | None]:
    """The server's output as (type, channel, payload) frames; an error text when malformed."""
    frames = []
    pos = 0
    if data.startswith(b"AMQP"):
        if data[:8] != HEADER:
            return frames, f"bad protocol header {data[:8]!r}"
        pos = 8
    end = len(data)
    while pos < end:
        if end - pos < 8:
            return frames, f"truncated frame at {pos}"
        frame_type, channel, size = _frame_head.unpack_from(data, pos)
        stop = pos + 7 + size
        if stop >= end or data[stop] != 0xCE:
            return frames, f"bad frame end at {pos}"
        frames.append((frame_type, channel, data[pos + 7 : stop]))
        pos = stop + 1
    return frames, None


def check(conn: AMQPConnection, out: bytes, data: bytes) -> list[str]:
    """Invariants of one finished case; returns the broken ones."""
    problems: list[str] = []
    frames, error = parse_output(out)
    if error:
        problems.append(f"malformed output: {error}")
    opened = False
    close_at: int | None = None
    client_closed = False
    for n, (frame_type, channel, payload) in enumerate(frames):
        if frame_type not in (1, 2, 3, 8):
            problems.append(f"server sent frame type {frame_type}")
            continue
        if frame_type == 3 and len(payload) > conn.frame_max - 8:
            problems.append(f"body frame of {len(payload)} bytes over frame_max {conn.frame_max}")
        if frame_type != 1:
            continue
        if len(payload) < 4:
            problems.append("method frame without an index")
            continue
        index = struct.unpack_from(">I", payload)[0]
        if close_at is not None and index != CONNECTION_CLOSE_OK:
            problems.append(f"method {index >> 16}.{index & 0xFFFF} after connection.close")
        if index == CONNECTION_OPEN_OK:
            opened = True
        elif index == CONNECTION_CLOSE_OK:
            client_closed = True
        elif index in (CONNECTION_CLOSE, CHANNEL_CLOSE) and len(payload) >= 6:
            code = struct.unpack_from(">H", payload, 4)[0]
            if index == CONNECTION_CLOSE:
                close_at = n
                if code not in CONNECTION_CODES:
                    problems.append(f"connection.close with {code}: {payload[7:7 + payload[6]]!r}")
            elif code not in CHANNEL_CODES:
                problems.append(f"channel.close with {code}: {payload[7:7 + payload[6]]!r}")
        try:
            pamqp_frame.unmarshal(_frame_head.pack(1, channel, len(payload)) + payload + FRAME_END)
        except Exception as exc:  # noqa: BLE001 - any failure to decode is a finding
            if "codec can't decode" in str(exc):
                continue  # RabbitMQ cuts reply texts at 252 bytes too, mid-character
            problems.append(f"pamqp cannot decode {index >> 16}.{index & 0xFFFF}: {type(exc).__name__}: {exc}")
    if conn.closed and close_at is None and opened and not client_closed:
        # after the handshake a connection ends with connection.close, or because the client asked
        if not (_has_method(data, CONNECTION_CLOSE_OK) or _has_method(data, CONNECTION_CLOSE)):
            problems.append("connection closed silently after the handshake")
    return problems


def _has_method(data: bytes, index: int) -> bool:
    return struct.pack(">I", index) in data


def check_released(conn: AMQPConnection, broker: Broker) -> list[str]:
    """After connection_lost nothing of the connection may stay in the broker."""
    problems = []
    if conn in broker.connections:
        problems.append("connection still registered with the broker")
    for vhost in broker.vhosts.values():
        for queue in vhost.queues.values():
            if queue.owner is conn:
                problems.append(f"exclusive queue {queue.name!r} survived its connection")
            for consumer in queue.consumers:
                channel = getattr(consumer, "channel", None)
                if channel is not None and channel.conn is conn:
                    problems.append(f"consumer {consumer.tag!r} on {queue.name!r} survived its connection")
        for address, consumer in vhost.reply_consumers.items():
            if consumer.channel.conn is conn:
                problems.append(f"reply consumer {address!r} survived its connection")
    return problems


CLOSE_OK_FRAME = method_frame(0, CONNECTION_CLOSE_OK, b"")


def run_case(rng: random.Random, broker: Broker, case: int, log: Any) -> tuple[int, list[Failure], float]:
    """Generate, feed and check one session; returns (frames sent, failures, seconds)."""
    session = generate(rng)
    data = session.data()
    conn = AMQPConnection(broker, peer=f"fuzz#{case}")
    failures: list[Failure] = []
    started = time.perf_counter()
    out = []
    try:
        for piece in chunks(rng, data):
            conn.receive_data(piece)
            out.append(conn.data_to_send())
            if conn.closed:
                break
        problems = check(conn, b"".join(out), data)
        if conn.closing and not conn._buf:
            conn.receive_data(CLOSE_OK_FRAME)
            if not conn.closed:
                problems.append("connection.close-ok did not end a closing connection")
        conn.connection_lost()  # what the gateway calls on every way out
        broker.scheduler.run_due(broker.scheduler.now() + 3600)
        problems += check_released(conn, broker)
    except BaseException as exc:  # noqa: BLE001 - this is the crash we are looking for
        if isinstance(exc, KeyboardInterrupt):
            raise
        failures.append(Failure("amqp", case, "exception", f"{type(exc).__name__}: {exc}", data))
        problems = []
    elapsed = time.perf_counter() - started
    for record in log.take():
        failures.append(Failure("amqp", case, "internal-error", record, data))
    for problem in problems:
        failures.append(Failure("amqp", case, "invariant", problem, data))
    return len(session.frames), failures, elapsed


def bystander(broker: Broker, case: int) -> list[str]:
    """A well-behaved connection on the abused broker: declare, publish, get."""
    conn = AMQPConnection(broker, peer="bystander")
    queue = f"bystander-{case}"
    body = b"still here"
    data = (
        HEADER
        + method_frame(0, (10 << 16) | 11, struct.pack(">I", 0) + shortstr("PLAIN") + longstr(b"\x00guest\x00guest") + shortstr("en_US"))
        + method_frame(0, (10 << 16) | 31, struct.pack(">HIH", 2047, 131072, 0))
        + method_frame(0, (10 << 16) | 40, shortstr("/") + b"\x00\x00")
        + method_frame(1, (20 << 16) | 10, b"\x00")
        + method_frame(1, (50 << 16) | 10, b"\x00\x00" + shortstr(queue) + b"\x08" + struct.pack(">I", 0))
        + method_frame(1, (60 << 16) | 40, b"\x00\x00" + shortstr("") + shortstr(queue) + b"\x00")
        + frame(2, 1, struct.pack(">HHQH", 60, 0, len(body), 0))
        + frame(3, 1, body)
        + method_frame(1, (60 << 16) | 70, b"\x00\x00" + shortstr(queue) + b"\x01")
    )
    conn.receive_data(data)
    frames, error = parse_output(conn.data_to_send())
    conn.connection_lost()
    if error:
        return [f"bystander: {error}"]
    bodies = [payload for frame_type, _channel, payload in frames if frame_type == 3]
    if bodies != [body]:
        names = [struct.unpack_from(">I", p)[0] for t, _c, p in frames if t == 1]
        return [f"bystander did not get its message back: methods {[(i >> 16, i & 0xFFFF) for i in names]}"]
    return []


def case_seed(seed: int, case: int) -> int:
    """The seed of one case: ``run_case(random.Random(case_seed(seed, case)), Broker(), case, log)`` replays it."""
    return seed * 1_000_003 + case


def campaign(frames_wanted: int, seed: int, *, bystander_every: int = 200, fresh_broker_every: int = 500, report: Any = None) -> dict[str, Any]:
    """Run sessions until ``frames_wanted`` frames were sent; returns counts and failures."""
    from .common import crash_log

    counts = {"cases": 0, "frames": 0, "failures": 0, "slowest_ms": 0.0}
    failures: list[Failure] = []
    broker = Broker()
    started = time.monotonic()
    next_report = started + 10
    with crash_log() as log:
        while counts["frames"] < frames_wanted:
            case = counts["cases"]
            if case % fresh_broker_every == 0:
                broker = Broker()
            rng = random.Random(case_seed(seed, case))
            sent, found, elapsed = run_case(rng, broker, case, log)
            counts["cases"] += 1
            counts["frames"] += sent
            counts["slowest_ms"] = max(counts["slowest_ms"], round(elapsed * 1000, 1))
            if case % bystander_every == bystander_every - 1:
                for problem in bystander(broker, case):
                    found.append(Failure("amqp", case, "invariant", problem))
                for record in log.take():
                    found.append(Failure("amqp", case, "internal-error", record))
            if found:
                failures.extend(found)
                counts["failures"] += len(found)
            if report is not None and time.monotonic() >= next_report:
                next_report = time.monotonic() + 10
                report(f"amqp: {counts['cases']} sessions, {counts['frames']} frames, {counts['failures']} failures")
    counts["seconds"] = round(time.monotonic() - started, 1)
    return {"counts": counts, "failures": failures}
