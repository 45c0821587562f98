"""The AMQP 0-9-1 connection: a sans-IO state machine in the style of h11.

Bytes go in through ``receive_data``; replies, deliveries and closes come
out of ``data_to_send``.  Core calls happen inside.  Nothing here touches a
socket or a clock: the gateway owns those (heartbeat timers, deadlines).
When another connection's activity produces output for this one (a
delivery), ``on_wake`` is called so the gateway knows to flush.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Callable

from pamqp import commands

import wiregate
from wiregate.core import Broker, CoreError

from . import codec, wire
from .channel import MAX_MESSAGE_SIZE, Channel
from .faults import method_fields
from .replies import (
    ACCESS_REFUSED,
    CHANNEL_ERROR,
    COMMAND_INVALID,
    CONNECTION_FORCED,
    FRAME_ERROR,
    NOT_ALLOWED,
    SHUTDOWN_TEXT,
    UNEXPECTED_FRAME,
    AMQPError,
    channel_error,
    connection_error,
)

log = logging.getLogger("wiregate.amqp")

#: RabbitMQ's ?SILENT_CLOSE_DELAY: a client failing the handshake waits this
#: long before its socket closes (no connection.close is sent)
SILENT_CLOSE_DELAY = 3.0
#: connection.close text when the broker is reset under an open connection
RESET_TEXT = "CONNECTION_FORCED - broker reset: every vhost was emptied for the next test"

SERVER_CHANNEL_MAX = 2047
SERVER_FRAME_MAX = 131072
SERVER_HEARTBEAT = 60
CHANNEL_MIN = 1

#: RabbitMQ 3.10's capabilities table, all nine of them
CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "consumer_priorities": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
    "direct_reply_to": True,
}

_frame_head = struct.Struct(">BHI")
_u32 = struct.Struct(">I")
_content_header = struct.Struct(">HHQ")
#: a content header frame's head, then its class id, weight and body size
_header_frame = struct.Struct(">BHIHHQ")

# accepted protocol headers (RabbitMQ also takes 0-9 and the 0-9-1 variant
# some old clients send); anything else is answered with ours, then closed
_ACCEPTED_HEADERS = (wire.PROTOCOL_HEADER, b"AMQP\x01\x01\x00\x09", b"AMQP\x01\x01\x09\x01")


def server_properties() -> dict[str, Any]:
    return {
        "capabilities": dict(CAPABILITIES),
        "cluster_name": "wiregate",
        "copyright": "wiregate contributors",
        "information": f"wiregate {wiregate.__version__}: AMQP 0-9-1 as RabbitMQ 3.10 speaks it",
        "platform": "Python/Trio",
        "product": "RabbitMQ",
        "version": "3.10.8",
    }


class AMQPConnection:
    """One client connection.

    Args:
        broker: the shared core engine.
        peer: the client's address, for logs.
        on_wake: called when output appears outside ``receive_data``.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        peer: str = "",
        on_wake: Callable[[], None] | None = None,
        name: str = "",
        connection_max: int | None = None,
    ) -> None:
        self.broker = broker
        #: RabbitMQ's connection_max: open connections allowed (None: no limit)
        self.connection_max = connection_max
        self.peer = peer
        self.name = name or peer
        self.on_wake = on_wake or (lambda: None)
        self.frame_max = SERVER_FRAME_MAX
        self.channel_max = SERVER_CHANNEL_MAX
        self.heartbeat = 0
        self.channels: dict[int, Channel] = {}
        self.capabilities: dict[str, Any] = {}
        self.client_properties: dict[str, Any] = {}
        self.user: str | None = None
        self.vhost: Any = None
        self.closed = False
        self.handshake_done = False
        self._state = "header"  # header start_ok tune_ok open opened closing
        #: bytes received and not yet processed (a partial frame, or more
        #: while reading is paused); kept as bytes so a frame's payload is
        #: one slice, not a copy of a copy
        self._buf = b""
        #: decoded basic.publish arguments by their bytes: a few distinct ones carry most traffic
        self._publish_args: dict[bytes, tuple[str, str, bool]] = {}
        #: content property blocks by their bytes, shared between messages
        #: (blocks are immutable; see Channel._complete_publish)
        self.property_blocks: dict[bytes, Any] = {}
        self._out: list[bytes] = []
        self._in_receive = False
        self._released = False
        self._blocked_sent = False
        #: True while a resource alarm blocks this (publishing) connection:
        #: the gateway stops reading the socket, buffered frames wait
        self.reading_paused = False
        #: numbers of channels closed on this connection (close on them is answered)
        self._closed_channels: set[int] = set()
        #: seconds the gateway waits before closing the socket once ``closed``
        self.close_delay = 0.0
        #: (channel, payload) of a method a fault rule delays; reading waits for it
        self._held: tuple[int, bytes] | None = None
        #: the held method is being carried out: fault rules must not see it twice
        self._fault_pass = False

    # ---------------------------------------------------------------- I/O
    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; ``b""`` means the peer closed."""
        if self.closed:
            return
        if not data:
            self.connection_lost()
            return
        self._buf = self._buf + data if self._buf else data
        if self.reading_paused:
            return
        self._guarded(self._process_batch)

    def _process_batch(self) -> None:
        self._process()
        if self.vhost is not None:
            self.vhost.write_batch += 1

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run input processing; an error closes this connection with its code."""
        self._in_receive = True
        try:
            step()
        except AMQPError as error:
            self._fail(error)
        except Exception:  # a bug must cost one connection, not the server
            log.exception("internal error on AMQP connection %s", self.name)
            self._fail(connection_error(541, "INTERNAL_ERROR"))
        finally:
            self._in_receive = False

    @property
    def wants_more(self) -> bool:
        """In the middle of something: a partial frame, or a message whose
        content frames have not all arrived (never while reading is paused)."""
        if self.reading_paused or self.closed:
            return False
        if self._buf:
            return True
        for channel in self.channels.values():
            if channel._expect != "method":
                return True
        return False

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        self._out = []
        return b"".join(out)

    def send(self, data: bytes) -> None:
        if not self._out and not self._in_receive:
            self._out.append(data)
            self.on_wake()
        else:
            self._out.append(data)

    def send_parts(self, parts: list[bytes]) -> None:
        wake = not self._out and not self._in_receive
        self._out.extend(parts)
        if wake:
            self.on_wake()

    def resource_alarm(self, reason: str | None) -> None:
        """The broker's resource alarm was raised (reason) or cleared (None).

        As in RabbitMQ, a connection that publishes during an alarm is
        blocked: it is told so with connection.blocked (if it announced the
        ``connection.blocked`` capability) and nothing more is read from it —
        its publish completes only when the alarm clears.  Connections that
        only consume are never blocked.
        """
        if reason is not None or not self.reading_paused and not self._blocked_sent:
            return
        if self._blocked_sent:
            self._blocked_sent = False
            self.send(wire.method(0, wire.CONNECTION_UNBLOCKED))
        if self.reading_paused and self._held is None:
            self.reading_paused = False
            self._guarded(self._process)
            self.on_wake()

    def publishing(self) -> None:
        """Called by a channel on basic.publish during an alarm: block."""
        reason = self.broker.blocked_reason
        if reason is None:
            return
        self.reading_paused = True
        if not self._blocked_sent and self.capabilities.get("connection.blocked"):
            self._blocked_sent = True
            self.send(wire.method(0, wire.CONNECTION_BLOCKED, wire.shortstr(reason)))

    def heartbeat_frame(self) -> bytes:
        return wire.HEARTBEAT_FRAME

    def shutdown(self, reply_code: int = CONNECTION_FORCED, reply_text: str = SHUTDOWN_TEXT) -> None:
        """Begin a server-initiated close (broker shutdown)."""
        if self.closed:
            return
        if self._state != "opened":
            self._release()
            self.closed = True
            return
        self._release()
        self._state = "closing"
        self.send(wire.close(0, reply_code, reply_text, 0))

    def broker_reset(self) -> None:
        """The broker was emptied (a new test began): close with 320, as for a deleted vhost."""
        self.shutdown(CONNECTION_FORCED, RESET_TEXT)
        self.on_wake()

    def connection_lost(self) -> None:
        """The socket is gone: release every resource this connection held."""
        self._release()
        self.closed = True

    # ------------------------------------------------------------ framing
    def _process(self) -> None:
        buf = self._buf
        if self._state == "header":
            if len(buf) < 8:
                return
            header = buf[:8]
            buf = self._buf = buf[8:]
            if header not in _ACCEPTED_HEADERS:
                log.info("connection %s: bad protocol header %r, answering with ours", self.name, header)
                self._out.append(wire.PROTOCOL_HEADER)
                self.closed = True
                return
            self._out.append(wire.connection_start(server_properties(), "AMQPLAIN PLAIN", "en_US"))
            self._state = "start_ok"
        pos = 0
        end = len(buf)
        limit = self.frame_max
        broker = self.broker
        # whole messages may be taken in one step (see _publish_whole) unless
        # publishers are blocked or a fault rule may want to see the method;
        # neither changes while this buffer is processed
        whole = broker.blocked_reason is None and not broker.faults.active.get("amqp")
        try:
            while not self.closed and not self.reading_paused and end - pos >= 7:
                frame_type, channel, size = _frame_head.unpack_from(buf, pos)
                # RabbitMQ's own bound: payload > frame_max (it allows an 8-byte fudge)
                if size > limit:
                    raise connection_error(
                        FRAME_ERROR,
                        f"type {frame_type}, all octets = <<>>: {{frame_too_large,{size},{limit - wire.FRAME_OVERHEAD}}}",
                    )
                frame_end = pos + 7 + size
                if end <= frame_end:
                    break
                if buf[frame_end] != wire.FRAME_END:
                    raise connection_error(
                        FRAME_ERROR,
                        f"type {frame_type}, all octets = {codec.erlang_binary(buf[pos + 7:frame_end])}: "
                        f"{{invalid_frame_end_marker,{buf[frame_end]}}}",
                    )
                if whole and frame_type == 1 and buf[pos + 10] == 40 and buf[pos + 8] == 60 and buf[pos + 9] == 0 and buf[pos + 7] == 0:
                    # basic.publish: with its header and body already here
                    # the whole message is taken in one step (the common case)
                    after = self._publish_whole(buf, pos, frame_end, end, channel)
                    if after:
                        pos = after
                        continue
                payload = buf[pos + 7 : frame_end]
                pos = frame_end + 1
                self._frame(frame_type, channel, payload)
        finally:
            if pos:
                self._buf = buf[pos:]

    def _publish_whole(self, buf: bytes, pos: int, method_end: int, end: int, number: int) -> int:
        """Take a basic.publish whose content header and single body frame
        follow it in ``buf``; returns the position after them, or 0 when
        anything is unusual (the frames then go one by one through
        :meth:`_frame`, which raises the exact error).  The caller checked
        that publishers are not blocked and no fault rule is active."""
        channel = self.channels.get(number)
        if channel is None or channel._expect != "method" or channel.state != "open" or self._state != "opened":
            return 0
        head = method_end + 1
        if end - head < 19:
            return 0
        # the content header frame's head and its class, weight and body size
        frame_type, channel_number, size, class_id, _weight, body_size = _header_frame.unpack_from(buf, head)
        head_end = head + 7 + size
        if (
            frame_type != 2
            or channel_number != number
            or size < 14
            or size > self.frame_max
            or class_id != 60
            or body_size > MAX_MESSAGE_SIZE
            or end <= head_end
            or buf[head_end] != 0xCE
        ):
            return 0
        after = head_end + 1
        if body_size:
            if end - after < 7:
                return 0
            frame_type, channel_number, size = _frame_head.unpack_from(buf, after)
            body_end = after + 7 + size
            if frame_type != 3 or channel_number != number or size != body_size or size > self.frame_max or end <= body_end or buf[body_end] != 0xCE:
                return 0
            body = buf[after + 7 : body_end]
            after = body_end + 1
        else:
            body = b""
        args = buf[pos + 11 : method_end]
        publish = self._publish_args.get(args)
        if publish is None:
            try:
                n = args[2]
                exchange = args[3 : 3 + n].decode("utf-8")
                at = 3 + n
                n = args[at]
                routing_key = args[at + 1 : at + 1 + n].decode("utf-8")
                bits = args[at + 1 + n]
            except (IndexError, UnicodeDecodeError):
                return 0
            if bits & 2:
                return 0
            publish = (exchange, routing_key, bool(bits & 1))
            if len(self._publish_args) >= 256:
                self._publish_args.clear()
            self._publish_args[args] = publish
        try:
            channel.publish_message(publish, buf[head + 19 : head_end], body)
        except AMQPError as error:
            self._channel_failed(channel, error)
        return after

    def _frame(self, frame_type: int, channel_number: int, payload: bytes) -> None:
        if self._state == "closing":
            # after our connection.close only close/close-ok matter
            if frame_type == wire.FRAME_METHOD and channel_number == 0 and len(payload) >= 4:
                index = _u32.unpack_from(payload)[0]
                if index == wire.CONNECTION_CLOSE_OK:
                    self.closed = True
                elif index == wire.CONNECTION_CLOSE:
                    self._out.append(wire.method(0, wire.CONNECTION_CLOSE_OK))
                    self.closed = True
            return
        if frame_type == wire.FRAME_METHOD:
            if len(payload) < 4:
                raise connection_error(FRAME_ERROR, "method frame too short")
            index = _u32.unpack_from(payload)[0]
            if self.broker.faults.active.get("amqp") and self._fault(channel_number, index, payload):
                return
            if channel_number == 0:
                self._connection_method(index, payload)
                return
            if self._state != "opened":
                raise connection_error(CHANNEL_ERROR, f"unexpected method in connection state {self._state}", index)
            channel = self.channels.get(channel_number)
            if channel is None:
                if channel_number in self._closed_channels:
                    # RabbitMQ still knows a channel it just closed: close is
                    # answered, close-ok ignored
                    if index == wire.CHANNEL_CLOSE:
                        self._out.append(wire.method(channel_number, wire.CHANNEL_CLOSE_OK))
                        return
                    if index == wire.CHANNEL_CLOSE_OK:
                        return
                self._open_channel(channel_number, index)
                return
            try:
                channel.handle_method(index, payload)
            except AMQPError as error:
                self._channel_failed(channel, error)
        elif frame_type == wire.FRAME_HEADER or frame_type == wire.FRAME_BODY:
            if channel_number == 0:
                raise connection_error(UNEXPECTED_FRAME, f"type {frame_type}, all octets = {codec.erlang_binary(payload)}")
            if self._state != "opened":
                raise connection_error(UNEXPECTED_FRAME, "expected method frame, got non method frame instead")
            channel = self.channels.get(channel_number)
            if channel is None:
                raise connection_error(UNEXPECTED_FRAME, "expected method frame, got non method frame instead")
            try:
                if frame_type == wire.FRAME_HEADER:
                    channel.handle_header(payload)
                else:
                    channel.handle_body(payload)
            except AMQPError as error:
                self._channel_failed(channel, error)
        elif frame_type == wire.FRAME_HEARTBEAT:
            if channel_number != 0:
                raise connection_error(UNEXPECTED_FRAME, f"type {frame_type}, all octets = {codec.erlang_binary(payload)}")
        else:
            raise connection_error(FRAME_ERROR, f"type {frame_type}, all octets = {codec.erlang_binary(payload)}: unknown_frame")

    # ------------------------------------------------------------ faults
    def _fault(self, channel_number: int, index: int, payload: bytes) -> bool:
        """Apply the fault rule matching this method, if any; True when it replaces the method."""
        if self._fault_pass:
            self._fault_pass = False
            return False
        vhost = self.vhost.name if self.vhost is not None else None
        rule = self.broker.faults.match("amqp", method_fields(index, channel_number, payload, vhost), self.peer)
        if rule is None or rule.action == "observe":
            return False
        action = rule.action
        options = rule.options
        if action == "delay":
            self._held = (channel_number, payload)
            self.reading_paused = True
            scheduler = self.broker.scheduler
            scheduler.call_at(scheduler.now() + options["delay_ms"] / 1000, self._release_held)
            return True
        if action == "drop":
            log.info("connection %s dropped by fault rule %d", self.name, rule.id)
            self._release()
            self.closed = True
            return True
        if action == "nack":
            channel = self.channels.get(channel_number)
            if channel is not None:
                channel.fault_nack = True
            return False
        if action == "close_channel" and channel_number != 0:
            channel = self.channels.get(channel_number)
            if channel is None and index == wire.CHANNEL_OPEN:
                self._open_channel(channel_number, index)
                channel = self.channels[channel_number]
            if channel is not None:
                self._channel_failed(channel, channel_error(options["reply_code"], options["reply_text"], index))
                return True
        raise connection_error(options["reply_code"], options["reply_text"], index)

    def _release_held(self) -> None:
        held, self._held = self._held, None
        self.reading_paused = False
        if held is None or self.closed:
            return
        def step() -> None:
            self._fault_pass = True
            try:
                self._frame(wire.FRAME_METHOD, *held)
                self._process()
            finally:
                self._fault_pass = False

        self._guarded(step)
        self.on_wake()

    def decode_method(self, index: int, payload: bytes) -> Any:
        if codec.method_class(index) is None:
            # RabbitMQ 3.10 crashes the connection without a close here; we
            # close it properly (see compat/DIVERGENCES.md)
            raise connection_error(COMMAND_INVALID, f"unknown method {index >> 16}.{index & 0xFFFF}", index)
        try:
            return codec.decode_method(index, payload)
        except codec.DecodeError:
            raise connection_error(FRAME_ERROR, f"cannot decode {codec.erlang_binary(payload[4:])}", index) from None

    # ------------------------------------------------------------ channels
    def _open_channel(self, number: int, index: int) -> None:
        if index != wire.CHANNEL_OPEN:
            raise connection_error(CHANNEL_ERROR, "expected 'channel.open'", index)
        if len(self.channels) >= self.channel_max:
            raise connection_error(
                NOT_ALLOWED,
                f"number of channels opened ({len(self.channels)}) has reached the negotiated channel_max ({self.channel_max})",
            )
        self._closed_channels.discard(number)
        self.channels[number] = Channel(self, number)
        self._out.append(wire.method(number, wire.CHANNEL_OPEN_OK, b"\x00\x00\x00\x00"))

    def release_channel(self, number: int) -> None:
        self.channels.pop(number, None)
        self._closed_channels.add(number)

    def close_channel_by_client(self, channel: Channel) -> None:
        channel.release()
        self.release_channel(channel.number)
        self._out.append(wire.method(channel.number, wire.CHANNEL_CLOSE_OK))

    def _channel_failed(self, channel: Channel, error: AMQPError) -> None:
        if error.hard:
            raise error
        log.info("connection %s channel %d: %s", self.name, channel.number, error.text)
        channel.release()
        channel.state = "closing"
        self.send(wire.close(channel.number, error.code, error.text, error.method_index))

    # ---------------------------------------------------------- connection
    @property
    def closing(self) -> bool:
        """connection.close was sent and close-ok is awaited (the gateway bounds the wait)."""
        return self._state == "closing" and not self.closed

    def _fail(self, error: AMQPError) -> None:
        """A hard error: connection.close with the code, drop everything else."""
        log.warning("connection %s closed: %d %s", self.name, error.code, error.text)
        self._release()
        if self._state == "closing":
            # connection.close is out already (only framing can fail now):
            # nothing may follow it, and the stream is out of step
            self.closed = True
            return
        if self._state in ("header", "start_ok") and error.code != ACCESS_REFUSED:
            self.closed = True
            return
        self._state = "closing"
        self._out.append(wire.close(0, error.code, error.text, error.method_index))
        if error.code == FRAME_ERROR:
            # the byte stream is out of step: nothing more can be read from it
            self.closed = True

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        for channel in list(self.channels.values()):
            channel.release()
        self.channels.clear()
        if self.vhost is not None:
            for queue in [q for q in self.vhost.queues.values() if q.owner is self]:
                self.vhost.delete_queue(queue)
        self.broker.connections.discard(self)

    def _connection_method(self, index: int, payload: bytes) -> None:
        state = self._state
        if state == "start_ok":
            if index != wire.CONNECTION_START_OK:
                raise connection_error(CHANNEL_ERROR, "unexpected method in connection state starting", index)
            self._start_ok(self.decode_method(index, payload))
        elif state == "tune_ok":
            if index == wire.CONNECTION_SECURE_OK:
                raise connection_error(CHANNEL_ERROR, "unexpected method in connection state tuning", index)
            if index != wire.CONNECTION_TUNE_OK:
                raise connection_error(CHANNEL_ERROR, "unexpected method in connection state tuning", index)
            self._tune_ok(self.decode_method(index, payload))
        elif state == "open":
            if index != wire.CONNECTION_OPEN:
                raise connection_error(CHANNEL_ERROR, "unexpected method in connection state opening", index)
            self._open(self.decode_method(index, payload))
        elif index == wire.CONNECTION_CLOSE:
            self._release()
            self._out.append(wire.method(0, wire.CONNECTION_CLOSE_OK))
            self.closed = True
        elif index == wire.CONNECTION_CLOSE_OK:
            self.closed = True
        elif index == wire.CONNECTION_UPDATE_SECRET:
            self.decode_method(index, payload)
            self._out.append(wire.method(0, wire.CONNECTION_UPDATE_SECRET_OK))
        elif index in (wire.CONNECTION_BLOCKED, wire.CONNECTION_UNBLOCKED):
            return
        else:
            self.decode_method(index, payload)
            raise connection_error(CHANNEL_ERROR, "unexpected method in connection state running", index)

    def _start_ok(self, frame: commands.Connection.StartOk) -> None:
        self.client_properties = frame.client_properties or {}
        caps = self.client_properties.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else {}
        mechanism = frame.mechanism
        response = frame.response
        raw = response.encode("utf-8") if isinstance(response, str) else bytes(response or b"")
        if mechanism == "PLAIN":
            parts = raw.split(b"\x00")
            if len(parts) != 3:
                # a syntax error during the handshake: RabbitMQ closes silently
                log.warning("connection %s: malformed PLAIN response", self.name)
                self._silent_close()
                return
            username, password = parts[1], parts[2]
        elif mechanism == "AMQPLAIN":
            try:
                table, _ = codec.decode_table(_u32.pack(len(raw)) + raw, 0)
            except (codec.DecodeError, IndexError, struct.error):
                table = {}
            username, password = table.get("LOGIN", b""), table.get("PASSWORD", b"")
        else:
            raise connection_error(COMMAND_INVALID, f"unknown authentication mechanism '{mechanism}'", wire.CONNECTION_START_OK)
        user = username.decode("utf-8", "replace") if isinstance(username, (bytes, bytearray)) else str(username)
        secret = password.decode("utf-8", "replace") if isinstance(password, (bytes, bytearray)) else str(password)
        if not self.broker.authenticate(user, secret):
            log.warning("connection %s: login refused for user '%s' (%s)", self.name, user, mechanism)
            if self.capabilities.get("authentication_failure_close"):
                raise connection_error(
                    ACCESS_REFUSED,
                    f"Login was refused using authentication mechanism {mechanism}. For details see the broker logfile.",
                )
            self.closed = True
            return
        self.user = user
        self._state = "tune_ok"
        self._out.append(wire.connection_tune(SERVER_CHANNEL_MAX, SERVER_FRAME_MAX, SERVER_HEARTBEAT))

    def _silent_close(self) -> None:
        """A handshake failure: no connection.close, the socket closes after a delay."""
        self._release()
        self.closed = True
        self.close_delay = SILENT_CLOSE_DELAY

    def _tune_ok(self, frame: commands.Connection.TuneOk) -> None:
        try:
            self._negotiate("frame_max", wire.FRAME_MIN_SIZE, SERVER_FRAME_MAX, frame.frame_max)
            self._negotiate("channel_max", CHANNEL_MIN, SERVER_CHANNEL_MAX, frame.channel_max)
        except AMQPError as error:
            # RabbitMQ 3.10 closes without connection.close here (a handshake error)
            log.warning("connection %s: %s", self.name, error.text)
            self._silent_close()
            return
        self.frame_max = frame.frame_max
        self.channel_max = frame.channel_max
        self.heartbeat = frame.heartbeat
        self._state = "open"

    @staticmethod
    def _negotiate(field: str, minimum: int, maximum: int, value: int) -> None:
        detail = " (no limit)" if field == "channel_max" and value == 0 else ""
        if value != 0 and value < minimum:
            raise connection_error(
                NOT_ALLOWED,
                f"negotiated {field} = {value}{detail} is lower than the minimum allowed value ({minimum})",
                wire.CONNECTION_TUNE,
            )
        if value == 0 or value > maximum:
            raise connection_error(
                NOT_ALLOWED,
                f"negotiated {field} = {value}{detail} is higher than the maximum allowed value ({maximum})",
                wire.CONNECTION_TUNE,
            )

    def _open(self, frame: commands.Connection.Open) -> None:
        limit = self.connection_max
        if limit is not None and sum(isinstance(c, AMQPConnection) for c in self.broker.connections) >= limit:
            # rabbit_reader's is_over_node_connection_limit, checked at connection.open
            raise connection_error(NOT_ALLOWED, f"connection refused: node connection limit ({limit}) is reached", wire.CONNECTION_OPEN)
        vhost = self.broker.vhosts.get(frame.virtual_host)
        if vhost is None:
            raise connection_error(NOT_ALLOWED, f"vhost {frame.virtual_host} not found", wire.CONNECTION_OPEN)
        self.vhost = vhost
        self._state = "opened"
        self.handshake_done = True
        self.broker.connections.add(self)
        self._out.append(wire.method(0, wire.CONNECTION_OPEN_OK, b"\x00"))
