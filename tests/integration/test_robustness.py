"""Misbehaving and numerous clients: each bad connection is closed alone, the rest keep working.

Attackers are raw sockets speaking AMQP by hand (frames built and decoded
with pamqp); the bystanders are real pika and aio-pika clients.  Reply
codes, texts and failing method ids were checked against RabbitMQ 3.10.8.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import aio_pika
import pika
import pytest
from pamqp import body as pamqp_body
from pamqp import commands, frame
from pamqp.base import Frame

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"


# --- a hand-driven AMQP client ------------------------------------------------------------


class RawClient:
    """A socket that speaks AMQP by hand, for sending what no library would."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.protocol_header: bytes | None = None
        self.server_closed = False

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The server already closed; what it said before that is still to be read.

    def send_frame(self, value: Frame, channel: int = 0) -> None:
        self.send(frame.marshal(value, channel))

    def handshake(self, *, frame_max: int = 131072) -> None:
        self.send(AMQP_HEADER)
        self.expect(commands.Connection.Start)
        self.send_frame(
            commands.Connection.StartOk(
                client_properties={"capabilities": {"consumer_cancel_notify": True}},
                mechanism="PLAIN",
                response="\0guest\0guest",
            )
        )
        self.expect(commands.Connection.Tune)
        self.send_frame(commands.Connection.TuneOk(channel_max=2047, frame_max=frame_max, heartbeat=0))
        self.send_frame(commands.Connection.Open(virtual_host="/"))
        self.expect(commands.Connection.OpenOk)

    def open_channel(self, channel: int = 1) -> None:
        self.send_frame(commands.Channel.Open(), channel)
        self.expect(commands.Channel.OpenOk)

    def next_frame(self) -> tuple[int, Frame] | None:
        """The next frame, or ``None`` once the server closed the socket."""
        while True:
            if self.buffer.startswith(b"AMQP") and len(self.buffer) >= 8:
                self.protocol_header, self.buffer = self.buffer[:8], self.buffer[8:]
                continue
            if len(self.buffer) >= 7 and len(self.buffer) >= 8 + int.from_bytes(self.buffer[3:7], "big"):
                consumed, channel, value = frame.unmarshal(self.buffer)
                self.buffer = self.buffer[consumed:]
                return channel, value
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk

    def expect(self, kind: type[Frame]) -> Frame:
        received = self.next_frame()
        assert received is not None, f"closed while waiting for {kind.__name__}"
        assert isinstance(received[1], kind), f"expected {kind.__name__}, got {received[1]!r}"
        return received[1]

    def frames_until_closed(self) -> list[tuple[int, Frame]]:
        """Read until the server closes the socket, answering its connection.close with close-ok.

        Stops early, without answering, at a second connection.close: a server that ignores
        close-ok must not pull the client into an endless close/close-ok exchange.

        Raises:
            TimeoutError: the server neither closed the socket nor said anything for the timeout.
        """
        frames = []
        answered = False
        while (received := self.next_frame()) is not None:
            frames.append(received)
            if isinstance(received[1], commands.Connection.Close):
                if answered:
                    break
                self.send_frame(commands.Connection.CloseOk())
                answered = True
        else:
            self.server_closed = True
        return frames


def method_frame(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    payload = struct.pack(">HH", class_id, method_id) + arguments
    return struct.pack(">BHI", 1, channel, len(payload)) + payload + FRAME_END


def content_header(channel: int, body_size: int, class_id: int = 60) -> bytes:
    """A content header with no properties (pamqp only builds class 60 ones)."""
    return struct.pack(">BHIHHQH", 2, channel, 14, class_id, 0, body_size, 0) + FRAME_END


def body_frame(channel: int, data: bytes) -> bytes:
    return frame.marshal(pamqp_body.ContentBody(data), channel)


def publish(channel: int, routing_key: str = "nowhere") -> bytes:
    return frame.marshal(commands.Basic.Publish(exchange="", routing_key=routing_key), channel)


# --- bystanders ---------------------------------------------------------------------------


@pytest.fixture
def bystander(amqp_url: str, unique: str) -> Iterator[Callable[[], None]]:
    """A pika connection opened before the attack; calling it checks it still round-trips."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    queue = channel.queue_declare(f"{unique}.bystander", exclusive=True).method.queue
    rounds = 0

    def check() -> None:
        nonlocal rounds
        rounds += 1
        channel.basic_publish("", queue, f"round {rounds}".encode())
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None and body == f"round {rounds}".encode()
        assert connection.is_open

    check()
    yield check
    connection.close()


# --- malformed input ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Attack:
    """Bytes that break the protocol, sent after ``handshake`` (and channel 1 opened if ``channel``)."""

    payload: bytes
    code: int
    text: str
    method: tuple[int, int] = (0, 0)
    handshake: bool = True
    channel: bool = True


ATTACKS = {
    "oversized-length-2GiB": Attack(
        struct.pack(">BHI", 1, 0, 0x80000000) + bytes(64),
        501,
        "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,2147483648,131064}",
        channel=False,
    ),
    "frame-over-frame-max-header-only": Attack(
        # The header alone must be refused: the server cannot wait for a payload it will not take.
        struct.pack(">BHI", 3, 1, 131073),
        501,
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,131073,131064}",
    ),
    "bad-frame-end": Attack(
        method_frame(1, 20, 10, b"\x00")[:-1] + b"\x00",
        501,
        "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}",
        channel=False,
    ),
    "unknown-frame-type": Attack(
        struct.pack(">BHI", 9, 0, 0) + FRAME_END,
        501,
        "FRAME_ERROR - type 9, all octets = <<>>: unknown_frame",
        channel=False,
    ),
    "truncated-method-arguments": Attack(
        method_frame(1, 50, 10, b"\x00"),
        501,
        "FRAME_ERROR - cannot decode <<0>>",
        (50, 10),
    ),
    "content-header-without-method": Attack(
        content_header(1, 3) + body_frame(1, b"abc"),
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
    ),
    "content-body-without-method": Attack(
        body_frame(1, b"abc"),
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
    ),
    "content-header-on-channel-0": Attack(
        content_header(0, 3),
        505,
        "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,3,0,0>>",
        channel=False,
    ),
    "heartbeat-on-channel-1": Attack(
        struct.pack(">BHI", 8, 1, 0) + FRAME_END,
        505,
        "UNEXPECTED_FRAME - type 8, all octets = <<>>",
    ),
    "method-while-expecting-content-header": Attack(
        publish(1) + method_frame(1, 60, 10, struct.pack(">IHB", 0, 0, 0)),
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
        (60, 40),
    ),
    "method-while-expecting-content-body": Attack(
        publish(1) + content_header(1, 3) + method_frame(1, 60, 10, struct.pack(">IHB", 0, 0, 0)),
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
        (60, 40),
    ),
    "content-header-for-class-50": Attack(
        publish(1) + content_header(1, 3, class_id=50),
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead",
        (60, 40),
    ),
    "method-on-unopened-channel": Attack(
        method_frame(5, 50, 10, b"\x00\x00\x01q\x00\x00\x00\x00\x00"),
        504,
        "CHANNEL_ERROR - expected 'channel.open'",
        (50, 10),
        channel=False,
    ),
    "second-channel-open": Attack(
        method_frame(1, 20, 10, b"\x00"),
        504,
        "CHANNEL_ERROR - second 'channel.open' seen",
        (20, 10),
    ),
    "connection-method-on-channel-1": Attack(
        method_frame(1, 10, 50, struct.pack(">HBHH", 200, 0, 0, 0)),
        503,
        "COMMAND_INVALID - unimplemented method",
        (10, 50),
    ),
}

# Where wiregate's reply text still differs from RabbitMQ's (the code and method ids agree).
TEXT_BUGS: dict[str, str] = {}

def marked(bugs: dict[str, str]) -> list:
    """The attack names as parameters, the ones in ``bugs`` marked xfail with their reason."""
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=bugs[name], strict=True)) if name in bugs else name
        for name in ATTACKS
    ]


def attack(host: str, port: int, case: Attack) -> RawClient:
    client = RawClient(host, port)
    if case.handshake:
        client.handshake()
    if case.channel:
        client.open_channel(1)
    client.send(case.payload)
    return client


def connection_closes(frames: list[tuple[int, Frame]]) -> list[commands.Connection.Close]:
    return [value for _channel, value in frames if isinstance(value, commands.Connection.Close)]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_malformed_input_closes_only_that_connection(
    wiregate_server, bystander: Callable[[], None], name: str
) -> None:
    case = ATTACKS[name]
    client = attack(wiregate_server.host, wiregate_server.amqp_port, case)
    try:
        frames = client.frames_until_closed()
    finally:
        client.close()
    closes = connection_closes(frames)
    assert [(close.reply_code, close.class_id, close.method_id) for close in closes] == [(case.code, *case.method)]
    assert frames[-1][1] is closes[0], "nothing may follow connection.close"
    assert client.server_closed, "the server must close the socket after close-ok"
    bystander()


@pytest.mark.parametrize("name", marked(TEXT_BUGS))
def test_malformed_input_reply_text_matches_rabbitmq(wiregate_server, name: str) -> None:
    case = ATTACKS[name]
    client = attack(wiregate_server.host, wiregate_server.amqp_port, case)
    try:
        closes = connection_closes(client.frames_until_closed())
    finally:
        client.close()
    assert closes and closes[0].reply_text == case.text


@pytest.mark.parametrize("method", [(60, 999), (999, 10)], ids=["unknown-method", "unknown-class"])
def test_unknown_method_id_closes_only_that_connection(
    wiregate_server, bystander: Callable[[], None], method: tuple[int, int]
) -> None:
    # RabbitMQ 3.10's reader crashes on an unknown method id ({unknown_method_id, ...}) and drops
    # the socket without a connection.close; wiregate may answer 503 first, which clients handle.
    client = attack(wiregate_server.host, wiregate_server.amqp_port, Attack(method_frame(1, *method), 0, ""))
    try:
        closes = connection_closes(client.frames_until_closed())
    finally:
        client.close()
    assert [(close.reply_code, close.class_id, close.method_id) for close in closes] in ([], [(503, *method)])
    bystander()


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"AMQP\x00\x00\x08\x00", b"AMQP\x00\x01\x00\x00", bytes(range(256)) * 64],
    ids=["http", "amqp-0-8", "amqp-1-0", "binary"],
)
def test_bad_protocol_header_is_answered_with_ours_then_closed(wiregate_server, bystander: Callable[[], None], data: bytes) -> None:
    client = RawClient(wiregate_server.host, wiregate_server.amqp_port)
    try:
        client.send(data)
        frames = client.frames_until_closed()
    finally:
        client.close()
    assert client.protocol_header == AMQP_HEADER
    assert frames == []
    bystander()


def test_frame_instead_of_start_ok_closes_silently(wiregate_server, bystander: Callable[[], None]) -> None:
    client = RawClient(wiregate_server.host, wiregate_server.amqp_port)
    try:
        client.send(AMQP_HEADER)
        client.expect(commands.Connection.Start)
        client.send_frame(commands.Channel.Open(), 1)
        assert client.frames_until_closed() == []
    finally:
        client.close()
    bystander()


def test_byte_at_a_time_client_is_served(wiregate_server, amqp_url: str, unique: str) -> None:
    queue = f"{unique}.slow"
    consumer = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = consumer.channel()
        channel.queue_declare(queue, exclusive=True)
        client = RawClient(wiregate_server.host, wiregate_server.amqp_port)
        try:
            client.handshake()
            client.open_channel(1)
            message = publish(1, queue) + content_header(1, 5) + body_frame(1, b"slow!")
            for byte in message:
                client.send(bytes([byte]))
            client.send_frame(commands.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0), 1)
            client.expect(commands.Channel.CloseOk)
        finally:
            client.close()
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"slow!"
    finally:
        consumer.close()


def test_attack_burst_does_not_disturb_a_busy_consumer(wiregate_server, amqp_url: str, unique: str) -> None:
    queue = f"{unique}.busy"
    total = 300
    received: list[bytes] = []
    failures: list[BaseException] = []
    ready = threading.Event()

    def consume() -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
            channel = connection.channel()
            channel.queue_declare(queue, auto_delete=True)
            channel.basic_consume(queue, lambda _ch, _m, _p, body: received.append(body), auto_ack=True)
            ready.set()
            deadline = time.monotonic() + 10
            while len(received) < total and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.05)
            connection.close()
        except BaseException as error:  # reported to the test thread
            failures.append(error)
            ready.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert ready.wait(5)
    publisher = pika.BlockingConnection(pika.URLParameters(amqp_url))
    publisher_channel = publisher.channel()
    attacks = list(ATTACKS.values())
    for number in range(total):
        publisher_channel.basic_publish("", queue, str(number).encode())
        if number % 20 == 0:
            client = attack(wiregate_server.host, wiregate_server.amqp_port, attacks[number // 20 % len(attacks)])
            client.frames_until_closed()
            client.close()
    publisher.close()
    consumer.join(15)
    assert not failures
    assert received == [str(number).encode() for number in range(total)]


# --- many clients -------------------------------------------------------------------------


def test_two_hundred_concurrent_connections_open_channels(amqp_url: str, unique: str) -> None:
    clients = 200

    async def main() -> list[bytes]:
        connections = await asyncio.gather(*(aio_pika.connect(amqp_url) for _ in range(clients)))
        try:
            # Every connection is open at once before any does work.
            assert all(not connection.is_closed for connection in connections)

            async def work(number: int, connection: aio_pika.abc.AbstractConnection) -> bytes:
                channels = await asyncio.gather(*(connection.channel() for _ in range(3)))
                queue = await channels[0].declare_queue(f"{unique}.{number}", exclusive=True)
                # The publisher confirm means the message is enqueued before another channel gets it.
                await channels[1].default_exchange.publish(aio_pika.Message(str(number).encode()), routing_key=queue.name)
                getter = await channels[2].get_queue(queue.name, ensure=False)
                message = await getter.get(no_ack=True, timeout=10)
                return message.body

            return await asyncio.gather(*(work(number, connection) for number, connection in enumerate(connections)))
        finally:
            await asyncio.gather(*(connection.close() for connection in connections))

    bodies = asyncio.run(asyncio.wait_for(main(), 30))
    assert bodies == [str(number).encode() for number in range(clients)]


# --- a client vanishing with unacked messages ------------------------------------------------------


def vanish_raw(client: RawClient) -> None:
    client.close()


def vanish_with_reset(client: RawClient) -> None:
    # SO_LINGER 0: close() sends RST instead of FIN.
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def vanish_politely(client: RawClient) -> None:
    client.send_frame(commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    client.expect(commands.Connection.CloseOk)
    client.close()


def vanish_by_closing_the_channel(client: RawClient) -> None:
    client.send_frame(commands.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 1)
    client.expect(commands.Channel.CloseOk)


@pytest.mark.parametrize(
    "vanish",
    [vanish_raw, vanish_with_reset, vanish_politely, vanish_by_closing_the_channel],
    ids=["socket-close", "socket-reset", "connection-close", "channel-close"],
)
def test_unacked_messages_of_a_vanished_client_go_to_another_consumer(
    wiregate_server, amqp_url: str, unique: str, vanish: Callable[[RawClient], None]
) -> None:
    queue = f"{unique}.work"
    survivor = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = survivor.channel()
    channel.queue_declare(queue)
    try:
        for number in range(5):
            channel.basic_publish("", queue, f"job {number}".encode())

        doomed = RawClient(wiregate_server.host, wiregate_server.amqp_port)
        doomed.handshake()
        doomed.open_channel(1)
        doomed.send_frame(commands.Basic.Consume(queue=queue, consumer_tag="doomed"), 1)
        doomed.expect(commands.Basic.ConsumeOk)
        taken = 0
        while taken < 5:
            received = doomed.next_frame()
            assert received is not None
            # Count bodies, not basic.deliver frames, so that no frame of a delivery is left unread.
            taken += isinstance(received[1], pamqp_body.ContentBody)

        redelivered: list[tuple[bytes, bool]] = []
        channel.basic_consume(queue, lambda _ch, method, _p, body: redelivered.append((body, method.redelivered)), auto_ack=True)
        survivor.process_data_events(time_limit=0.1)
        assert redelivered == []
        vanish(doomed)
        deadline = time.monotonic() + 5
        while len(redelivered) < 5 and time.monotonic() < deadline:
            survivor.process_data_events(time_limit=0.05)
        doomed.close()
        assert redelivered == [(f"job {number}".encode(), True) for number in range(5)]
    finally:
        channel.queue_delete(queue)
        survivor.close()


# --- unusual but valid input --------------------------------------------------------------


def field_table(*fields: tuple[str, bytes, bytes]) -> bytes:
    """An AMQP field table from (name, type tag, encoded value) triples."""
    data = b"".join(bytes([len(name)]) + name.encode() + tag + value for name, tag, value in fields)
    return struct.pack(">I", len(data)) + data


EVERY_FIELD_TYPE = field_table(
    ("bool", b"t", b"\x01"),
    ("int8", b"b", struct.pack(">b", -5)),
    ("uint8", b"B", struct.pack(">B", 250)),
    ("int16", b"s", struct.pack(">h", -300)),
    ("uint16", b"u", struct.pack(">H", 65000)),
    ("int32", b"I", struct.pack(">i", -70000)),
    ("uint32", b"i", struct.pack(">I", 4000000000)),
    ("int64", b"l", struct.pack(">q", -(2**40))),
    ("float", b"f", struct.pack(">f", 1.5)),
    ("double", b"d", struct.pack(">d", 2.25)),
    ("decimal", b"D", struct.pack(">Bi", 2, 314)),
    ("longstr", b"S", struct.pack(">I", 3) + b"abc"),
    ("binary", b"x", struct.pack(">I", 3) + b"\x00\x01\x02"),
    ("array", b"A", struct.pack(">I", 7) + b"b\x01S\x00\x00\x00\x00"),
    ("timestamp", b"T", struct.pack(">Q", 1714566645)),
    ("table", b"F", field_table(("inner", b"V", b""))),
    ("void", b"V", b""),
)


def test_every_field_type_in_headers_reaches_the_consumer_byte_for_byte(wiregate_server, unique: str) -> None:
    queue = f"{unique}.typed"
    # Property flags: headers (bit 13) only, then the table.
    properties = struct.pack(">H", 1 << 13) + EVERY_FIELD_TYPE
    client = RawClient(wiregate_server.host, wiregate_server.amqp_port)
    try:
        client.handshake()
        client.open_channel(1)
        client.send_frame(commands.Queue.Declare(queue=queue, exclusive=True), 1)
        client.expect(commands.Queue.DeclareOk)
        header_payload = struct.pack(">HHQ", 60, 0, 4) + properties
        client.send(
            publish(1, queue)
            + struct.pack(">BHI", 2, 1, len(header_payload))
            + header_payload
            + FRAME_END
            + body_frame(1, b"body")
        )
        client.send_frame(commands.Basic.Get(queue=queue, no_ack=True), 1)
        client.expect(commands.Basic.GetOk)
        # Read the content header frame raw, before pamqp decodes (and could normalise) it.
        while len(client.buffer) < 7 or len(client.buffer) < 8 + int.from_bytes(client.buffer[3:7], "big"):
            client.buffer += client.sock.recv(65536)
        size = int.from_bytes(client.buffer[3:7], "big")
        assert client.buffer[0] == 2
        assert client.buffer[7 : 7 + size] == header_payload
    finally:
        client.close()


def test_pipelined_nowait_methods_in_one_packet(wiregate_server, unique: str) -> None:
    queue = f"{unique}.pipelined"
    client = RawClient(wiregate_server.host, wiregate_server.amqp_port)
    try:
        client.send(AMQP_HEADER)
        client.expect(commands.Connection.Start)
        client.send_frame(commands.Connection.StartOk(mechanism="PLAIN", response="\0guest\0guest"))
        client.expect(commands.Connection.Tune)
        # Everything else in one write, without waiting for a single reply.
        client.send(
            frame.marshal(commands.Connection.TuneOk(channel_max=16, frame_max=131072, heartbeat=0), 0)
            + frame.marshal(commands.Connection.Open(virtual_host="/"), 0)
            + frame.marshal(commands.Channel.Open(), 1)
            + frame.marshal(commands.Queue.Declare(queue=queue, exclusive=True, nowait=True), 1)
            + frame.marshal(commands.Queue.Bind(queue=queue, exchange="amq.fanout", nowait=True), 1)
            + frame.marshal(commands.Basic.Publish(exchange="amq.fanout", routing_key=""), 1)
            + content_header(1, 3)
            + body_frame(1, b"abc")
            + frame.marshal(commands.Basic.Get(queue=queue, no_ack=True), 1)
            + frame.marshal(commands.Queue.Delete(queue=queue, nowait=True), 1)
            + frame.marshal(commands.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0), 1)
        )
        received = []
        while not received or received[-1] != "CloseOk":
            item = client.next_frame()
            assert item is not None, f"closed after {received}"
            received.append(type(item[1]).__name__)
        client.send_frame(commands.Connection.Close(reply_code=200, reply_text="", class_id=0, method_id=0))
        # RabbitMQ then leaves closing the socket to the client.
        client.expect(commands.Connection.CloseOk)
    finally:
        client.close()
    assert received == ["OpenOk", "OpenOk", "GetOk", "ContentHeader", "ContentBody", "CloseOk"]


# --- slow and fast peers ---------------------------------------------------------------------


def test_a_consumer_that_stops_reading_does_not_stall_others(
    wiregate_server, amqp_url: str, unique: str, bystander: Callable[[], None]
) -> None:
    queue = f"{unique}.backlog"
    publisher = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = publisher.channel()
    channel.queue_declare(queue)
    chunk = bytes(65536)
    try:
        for _ in range(300):  # ~20 MB, far more than the socket buffers hold
            channel.basic_publish("", queue, chunk)
        stalled = RawClient(wiregate_server.host, wiregate_server.amqp_port)
        try:
            stalled.handshake()
            stalled.open_channel(1)
            stalled.send_frame(commands.Basic.Consume(queue=queue, no_ack=True), 1)
            # ... and never read again: the server's writes to it block.
            time.sleep(0.3)
            started = time.monotonic()
            for _ in range(20):
                bystander()
            assert time.monotonic() - started < 2
        finally:
            stalled.close()
    finally:
        channel.queue_delete(queue)
        publisher.close()


def test_thousands_of_messages_keep_their_order_under_prefetch(amqp_url: str, unique: str) -> None:
    total = 3000
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        queue = channel.queue_declare(f"{unique}.many", exclusive=True).method.queue
        channel.confirm_delivery()
        for number in range(total):
            channel.basic_publish("", queue, number.to_bytes(4, "big"))
        channel.basic_qos(prefetch_count=100)
        received: list[int] = []

        def on_message(ch, method, _properties, body: bytes) -> None:
            received.append(int.from_bytes(body, "big"))
            if len(received) % 50 == 0:
                ch.basic_ack(method.delivery_tag, multiple=True)

        channel.basic_consume(queue, on_message)
        deadline = time.monotonic() + 20
        while len(received) < total and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.05)
        assert received == list(range(total))
    finally:
        connection.close()
