"""The decoded-frame trace: every AMQP frame and Kafka request/response, as events.

The bytes are tapped at the gateway, never inside the protocol state
machines.  Each :class:`~wiregate.gateway.connection.ConnectionHandler` has
a ``tap`` attribute, ``None`` while nobody listens: the hot path then pays
one ``is None`` check per socket read and per flush, nothing else.  While at
least one sink is registered with the :class:`Tracer`, every connection has
a tap (:class:`AMQPTap`, :class:`KafkaTap`) that splits both byte streams
into frames, decodes them (AMQP with :mod:`wiregate.amqp.codec`, Kafka with
kio through :mod:`wiregate.kafka_wire.protocol`) and hands one event per
frame to every sink.

Events are JSON-able dicts::

    {"ts": 1714557600.123456,           # unix seconds
     "conn": "amqp#3",                  # connection id, per protocol, from 1
     "peer": "127.0.0.1:5555",
     "proto": "amqp" | "kafka",
     "dir": "in" | "out",               # in = client to server
     "kind": "frame" | "request" | "response" | "open" | "close" | "fault" | "malformed",
     "name": "basic.publish" | "content-header" | "content-body" | "heartbeat"
             | "protocol-header" | "Produce" | ...,
     "channel": 1,                      # AMQP frames only
     "version": 9, "correlation_id": 4, # Kafka requests and responses only
     "size": 372,                       # bytes on the wire (frame or size-prefixed message)
     "fields": {...}}                   # the decoded content

``fields``: AMQP methods give their arguments (tables as JSON objects;
credentials in ``connection.start-ok``/``secure-ok``/``update-secret`` are
replaced by their length); a content header gives ``class_id``,
``body_size`` and ``properties``; a body frame ``length`` and a short
printable ``preview``.  Kafka requests give ``client_id`` and the decoded
request, responses the decoded response: every field by its schema name,
error codes as numbers with a sibling ``*_name`` (``error_code: 6,
error_name: "NOT_LEADER_OR_FOLLOWER"``), durations in milliseconds, record
sets as ``{"bytes", "batches", "records"}`` (records are never decoded),
other bytes as ``{"length", "preview"}``, and topic ids resolved to a
``topic`` name when the broker knows them.  A ``fault`` event is an
injected fault (``fields`` holds the rule's hit); a ``malformed`` event says
why decoding of that direction stopped (the connection itself is never
touched by the trace).

Sinks are plain callables ``sink(event)``, called synchronously in the
server's Trio thread; they must be quick and must not block.  Provided:
:class:`TracePrinter` (one readable, optionally coloured line per event:
``wiregate serve --trace``), :class:`JSONLinesSink` (``--trace-file``) and
:class:`Subscription` (a bounded buffer for a slow reader, used by
``GET /api/trace``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import functools
import json
import logging
import os
import struct
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import trio
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader

from wiregate.amqp import codec as amqp_codec
from wiregate.amqp.properties import FIELDS as _PROPERTY_FIELDS
from wiregate.amqp.properties import PropertyBlock
from wiregate.kafka_wire import protocol as kafka_protocol

logger = logging.getLogger("wiregate.gateway")

Event = dict[str, Any]
Sink = Callable[[Event], None]

__all__ = [
    "AMQPTap",
    "Event",
    "JSONLinesSink",
    "KafkaTap",
    "Sink",
    "Subscription",
    "Tap",
    "TracePrinter",
    "Tracer",
    "format_event",
    "use_color",
]

#: a frame larger than this is taken for garbage (the server refuses far smaller ones)
_MAX_AMQP_FRAME = 1 << 28
_PREVIEW = 48
#: requests whose response has not been seen yet, per Kafka connection
_MAX_PENDING = 4096

_amqp_head = struct.Struct(">BHI")
_content_head = struct.Struct(">HHQ")
_u32 = struct.Struct(">I")
_i32 = struct.Struct(">i")
_kafka_head = struct.Struct(">hhi")


class Malformed(Exception):
    """The bytes of one direction cannot be split or decoded any further."""


# ------------------------------------------------------------------ values
#: printable ASCII stays, other bytes become dots
_ASCII_PREVIEW = bytes(b if 32 <= b < 127 else 46 for b in range(256))


def _preview(data: bytes | bytearray | memoryview, limit: int = _PREVIEW) -> str:
    """A short printable rendering of bytes: text as text, the rest as dots."""
    head = bytes(data[:limit])
    if head.isascii():
        text = head.translate(_ASCII_PREVIEW).decode("ascii")
    else:
        text = "".join(ch if ch.isprintable() else "." for ch in head.decode("utf-8", "replace"))
    return text + ("…" if len(data) > limit else "")


def _jsonable(value: Any) -> Any:
    """A decoded AMQP value as plain JSON types (typed ints become ints, …)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"length": len(value), "preview": _preview(value)}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


# ------------------------------------------------------------------- taps
class _Direction:
    """The splitter state of one byte stream."""

    __slots__ = ("buf", "state", "dead")

    def __init__(self, state: str) -> None:
        self.buf = bytearray()
        self.state = state
        self.dead = False


class Tap:
    """Splits and decodes one connection's two byte streams into events.

    Created by the :class:`Tracer`; the connection handler calls
    :meth:`received` with every chunk read from the socket (before the
    protocol sees it) and :meth:`sent` with every chunk written.  A tap never
    raises: input it cannot split or decode produces one ``malformed`` event,
    after which that direction is no longer decoded.

    Args:
        emit: Called with each event.
        conn: The connection id, e.g. ``"amqp#3"``.
        peer: The client's address.
    """

    proto = "?"

    def __init__(self, emit: Callable[[Event], None], conn: str, peer: str) -> None:
        self._emit = emit
        self.conn = conn
        self.peer = peer
        self._in = _Direction(self._initial_state("in"))
        self._out = _Direction(self._initial_state("out"))

    def _initial_state(self, direction: str) -> str:
        return "frames"

    def received(self, data: bytes) -> None:
        """Bytes read from the client."""
        if data and not self._in.dead:
            self._in.buf += data
            self._run(self._in, "in")

    def sent(self, data: bytes) -> None:
        """Bytes written to the client."""
        if data and not self._out.dead:
            self._out.buf += data
            self._run(self._out, "out")

    def resume(self, conn: object) -> None:
        """Start tracing a connection that is already running.

        The protocol object's unconsumed input (which starts at a frame
        boundary) seeds the inbound splitter; its output is always whole
        frames.  Never raises.
        """
        try:
            self._resume(conn)
            if self._in.buf:
                self._run(self._in, "in")
        except Exception as exc:  # a protocol object of another shape
            self._fail(self._in, "in", round(time.time(), 6), exc)

    def _resume(self, conn: object) -> None:
        buf = getattr(conn, "_buf", None)
        if isinstance(buf, (bytes, bytearray)):
            self._in.buf += buf

    def closed(self, *, by_peer: bool) -> None:
        """The connection ended (``by_peer``: the client closed it or vanished)."""
        self._emit(
            self._event(
                round(time.time(), 6),
                "in" if by_peer else "out",
                "close",
                "close",
                0,
                {"by": "client" if by_peer else "server"},
            )
        )

    def opened(self) -> None:
        """The connection was accepted."""
        self._emit(self._event(round(time.time(), 6), "in", "open", "open", 0, {}))

    def _run(self, direction: _Direction, name: str) -> None:
        ts = round(time.time(), 6)
        try:
            self._split(direction, name, ts)
        except Exception as exc:
            self._fail(direction, name, ts, exc)

    def _fail(self, direction: _Direction, name: str, ts: float, exc: Exception) -> None:
        direction.dead = True
        pending = len(direction.buf)
        direction.buf = bytearray()
        error = str(exc) if isinstance(exc, Malformed) else f"{type(exc).__name__}: {exc}"
        self._emit(self._event(ts, name, "malformed", "malformed", pending, {"error": error}))

    def _split(self, direction: _Direction, name: str, ts: float) -> None:
        raise NotImplementedError

    def _event(self, ts: float, direction: str, kind: str, name: str, size: int, fields: dict[str, Any], **extra: Any) -> Event:
        event: Event = {
            "ts": ts,
            "conn": self.conn,
            "peer": self.peer,
            "proto": self.proto,
            "dir": direction,
            "kind": kind,
            "name": name,
        }
        event.update(extra)
        event["size"] = size
        event["fields"] = fields
        return event


@functools.lru_cache(maxsize=None)
def _method_name(cls: type) -> str:
    # pamqp's "Connection.StartOk" -> AMQP's "connection.start-ok"
    class_name, _, method = cls.name.partition(".")
    words = []
    for ch in method:
        if ch.isupper() and words:
            words.append("-")
        words.append(ch.lower())
    return f"{class_name.lower()}.{''.join(words)}"


#: arguments carrying credentials: replaced by their length
_SECRET_ARGUMENTS = {"response", "challenge", "new_secret"}


class AMQPTap(Tap):
    """The tap of an AMQP 0-9-1 connection: protocol header, then frames."""

    proto = "amqp"

    def _initial_state(self, direction: str) -> str:
        return "header"

    def _resume(self, conn: object) -> None:
        if getattr(conn, "_state", "header") != "header":
            self._in.state = "frames"
            self._out.state = "frames"
        super()._resume(conn)

    def _split(self, direction: _Direction, name: str, ts: float) -> None:
        buf = direction.buf
        pos = 0
        try:
            if direction.state == "header":
                # The client's header, or the server's answer to a bad one.
                if name == "in" or buf[:1] == b"A":
                    if len(buf) < 8:
                        if not b"AMQP".startswith(bytes(buf[:4])):
                            raise Malformed(f"not an AMQP protocol header: {bytes(buf)!r}")
                        return
                    header = bytes(buf[:8])
                    if header[:4] != b"AMQP":
                        raise Malformed(f"not an AMQP protocol header: {header!r}")
                    pos = 8
                    fields = {"protocol": "AMQP", "protocol_id": header[4], "version": f"{header[5]}-{header[6]}-{header[7]}"}
                    self._emit(self._event(ts, name, "frame", "protocol-header", 8, fields, channel=0))
                direction.state = "frames"
            end = len(buf)
            while end - pos >= 7:
                frame_type, channel, size = _amqp_head.unpack_from(buf, pos)
                if frame_type not in (1, 2, 3, 8):
                    raise Malformed(f"unknown frame type {frame_type} at byte {pos}")
                if size > _MAX_AMQP_FRAME:
                    raise Malformed(f"frame size {size} too large")
                frame_end = pos + 7 + size
                if end <= frame_end:
                    break
                if buf[frame_end] != 0xCE:
                    raise Malformed(f"frame end byte {buf[frame_end]:#04x} instead of 0xce")
                payload = bytes(buf[pos + 7 : frame_end])
                pos = frame_end + 1
                kind_name, fields = self._decode(frame_type, payload)
                self._emit(self._event(ts, name, "frame", kind_name, size + 8, fields, channel=channel))
        finally:
            del buf[:pos]

    @staticmethod
    def _decode(frame_type: int, payload: bytes) -> tuple[str, dict[str, Any]]:
        if frame_type == 1:
            if len(payload) < 4:
                raise Malformed("method frame shorter than its method id")
            index = _u32.unpack_from(payload)[0]
            cls = amqp_codec.method_class(index)
            if cls is None:
                raise Malformed(f"unknown method {index >> 16}.{index & 0xFFFF}")
            try:
                method = amqp_codec.decode_method(index, payload)
            except (amqp_codec.DecodeError, KeyError) as exc:
                raise Malformed(f"{_method_name(cls)}: {exc}") from None
            fields = {}
            for slot in cls.__slots__:
                value = getattr(method, slot, None)
                if slot in _SECRET_ARGUMENTS and value is not None:
                    value = f"<{len(value)} bytes>"
                fields[slot] = _jsonable(value)
            return _method_name(cls), fields
        if frame_type == 2:
            if len(payload) < 14:
                raise Malformed("content header shorter than 14 bytes")
            class_id, _weight, body_size = _content_head.unpack_from(payload)
            block = PropertyBlock(payload[12:])
            try:
                spans = block.spans()
                properties = {name: _jsonable(block.get(name)) for name, _bit, _domain in _PROPERTY_FIELDS if name in spans}
            except amqp_codec.DecodeError as exc:
                raise Malformed(f"content header properties: {exc}") from None
            return "content-header", {"class_id": class_id, "body_size": body_size, "properties": properties}
        if frame_type == 3:
            return "content-body", {"length": len(payload), "preview": _preview(payload)}
        return "heartbeat", {}


@functools.lru_cache(maxsize=None)
def _reader(cls: type) -> Any:
    return entity_reader(cls)


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def _api_name(cls: type) -> str:
    name = cls.__name__
    for suffix in ("Request", "Response"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _records_summary(data: bytes | bytearray | memoryview) -> dict[str, int]:
    """Byte size, batch count and record count of a record set, records undecoded."""
    size = len(data)
    pos = batches = records = 0
    while size - pos >= 12:
        length = _i32.unpack_from(data, pos + 8)[0]
        if length < 0 or pos + 12 + length > size:
            break  # a Fetch may end with a partial batch
        magic = data[pos + 16] if size > pos + 16 else -1
        batches += 1
        records += _i32.unpack_from(data, pos + 57)[0] if magic == 2 and length >= 49 else 1
        pos += 12 + length
    return {"bytes": size, "batches": batches, "records": records}


def _error_name(code: ErrorCode) -> str:
    return code.name.upper()


class KafkaTap(Tap):
    """The tap of a Kafka connection: size-prefixed requests and responses.

    Responses are matched to their requests by correlation id (responses
    carry neither API key nor version).

    Args:
        topic_name: Resolves a topic id (Fetch v13+ names topics by id) to
            its name, or ``None``.
    """

    proto = "kafka"

    def __init__(
        self,
        emit: Callable[[Event], None],
        conn: str,
        peer: str,
        *,
        topic_name: Callable[[uuid.UUID], str | None] | None = None,
    ) -> None:
        super().__init__(emit, conn, peer)
        self._topic_name = topic_name
        #: correlation id -> (api key, version, name) of requests awaiting a response
        self._pending: dict[int, tuple[int, int, str]] = {}

    def _split(self, direction: _Direction, name: str, ts: float) -> None:
        buf = direction.buf
        pos = 0
        request = name == "in"
        try:
            end = len(buf)
            while end - pos >= 4:
                size = _i32.unpack_from(buf, pos)[0]
                if size < (8 if request else 4) or size > kafka_protocol.MAX_REQUEST_SIZE:
                    raise Malformed(f"message size {size} out of range")
                if end - pos - 4 < size:
                    break
                payload = bytes(buf[pos + 4 : pos + 4 + size])
                pos += 4 + size
                if request:
                    self._request(ts, payload, size + 4)
                else:
                    self._response(ts, payload, size + 4)
        finally:
            del buf[:pos]

    def _request(self, ts: float, payload: bytes, size: int) -> None:
        api_key, version, correlation_id = _kafka_head.unpack_from(payload)
        try:
            cls = kafka_protocol.request_class(api_key, version)
        except Exception:
            if api_key != 18:
                raise Malformed(f"unknown request: API key {api_key} version {version}") from None
            # KIP-511: a newer ApiVersions than we know is answered in the v0 layout
            self._expect(correlation_id, 18, 0, "ApiVersions")
            self._emit(self._event(ts, "in", "request", "ApiVersions", size, {}, version=version, correlation_id=correlation_id))
            return
        try:
            header, body = kafka_protocol.decode_request(api_key, version, payload)
        except kafka_protocol.ProtocolError as exc:
            raise Malformed(str(exc)) from None
        name = _api_name(cls)
        fields: dict[str, Any] = {"client_id": getattr(header, "client_id", None)}
        fields.update(self._json(body))
        if not (api_key == 0 and getattr(body, "acks", 1) == 0):  # acks=0: no response
            self._expect(correlation_id, api_key, version, name)
        self._emit(self._event(ts, "in", "request", name, size, fields, version=version, correlation_id=correlation_id))

    def _expect(self, correlation_id: int, api_key: int, version: int, name: str) -> None:
        pending = self._pending
        if len(pending) >= _MAX_PENDING:
            pending.pop(next(iter(pending)))
        pending[correlation_id] = (api_key, version, name)

    def _response(self, ts: float, payload: bytes, size: int) -> None:
        correlation_id = _i32.unpack_from(payload)[0]
        entry = self._pending.pop(correlation_id, None)
        if entry is None:  # its request was before the trace began
            self._emit(self._event(ts, "out", "response", "unknown", size, {}, correlation_id=correlation_id))
            return
        api_key, version, name = entry
        try:
            body = self._decode_response(api_key, version, payload)
        except Exception as exc:
            if api_key != 18 or version == 0:
                raise Malformed(f"cannot decode {name} v{version} response: {exc}") from None
            body = self._decode_response(api_key, 0, payload)  # the KIP-511 fallback answer
        fields = self._json(body)
        self._emit(self._event(ts, "out", "response", name, size, fields, version=version, correlation_id=correlation_id))

    @staticmethod
    def _decode_response(api_key: int, version: int, payload: bytes) -> Any:
        cls = kafka_protocol.response_class(api_key, version)
        _header, used = _reader(cls.__header_schema__)(payload, 0)
        body, _ = _reader(cls)(payload, used)
        return body

    def _json(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out: dict[str, Any] = {}
            for name in _field_names(type(value)):
                item = getattr(value, name)
                if isinstance(item, ErrorCode):
                    out[name] = item.value
                    out[name[:-5] + "_name" if name.endswith("_code") else name + "_name"] = _error_name(item)
                elif name == "records" and isinstance(item, (bytes, bytearray, memoryview)):
                    out[name] = _records_summary(item)
                else:
                    out[name] = self._json(item)
            if "topic_id" in out and not out.get("name") and not out.get("topic") and self._topic_name is not None:
                resolved = self._topic_name(getattr(value, "topic_id"))
                if resolved is not None:
                    out["topic"] = resolved
            return out
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, ErrorCode):
            return value.value
        if isinstance(value, enum.Enum):
            return value.value if isinstance(value.value, (int, str)) else value.name
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, (tuple, list)):
            return [self._json(item) for item in value]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return {"length": len(value), "preview": _preview(value, 24)}
        if isinstance(value, datetime.timedelta):
            return int(value.total_seconds() * 1000)
        if isinstance(value, datetime.datetime):
            return int(value.timestamp() * 1000)
        if isinstance(value, uuid.UUID):
            return str(value)
        return str(value)


# ----------------------------------------------------------------- tracer
class Tracer:
    """Where trace events come from: one per gateway (``Gateway.tracer``).

    Tracing is on exactly while at least one sink is registered: the first
    :meth:`add_sink` attaches a tap to every open connection (and to every
    new one), removing the last sink detaches them, so with no sink the
    connections carry no tap and pay nothing.

    ``add_sink``/``remove_sink`` must be called in the server's Trio thread
    (from another thread, through ``wiregate.testing.Server.call``), or
    before the gateway runs.  A sink is called synchronously in that thread
    with each event dict; it must be quick, must not block and must not
    keep the dict for mutation (the same dict goes to every sink).  A sink
    that raises is logged and removed.

    Injected faults (``broker.faults``, when the broker has them) appear as
    ``kind: "fault"`` events while tracing is on.

    Args:
        broker: The core broker; used for fault events and to name topics
            that Kafka requests refer to by id.
    """

    def __init__(self, broker: object | None = None) -> None:
        self.broker = broker
        self._sinks: tuple[Sink, ...] = ()
        self._handlers: dict[Any, None] = {}
        self._by_peer: dict[str, str] = {}
        self._counters: collections.Counter[str] = collections.Counter()
        self._faults: Any = None

    @property
    def active(self) -> bool:
        """True while at least one sink is registered."""
        return bool(self._sinks)

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The registered sinks, in registration order."""
        return self._sinks

    def add_sink(self, sink: Sink) -> None:
        """Register ``sink``; the first one turns tracing on.

        Args:
            sink: Called as ``sink(event)`` with every event from now on.
        """
        first = not self._sinks
        self._sinks = (*self._sinks, sink)
        if first:
            self._activate()

    def remove_sink(self, sink: Sink) -> bool:
        """Unregister ``sink``; removing the last one turns tracing off.

        Returns:
            Whether ``sink`` was registered.
        """
        sinks = list(self._sinks)
        try:
            sinks.remove(sink)
        except ValueError:
            return False
        self._sinks = tuple(sinks)
        if not sinks:
            self._deactivate()
        return True

    def emit(self, event: Event) -> None:
        """Hand ``event`` to every sink."""
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as exc:
                logger.error("trace sink %r failed and was removed: %s: %s", sink, type(exc).__name__, exc)
                self.remove_sink(sink)

    def close(self) -> None:
        """The gateway is shutting down: end every :class:`Subscription`."""
        for sink in self._sinks:
            if isinstance(sink, Subscription):
                sink.close()

    # -------------------------------------------------- gateway side
    def register(self, handler: Any) -> str:
        """A connection was accepted: give it an id (and a tap while tracing).

        Args:
            handler: A ``ConnectionHandler`` (``protocol``, ``peer``, ``tap``).

        Returns:
            Its connection id, e.g. ``"kafka#2"``, also set as
            ``handler.conn_id``.
        """
        protocol = handler.protocol
        self._counters[protocol] += 1
        conn_id = f"{protocol}#{self._counters[protocol]}"
        handler.conn_id = conn_id
        self._handlers[handler] = None
        self._by_peer[handler.peer] = conn_id
        if self._sinks:
            self._hook_faults()
            tap = self._new_tap(handler)
            handler.tap = tap
            if tap is not None:
                tap.opened()
        return conn_id

    def unregister(self, handler: Any) -> None:
        """A connection ended: emit its ``close`` event while tracing."""
        self._handlers.pop(handler, None)
        if self._by_peer.get(handler.peer) == getattr(handler, "conn_id", None):
            del self._by_peer[handler.peer]
        tap = handler.tap
        if tap is not None:
            handler.tap = None
            tap.closed(by_peer=bool(getattr(handler, "peer_gone", False)))

    def _new_tap(self, handler: Any) -> Tap | None:
        if handler.protocol == "amqp":
            return AMQPTap(self.emit, handler.conn_id, handler.peer)
        if handler.protocol == "kafka":
            return KafkaTap(self.emit, handler.conn_id, handler.peer, topic_name=self._topic_name)
        return None

    def _activate(self) -> None:
        self._hook_faults()
        for handler in self._handlers:
            tap = self._new_tap(handler)
            if tap is not None:
                tap.resume(getattr(handler, "protocol_connection", None))
            handler.tap = tap

    def _deactivate(self) -> None:
        for handler in self._handlers:
            handler.tap = None
        self._unhook_faults()

    def _topic_name(self, topic_id: uuid.UUID) -> str | None:
        topics = getattr(self.broker, "topics", None)
        topic = getattr(topics, "by_id", {}).get(topic_id)
        return getattr(topic, "name", None)

    # ------------------------------------------------------- faults
    def _hook_faults(self) -> None:
        faults = getattr(self.broker, "faults", None)
        if faults is self._faults:
            return
        self._unhook_faults()
        if faults is not None and hasattr(faults, "add_listener"):
            faults.add_listener(self._on_fault)
            self._faults = faults

    def _unhook_faults(self) -> None:
        faults, self._faults = self._faults, None
        if faults is not None:
            try:
                faults.remove_listener(self._on_fault)
            except Exception:  # already gone
                pass

    def _on_fault(self, hit: dict[str, Any]) -> None:
        if not self._sinks:
            return
        peer = str(hit.get("peer") or "")
        proto = hit.get("protocol")
        event: Event = {
            "ts": round(time.time(), 6),
            "conn": self._by_peer.get(peer, peer or "?"),
            "peer": peer,
            "proto": proto,
            "dir": "out",
            "kind": "fault",
            "name": str(hit.get("name") or hit.get("api") or hit.get("method") or hit.get("action") or "fault"),
        }
        for key in ("channel", "version", "correlation_id"):
            if hit.get(key) is not None:
                event[key] = hit[key]
        event["size"] = 0
        event["fields"] = {key: _jsonable(value) for key, value in hit.items() if key not in ("peer", "protocol", "name")}
        self.emit(event)


# ------------------------------------------------------------------ sinks
class Subscription:
    """A bounded buffer between the tracer and one slow reader (an SSE client).

    As a sink it never blocks: when ``maxlen`` events are waiting, new ones
    are dropped and counted.  The reader waits with :meth:`wait` and takes
    everything with :meth:`drain`.

    Args:
        proto: Keep only events of this protocol (``"amqp"``, ``"kafka"``);
            ``None`` keeps all.
        maxlen: How many events may wait.
    """

    def __init__(self, *, proto: str | None = None, maxlen: int = 4096) -> None:
        self.proto = proto
        self.maxlen = maxlen
        #: events dropped since the last drain / in total
        self.dropped = 0
        self.dropped_total = 0
        self.closed = False
        self._events: collections.deque[Event] = collections.deque()
        self._ready = trio.Event()

    def __call__(self, event: Event) -> None:
        if self.proto is not None and event.get("proto") != self.proto:
            return
        if len(self._events) >= self.maxlen:
            self.dropped += 1
            self.dropped_total += 1
            return
        self._events.append(event)
        self._ready.set()

    def close(self) -> None:
        """Wake the reader for the last time."""
        self.closed = True
        self._ready.set()

    async def wait(self, timeout: float) -> None:
        """Until events wait, the subscription is closed, or ``timeout`` passed."""
        with trio.move_on_after(timeout):
            await self._ready.wait()

    def drain(self) -> tuple[list[Event], int]:
        """Take the waiting events and the number dropped since the last drain."""
        events = list(self._events)
        self._events.clear()
        dropped, self.dropped = self.dropped, 0
        if not self.closed:
            self._ready = trio.Event()
        return events, dropped


class JSONLinesSink:
    """Writes each event as one JSON line (``--trace-file``); line-buffered.

    Args:
        path: The file; created or truncated.

    Raises:
        OSError: The file cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: TextIO | None = open(self.path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115

    def __call__(self, event: Event) -> None:
        if self._file is not None:
            self._file.write(json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")

    def close(self) -> None:
        """Close the file; later events are ignored."""
        file, self._file = self._file, None
        if file is not None:
            file.close()


def use_color(stream: TextIO) -> bool:
    """Whether to colour output to ``stream``, as Python itself decides.

    ``NO_COLOR`` (non-empty) turns colour off, else ``FORCE_COLOR``
    (non-empty) turns it on, else ``TERM=dumb`` turns it off, else colour
    is used when the stream is a terminal.
    """
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


class TracePrinter:
    """Writes one readable line per event (``wiregate serve --trace``).

    Args:
        stream: Where to write; ``sys.stdout`` (looked up at each write)
            when ``None``.
        color: ANSI colours; decided by :func:`use_color` when ``None``.
        hold: Keep lines back until :meth:`release` (the ready line must
            be the first line on stdout).
    """

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None, hold: bool = False) -> None:
        self._stream = stream
        out = self.stream
        self.color = use_color(out) if color is None else color
        encoding = getattr(out, "encoding", None) or "ascii"
        try:
            "→←".encode(encoding)
            self.unicode = True
        except (UnicodeEncodeError, LookupError):
            self.unicode = False
        self._held: list[str] | None = [] if hold else None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def __call__(self, event: Event) -> None:
        line = format_event(event, color=self.color, unicode=self.unicode)
        if self._held is not None:
            if len(self._held) < 100000:
                self._held.append(line)
            return
        stream = self.stream
        stream.write(line + "\n")
        stream.flush()

    def release(self) -> None:
        """Write the held lines and stop holding."""
        held, self._held = self._held, None
        if held:
            stream = self.stream
            stream.write("".join(line + "\n" for line in held))
            stream.flush()


# -------------------------------------------------------------- formatter
_RESET = "\x1b[0m"
_DIM = "2"
_BOLD = "1"
_RED = "1;31"
_GREEN = "32"
_BLUE = "34"
_CYAN = "36"
_YELLOW = "33"
_MAGENTA = "1;35"

_ABBREVIATIONS = {"consumer_tag": "ctag", "delivery_tag": "dtag", "correlation_id": "corr"}
#: AMQP arguments shown even when empty (the default exchange is "")
_ALWAYS_SHOWN = {"exchange", "routing_key", "queue"}
_HIDDEN = {"ticket"}
_PEER_PROPERTIES = ("product", "version", "platform", "connection_name")
_VALUE_WIDTH = 80


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}{_RESET}" if color else text


def _short(value: Any) -> str:
    if isinstance(value, str):
        text = value if value and " " not in value and '"' not in value else json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _amqp_details(event: Event, color: bool) -> list[str]:
    name = event.get("name")
    fields = event.get("fields") or {}
    if name == "protocol-header":
        return [f"{fields.get('protocol', 'AMQP')} {fields.get('version', '?')}"]
    if name == "content-body":
        return [f"{fields.get('length', 0)} B", json.dumps(fields.get("preview", ""), ensure_ascii=False)]
    if name == "content-header":
        parts = [f"body_size={fields.get('body_size')}"]
        for key, value in (fields.get("properties") or {}).items():
            parts.append(f"{key}={_short(value)}")
        return parts
    parts = []
    for key, value in fields.items():
        if key in _HIDDEN or value is None or value == {} or (key.startswith("reserved")):
            continue
        label = _ABBREVIATIONS.get(key, key)
        if isinstance(value, bool):
            if value:
                parts.append(label)
            continue
        if value == "" and key not in _ALWAYS_SHOWN:
            continue
        if key in ("client_properties", "server_properties") and isinstance(value, dict):
            value = {k: value[k] for k in _PEER_PROPERTIES if k in value}
        text = f"{label}={_short(value)}"
        if key == "reply_code" and value != 200:
            text = _paint(text, _RED, color)
        parts.append(text)
    return parts


#: Kafka keys of topic arrays, topic names and partition arrays, in the schemas' spellings
_TOPIC_ARRAYS = ("topic_data", "topics", "responses", "topic")
_TOPIC_NAMES = ("name", "topic", "topic_name")
_PARTITION_ARRAYS = ("partition_data", "partitions", "partition_responses", "partition_indexes")
_PARTITION_INDEXES = ("index", "partition_index", "partition")
_OFFSETS = ("base_offset", "fetch_offset", "committed_offset", "offset")
#: top-level Kafka fields worth a place on the line: label, or None to skip zero values
_KAFKA_SCALARS = {
    "acks": "acks",
    "transactional_id": "txn",
    "group_id": "group",
    "generation_id": "gen",
    "member_id": "member",
    "group_instance_id": "instance",
    "protocol_type": "protocol_type",
    "protocol_name": "protocol",
    "leader": "leader",
    "key": "key",
    "coordinator_keys": "keys",
    "node_id": "node",
    "host": "host",
    "port": "port",
    "producer_id": "pid",
    "max_wait": "max_wait_ms",
    "session_id": "session",
}


def _kafka_details(event: Event, color: bool) -> list[str]:
    fields = event.get("fields") or {}
    parts: list[str] = []
    if event.get("kind") == "request" and fields.get("client_id"):
        parts.append(f"client={_short(fields['client_id'])}")
    for key, label in _KAFKA_SCALARS.items():
        value = fields.get(key)
        if value is None or value == "" or value == [] or (key in ("session_id", "producer_id") and value in (0, -1)):
            continue
        parts.append(f"{label}={_short(value)}")
    if isinstance(fields.get("api_keys"), list):
        parts.append(f"apis={len(fields['api_keys'])}")
    if isinstance(fields.get("brokers"), list):
        parts.append(f"brokers={len(fields['brokers'])}")
    errors: list[str] = []
    topics, records_bytes = _kafka_topics(fields, errors)
    if topics:
        parts.append("topics=" + ",".join(topics))
    if records_bytes is not None:
        parts.append(f"records {records_bytes} B")
    throttle = fields.get("throttle_time")
    if isinstance(throttle, int) and throttle > 0:
        parts.append(f"throttle={throttle}ms")
    if event.get("kind") == "response":
        _collect_errors(fields, "", errors, top=True)
        if errors:
            parts.append(_paint("error=" + ",".join(dict.fromkeys(errors)), _RED, color))
        elif _has_error_code(fields):
            parts.append(_paint("error=NONE", _GREEN, color))
    return parts


def _topic_label(topic: dict[str, Any]) -> str:
    for key in _TOPIC_NAMES:
        if isinstance(topic.get(key), str) and topic[key]:
            return topic[key]
    if topic.get("topic_id"):
        return str(topic["topic_id"])[:8]
    return "?"


def _kafka_topics(fields: dict[str, Any], errors: list[str]) -> tuple[list[str], int | None]:
    tokens: list[str] = []
    records_bytes: int | None = None
    for array_key in _TOPIC_ARRAYS:
        array = fields.get(array_key)
        if not isinstance(array, list) or not array or not isinstance(array[0], dict):
            continue
        for topic in array:
            label = _topic_label(topic)
            if topic.get("error_code"):
                errors.append(f"{label}:{topic.get('error_name', topic['error_code'])}")
            partitions = next((topic[k] for k in _PARTITION_ARRAYS if isinstance(topic.get(k), list)), None)
            if not partitions:
                tokens.append(label)
                continue
            plain: list[str] = []
            for partition in partitions:
                if not isinstance(partition, dict):
                    plain.append(str(partition))
                    continue
                index = next((partition[k] for k in _PARTITION_INDEXES if k in partition), "?")
                detail = ""
                offset = next((partition[k] for k in _OFFSETS if isinstance(partition.get(k), int)), None)
                if offset is not None and offset >= 0:
                    detail += f"@{offset}"
                records = partition.get("records")
                if isinstance(records, dict):
                    detail += f":{records.get('records', 0)}"
                    records_bytes = (records_bytes or 0) + int(records.get("bytes", 0))
                if partition.get("error_code"):
                    errors.append(f"{label}[{index}]:{partition.get('error_name', partition['error_code'])}")
                if detail:
                    tokens.append(f"{label}[{index}]{detail}")
                else:
                    plain.append(str(index))
            if plain:
                tokens.append(f"{label}[{','.join(plain)}]")
        break
    return tokens, records_bytes


def _collect_errors(value: Any, where: str, errors: list[str], *, top: bool = False) -> None:
    # Errors outside topic arrays (those are named by _kafka_topics).
    if isinstance(value, dict):
        code = value.get("error_code")
        if isinstance(code, int) and code != 0:
            errors.append(f"{where}{value.get('error_name', code)}")
        for key, item in value.items():
            if top and key in _TOPIC_ARRAYS:
                continue
            if isinstance(item, (dict, list)):
                _collect_errors(item, where, errors)
    elif isinstance(value, list):
        for item in value:
            _collect_errors(item, where, errors)


def _has_error_code(value: Any) -> bool:
    if isinstance(value, dict):
        return "error_code" in value or any(_has_error_code(v) for v in value.values() if isinstance(v, (dict, list)))
    if isinstance(value, list):
        return any(_has_error_code(v) for v in value)
    return False


def format_event(event: Event, *, color: bool = False, unicode: bool = True) -> str:
    """One readable line for an event (what ``wiregate serve --trace`` prints).

    ``12:00:00.123 amqp#3 → basic.publish ch=1 exchange="" routing_key=q (40 B)``;
    ``→`` is client to server, ``←`` server to client.

    Args:
        event: A trace event (also one read back from a ``--trace-file``).
        color: Add ANSI colours (errors in red).
        unicode: Use arrows; ``->``/``<-`` otherwise.
    """
    ts = event.get("ts")
    try:
        stamp = datetime.datetime.fromtimestamp(float(ts)).strftime("%H:%M:%S.%f")[:-3]  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        stamp = "--:--:--.---"
    kind = event.get("kind")
    direction = event.get("dir")
    name = str(event.get("name", "?"))
    if kind == "open":
        arrow, arrow_color = "+", _DIM
    elif kind == "close":
        arrow, arrow_color = "x" if not unicode else "×", _DIM
    elif kind == "fault":
        arrow, arrow_color = "!", _MAGENTA
    elif direction == "in":
        arrow, arrow_color = ("→" if unicode else "->"), _GREEN
    else:
        arrow, arrow_color = ("←" if unicode else "<-"), _BLUE
    parts = [_paint(stamp, _DIM, color), _paint(str(event.get("conn", "?")), _CYAN, color), _paint(arrow, arrow_color, color)]
    fields = event.get("fields") or {}
    if kind in ("open", "close"):
        parts.append(_paint(f"{name} {event.get('peer', '')}", _DIM, color))
        if kind == "close" and fields.get("by"):
            parts.append(_paint(f"by {fields['by']}", _DIM, color))
        return " ".join(parts)
    if kind == "fault":
        parts.append(_paint(f"FAULT {name}", _MAGENTA, color))
        parts.extend(_paint(f"{key}={_short(value)}", _MAGENTA, color) for key, value in fields.items())
        return " ".join(parts)
    if kind == "malformed":
        parts.append(_paint(f"MALFORMED ({direction})", _RED, color))
        parts.append(_paint(str(fields.get("error", "")), _RED, color))
        return " ".join(parts)
    if event.get("proto") == "kafka":
        head = f"{name} v{event.get('version', '?')}"
        parts.append(_paint(head, _BOLD if kind == "request" else _YELLOW, color))
        parts.append(f"corr={event.get('correlation_id', '?')}")
        details = _kafka_details(event, color)
    else:
        parts.append(_paint(name, _BOLD if direction == "in" else _YELLOW, color))
        channel = event.get("channel")
        if channel:
            parts.append(f"ch={channel}")
        details = _amqp_details(event, color)
    parts.extend(details)
    parts.append(_paint(f"({event.get('size', 0)} B)", _DIM, color))
    return " ".join(parts)
