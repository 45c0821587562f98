"""The recording harness every compat scenario runs inside.

A scenario receives a :class:`Session` and uses the real, unmodified pika
client through it. Everything the client can observe is recorded as an
ordered list of ``[label, value]`` pairs of plain JSON values:

* method frames (name and every field), broker errors as
  ``{"channel_closed": [code, text]}`` / ``{"connection_closed": [code, text]}``,
  other client exceptions by class name and text;
* delivered messages with every property, header values tagged with
  their Python type (``["int", 5]``), bodies (or length and digest);
* ``wire``: per connection and channel, every frame pika decoded after the
  handshake — method names, content headers with the raw property bytes
  in hex, body frame sizes. This catches what pika's API hides: frame
  splitting, the exact field-table type tags, frame order. Broker
  ``Basic.Ack``/``Basic.Nack`` (publisher confirms) are left out because
  RabbitMQ coalesces them with ``multiple`` depending on timing.

Run-specific values are normalised so two runs against the same broker
compare equal: entity names carry a per-run token (replaced by ``<T>``),
server-generated names become ``amq.gen-<G>`` / ``amq.ctag-<G>``, pika's
consumer tags ``ctagN.<U>``.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import hashlib
import json
import re
import secrets
import socket
import struct
import threading
import time
from typing import Any, Callable

import pika
import pika.exceptions as pex
import pika.frame
import pika.spec

Observations = list  # list of [label, value]

SCENARIOS: dict[str, Callable[[str], Observations]] = {}

DEFAULT_TIMEOUT = 10.0


# -- values -> JSON ----------------------------------------------------------

def typed(value: Any) -> Any:
    """Tag scalars with their Python type: ``"int:5"``, ``"long:2147483648"``.

    Tables stay JSON objects and arrays JSON arrays (their elements tagged),
    so the decoded AMQP field type of every value is visible in a diff.
    """
    if isinstance(value, dict):
        return {str(k): typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, bytes):
        return f"bytes:{value.hex()}"
    return f"{type(value).__name__}:{json.dumps(plain(value), ensure_ascii=False)}"


def plain(value: Any) -> Any:
    """Convert a value pika produced into plain JSON (no type tags)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, pika.frame.Method):
        return method(value.method)
    if isinstance(value, pika.amqp_object.Method):
        return method(value)
    return {"object": type(value).__name__}


def method(value: pika.amqp_object.Method) -> dict:
    """A method frame as ``{"method": "Queue.DeclareOk", field: value, ...}``."""
    if isinstance(value, pika.frame.Method):
        value = value.method
    out = {"method": value.NAME}
    for key, field in sorted(vars(value).items()):
        out[key] = plain(field)
    return out


def body(data: bytes) -> Any:
    """Short printable bodies as text, others as length and digest."""
    if len(data) <= 64:
        try:
            text = data.decode("ascii")
            if text.isprintable():
                return text
        except UnicodeDecodeError:
            pass
        return {"bytes": data.hex()}
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


PROPERTY_NAMES = (
    "content_type", "content_encoding", "headers", "delivery_mode", "priority",
    "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
    "type", "user_id", "app_id", "cluster_id",
)


def properties(props: pika.spec.BasicProperties | None) -> dict:
    """Every property that is set; header values carry their type."""
    if props is None:
        return {}
    out = {}
    for name in PROPERTY_NAMES:
        value = getattr(props, name)
        if value is None:
            continue
        out[name] = typed(value)
    return out


def message(method_frame, props, data: bytes) -> dict:
    """A delivered/got/returned message: method fields, properties, body."""
    out = method(method_frame)
    props_out = properties(props)
    if props_out:
        out["props"] = props_out
    out["body"] = body(data)
    return out


def error(exc: BaseException) -> dict:
    """An exception as the client sees it."""
    if isinstance(exc, pex.ChannelClosedByBroker):
        return {"channel_closed": [exc.reply_code, exc.reply_text]}
    if isinstance(exc, pex.ConnectionClosedByBroker):
        return {"connection_closed": [exc.reply_code, exc.reply_text]}
    if isinstance(exc, (pex.UnroutableError, pex.NackError)):
        return {
            "error": type(exc).__name__,
            "messages": [message(m.method, m.properties, m.body) for m in exc.messages],
        }
    if isinstance(exc, (pex.ChannelWrongStateError, pex.ConnectionWrongStateError)):
        # pika's own state errors; their text embeds object reprs and ports.
        return {"error": type(exc).__name__}
    if isinstance(exc, pex.ChannelClosed):
        return {"error": type(exc).__name__, "code": exc.reply_code, "text": exc.reply_text}
    if isinstance(exc, pex.ConnectionClosed):
        return {"error": type(exc).__name__, "code": exc.reply_code, "text": exc.reply_text}
    return {"error": type(exc).__name__, "text": " ".join(str(a) for a in exc.args)}


# -- normalisation -----------------------------------------------------------

_GENERATED = [
    (re.compile(r"amq\.gen-[A-Za-z0-9_-]{22}"), "amq.gen-<G>"),
    (re.compile(r"amq\.ctag-[A-Za-z0-9_-]{22}"), "amq.ctag-<G>"),
    (re.compile(r"ctag(\d+)\.[0-9a-f]{32}"), r"ctag\1.<U>"),
    (re.compile(r"amq\.rabbitmq\.reply-to\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+"), "amq.rabbitmq.reply-to.<G>"),
]


def normalise(value: Any, token: str) -> Any:
    """Replace run-specific strings (token, generated names) recursively."""
    if isinstance(value, str):
        value = value.replace(token, "<T>")
        for pattern, replacement in _GENERATED:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {normalise(k, token): normalise(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, token) for v in value]
    return value


# -- wire trace ----------------------------------------------------------------

# Content-header property list, in flag-bit order (AMQP 0-9-1 basic class).
_PROPERTY_FIELDS = [
    ("content_type", "shortstr"), ("content_encoding", "shortstr"), ("headers", "table"),
    ("delivery_mode", "octet"), ("priority", "octet"), ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"), ("expiration", "shortstr"), ("message_id", "shortstr"),
    ("timestamp", "longlong"), ("type", "shortstr"), ("user_id", "shortstr"),
    ("app_id", "shortstr"), ("cluster_id", "shortstr"),
]
_FIXED = {"b": ">b", "B": ">B", "s": ">h", "U": ">h", "u": ">H", "I": ">i", "i": ">I",
          "l": ">q", "L": ">Q", "f": ">f", "d": ">d", "T": ">Q"}


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "0x" + raw.hex()


class _Reader:
    """Decodes AMQP field values keeping the wire type tag of each one."""

    def __init__(self, data: bytes, mask_timestamps: bool):
        self.data, self.pos, self.mask_timestamps = data, 0, mask_timestamps

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        if len(chunk) != n:
            raise ValueError("truncated")
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def table(self) -> list:
        length = self.unpack(">I")
        end = self.pos + length
        fields = []
        while self.pos < end:
            key = _text(self.take(self.unpack(">B")))
            fields.append([key, self.value()])
        return fields

    def value(self):
        tag = chr(self.take(1)[0])
        if tag == "t":
            return f"t:{self.unpack('>B')}"
        if tag == "T" and self.mask_timestamps:
            self.take(8)
            return "T:<masked>"
        if tag in _FIXED:
            return f"{tag}:{self.unpack(_FIXED[tag])}"
        if tag == "D":
            scale = self.unpack(">B")
            return f"D:{scale},{self.unpack('>i')}"
        if tag in "Sx":
            return f"{tag}:{_text(self.take(self.unpack('>I')))}"
        if tag == "V":
            return "V"
        if tag == "F":
            return {"F": self.table()}
        if tag == "A":
            length = self.unpack(">I")
            end = self.pos + length
            items = []
            while self.pos < end:
                items.append(self.value())
            return {"A": items}
        return f"unknown-tag:{tag!r}"


def decode_properties(payload: bytes, mask_timestamps: bool = False) -> dict:
    """Content-header properties exactly as encoded: flags and typed values.

    Unlike pika's decoder this keeps the field-table type tags (``I`` vs
    ``l`` vs ``s``...) and the table key order.
    """
    reader = _Reader(payload, mask_timestamps)
    flag_words = []
    while True:
        word = reader.unpack(">H")
        flag_words.append(word)
        if not word & 1:
            break
    out: dict[str, Any] = {"flags": " ".join(f"{w:04x}" for w in flag_words)}
    try:
        for index, (name, kind) in enumerate(_PROPERTY_FIELDS):
            if not flag_words[0] & (1 << (15 - index)):
                continue
            if kind == "shortstr":
                out[name] = _text(reader.take(reader.unpack(">B")))
            elif kind == "octet":
                out[name] = reader.unpack(">B")
            elif kind == "longlong":
                out[name] = reader.unpack(">Q")
            else:
                out[name] = reader.table()
        if reader.pos != len(payload):
            out["trailing"] = payload[reader.pos:].hex()
    except (ValueError, struct.error) as exc:
        out["undecodable"] = f"{exc}: {payload.hex()}"
    return out


class WireTrace:
    """Every frame one pika connection decoded, installed after the handshake."""

    def __init__(self, impl, session: "Session"):
        self.impl = impl
        self.session = session
        self.frames: list[tuple[int, Any]] = []
        self.methods: list = []
        original = impl._read_frame

        def read_frame():
            consumed, value = original()
            if value is not None:
                self._add(bytes(impl._frame_buffer[:consumed]), value)
            return consumed, value

        impl._read_frame = read_frame

    def _add(self, raw: bytes, value) -> None:
        if isinstance(value, pika.frame.Method):
            self.methods.append(value.method)
            if isinstance(value.method, (pika.spec.Basic.Ack, pika.spec.Basic.Nack)):
                return
            self.frames.append((value.channel_number, value.method.NAME))
        elif isinstance(value, pika.frame.Header):
            payload = raw[7:-1]
            _class_id, _weight, size = struct.unpack_from(">HHQ", payload)
            props = decode_properties(payload[12:], self.session.mask_timestamps)
            self.frames.append((value.channel_number, {"header": {"size": size, **props}}))
        elif isinstance(value, pika.frame.Body):
            self.frames.append((value.channel_number, f"body {len(value.fragment)}"))

    def by_channel(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for channel, text in self.frames:
            out.setdefault(str(channel), []).append(text)
        return out


# -- session -------------------------------------------------------------------

class Session:
    """One scenario run: names, connections, observations, cleanup.

    Args:
        url: AMQP URL of the broker under test.
        scenario: the scenario's name (part of every entity name).
    """

    def __init__(self, url: str, scenario: str):
        self.url = url
        self.token = secrets.token_hex(4)
        self.prefix = f"wgc.{scenario}.{self.token}"
        self.obs: Observations = []
        self.impls: list = []  # pika connection impls, for the watchdog
        self._traces: list[WireTrace] = []
        self._blocking: list[pika.BlockingConnection] = []
        self._queues: list[str] = []
        self._exchanges: list[str] = []
        self.trace_wire = True
        self.mask_timestamps = False  # broker-generated times (x-death) vary
        self._confirm_channels: dict[int, Any] = {}

    # names
    def name(self, local: str) -> str:
        """A unique entity name (not registered for cleanup)."""
        return f"{self.prefix}.{local}"

    def q(self, local: str) -> str:
        """A unique queue name, deleted at cleanup."""
        name = self.name(local)
        self._queues.append(name)
        return name

    def x(self, local: str) -> str:
        """A unique exchange name, deleted at cleanup."""
        name = self.name(local)
        self._exchanges.append(name)
        return name

    # connections
    def params(self, **overrides) -> pika.URLParameters:
        params = pika.URLParameters(self.url)
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.stack_timeout = 10
        for key, value in overrides.items():
            setattr(params, key, value)
        return params

    def connect(self, url: str | None = None, **overrides) -> pika.BlockingConnection:
        """Open a traced BlockingConnection (raises like pika does)."""
        params = pika.URLParameters(url) if url else self.params()
        if url:
            params.connection_attempts = 1
            params.socket_timeout = 5
        for key, value in overrides.items():
            setattr(params, key, value)
        conn = pika.BlockingConnection(params)
        self._blocking.append(conn)
        self.impls.append(conn._impl)
        if self.trace_wire:
            self._traces.append(WireTrace(conn._impl, self))
        return conn

    def channel(self, conn: pika.BlockingConnection | None = None, number: int | None = None):
        """A new channel on ``conn`` (default: a new connection)."""
        conn = conn or self.connect()
        return conn.channel(number)

    def trace(self, impl) -> None:
        """Trace a SelectConnection (call from its on-open callback)."""
        self.impls.append(impl)
        if self.trace_wire:
            self._traces.append(WireTrace(impl, self))

    # recording
    def rec(self, label: str, value: Any) -> None:
        self.obs.append([label, plain(value)])

    def attempt(self, label: str, fn: Callable, *args, **kwargs) -> Any:
        """Call ``fn``; record its result (method frames in full) or its error.

        Returns the result, or None when it raised.
        """
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # every client-visible failure is an observation
            self.obs.append([label, error(exc)])
            return None
        self.obs.append([label, plain(result) if result is not None else "ok"])
        return result

    def sync(self, label: str, ch) -> None:
        """Round-trip on ``ch`` so an asynchronous channel error surfaces now."""
        self.attempt(label, lambda: ch.exchange_declare("amq.direct", passive=True) and "ok")

    # messaging helpers
    def publish(self, ch, exchange: str, key: str, data: bytes | str = b"", props=None, mandatory=False) -> None:
        """basic.publish on ``ch`` itself, as an application would."""
        if isinstance(data, str):
            data = data.encode()
        ch.basic_publish(exchange, key, data, properties=props, mandatory=mandatory)

    def send(self, ch, exchange: str, key: str, data: bytes | str = b"", props=None) -> None:
        """Set-up publish that is enqueued when this returns.

        Goes through a publisher-confirm side channel on ``ch``'s connection:
        RabbitMQ answers queue.declare's counts with priority over pending
        deliveries, so a plain publish followed by a passive declare races.
        """
        conn = ch.connection
        side = self._confirm_channels.get(id(conn))
        if side is None or not side.is_open:
            side = conn.channel()
            side.confirm_delivery()
            self._confirm_channels[id(conn)] = side
        if isinstance(data, str):
            data = data.encode()
        side.basic_publish(exchange, key, data, properties=props)

    def get(self, ch, queue: str, auto_ack: bool = False) -> dict:
        """basic.get as an observation value: message or ``"get-empty"``."""
        method_frame, props, data = ch.basic_get(queue, auto_ack=auto_ack)
        if method_frame is None:
            return "get-empty"
        return message(method_frame, props, data)

    def drain(self, ch, queue: str, auto_ack: bool = True, limit: int = 100) -> list:
        """basic.get until empty; returns the bodies."""
        out = []
        for _ in range(limit):
            method_frame, _props, data = ch.basic_get(queue, auto_ack=auto_ack)
            if method_frame is None:
                break
            out.append(data.decode(errors="replace") if len(data) < 64 else body(data))
        return out

    def pump(self, conn, until: Callable[[], bool], timeout: float = 2.0, label: str = "event error") -> bool:
        """Process events until ``until()`` or timeout; returns ``until()``.

        A broker error raised while waiting is recorded under ``label``.
        """
        deadline = time.monotonic() + timeout
        try:
            while not until():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not conn.is_open:
                    return until()
                conn.process_data_events(time_limit=min(0.01, remaining))
        except Exception as exc:
            self.obs.append([label, error(exc)])
        return until()

    def settle(self, conn, seconds: float = 0.05) -> None:
        """Give the broker a moment to send anything else it would send."""
        self.pump(conn, lambda: False, timeout=seconds)

    def frames(self, conn, name: str) -> list[dict]:
        """Every method frame named ``name`` received on ``conn`` (traced)."""
        impl = getattr(conn, "_impl", conn)
        for trace in self._traces:
            if trace.impl is impl:
                return [method(m) for m in trace.methods if m.NAME == name]
        return []

    # teardown
    def close_all(self) -> None:
        for conn in self._blocking:
            try:
                if conn.is_open:
                    conn.close()
            except Exception:
                pass

    def wire(self) -> dict:
        return {str(i): t.by_channel() for i, t in enumerate(self._traces)}

    def cleanup(self) -> None:
        """Close every connection, then delete the registered entities."""
        self.close_all()
        if not (self._queues or self._exchanges):
            return
        try:
            params = self.params()
            conn = pika.BlockingConnection(params)
        except Exception:
            return
        try:
            ch = conn.channel()
            for kind, names in (("queue", self._queues), ("exchange", self._exchanges)):
                for name in dict.fromkeys(names):
                    try:
                        if kind == "queue":
                            ch.queue_delete(name)
                        else:
                            ch.exchange_delete(name)
                    except pex.AMQPChannelError:
                        ch = conn.channel()
        except Exception:
            pass
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def abort(self) -> None:
        """Watchdog: cut every socket so a blocked pika call returns."""
        for impl in list(self.impls):
            try:
                impl._transport._sock.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass


def scenario(fn: Callable[[Session], None]) -> Callable[[Session], None]:
    """Register ``fn`` (named ``scenario_<name>``) in :data:`SCENARIOS`."""
    name = fn.__name__.removeprefix("scenario_")
    if name in SCENARIOS:
        raise ValueError(f"duplicate scenario {name}")
    SCENARIOS[name] = functools.partial(run, fn)
    SCENARIOS[name].__name__ = name
    SCENARIOS[name].scenario = fn
    return fn


def run(fn: Callable[[Session], None], url: str, timeout: float = DEFAULT_TIMEOUT) -> Observations:
    """Run one scenario against ``url`` and return its normalised observations.

    The scenario runs in a worker thread; after ``timeout`` seconds its
    sockets are cut (a hung broker must not hang the oracle) and
    ``["timeout", seconds]`` is recorded.
    """
    name = fn.__name__.removeprefix("scenario_")
    session = Session(url, name)
    outcome: dict[str, Any] = {}

    def body_():
        try:
            fn(session)
        except Exception as exc:
            outcome["uncaught"] = error(exc)

    worker = threading.Thread(target=body_, name=f"compat-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        outcome["timeout"] = timeout
        session.abort()
        worker.join(5)
    for key in ("uncaught", "timeout"):
        if key in outcome:
            session.obs.append([key, outcome[key]])
    if session.trace_wire:
        session.obs.append(["wire", session.wire()])
    session.cleanup()
    return normalise(session.obs, session.token)
