"""AMQP channels over the sans-IO connection: publish, get, consume, acks,
confirms, transactions, channel errors, and connections sharing a broker.

Client frames are encoded with pamqp (content headers by hand, so property
bytes are exactly what a client sent); output is parsed back into frames.
The expected frame sequences were recorded from RabbitMQ 3.10.8 fed the
same bytes.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import pytest
from pamqp import commands, frame as pamqp_frame
from pamqp.header import ProtocolHeader

from wiregate.amqp import AMQPConnection
from wiregate.core import Broker

EMPTY_PROPERTIES = b"\x00\x00"
LOCKED = (
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{}' in vhost '/'. It could be originally "
    "declared on another connection or the exclusive property value does not match that of the original declaration."
)


@dataclass
class Frame:
    kind: str  # method | header | body | heartbeat
    channel: int
    value: Any

    @property
    def name(self) -> str:
        return self.value.name if self.kind == "method" else self.kind


def parse(data: bytes) -> list[Frame]:
    frames = []
    pos = 0
    while pos < len(data):
        frame_type, channel, size = struct.unpack_from(">BHI", data, pos)
        end = pos + 7 + size
        assert data[end] == 0xCE
        payload = data[pos + 7 : end]
        if frame_type == 1:
            frames.append(Frame("method", channel, pamqp_frame.unmarshal(data[pos : end + 1])[2]))
        elif frame_type == 2:
            class_id, _weight, body_size = struct.unpack_from(">HHQ", payload)
            assert class_id == 60
            frames.append(Frame("header", channel, (body_size, payload[12:])))
        elif frame_type == 3:
            frames.append(Frame("body", channel, payload))
        else:
            frames.append(Frame("heartbeat", channel, payload))
        pos = end + 1
    return frames


# --------------------------------------------------------- field tables
def _shortstr(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def _longstr(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def table(*fields: bytes) -> bytes:
    return _longstr(b"".join(fields))


def field(name: str, value: bytes) -> bytes:
    return _shortstr(name) + value


# one encoder per field-table type tag, so each test names the wire type it sends
ENCODERS = {
    "b": lambda v: b"b" + struct.pack(">b", v),
    "s": lambda v: b"s" + struct.pack(">h", v),
    "u": lambda v: b"u" + struct.pack(">H", v),
    "I": lambda v: b"I" + struct.pack(">i", v),
    "l": lambda v: b"l" + struct.pack(">q", v),
    "f": lambda v: b"f" + struct.pack(">f", v),
    "d": lambda v: b"d" + struct.pack(">d", v),
    "t": lambda v: b"t" + bytes([v]),
    "x": lambda v: b"x" + _longstr(v),
    "S": lambda v: b"S" + _longstr(v),
    "T": lambda v: b"T" + struct.pack(">Q", v),
}
b_, s_, u_, I_, l_, f_, d_, t_, x_, S_, T_ = (ENCODERS[tag] for tag in "bsuIlfdtxST")


def D_(scale: int, value: int) -> bytes:
    return b"D" + bytes([scale]) + struct.pack(">i", value)


def F_(*fields: bytes) -> bytes:
    return b"F" + table(*fields)


def A_(*values: bytes) -> bytes:
    return b"A" + _longstr(b"".join(values))


V_ = b"V"

#: one header of each field type b s I l f d t x S T D F A V, in one table
ALL_TYPES = table(
    field("b", b_(-5)),
    field("s", s_(-300)),
    field("I", I_(-70000)),
    field("l", l_(-(2**40))),
    field("f", f_(1.5)),
    field("d", d_(2.25)),
    field("t", t_(True)),
    field("x", x_(b"\x00\xffbin")),
    field("S", S_("héllo".encode())),
    field("T", T_(1700000000)),
    field("D", D_(2, 12345)),
    field("F", F_(field("inner", I_(7)))),
    field("A", A_(I_(1), S_(b"two"), V_)),
    field("V", V_),
)
#: content-type text/plain, those headers, delivery-mode 2
PROPERTIES_ALL_TYPES = struct.pack(">H", 0x8000 | 0x2000 | 0x1000) + _shortstr("text/plain") + ALL_TYPES + b"\x02"


def headers_properties(headers: bytes | None) -> bytes:
    return EMPTY_PROPERTIES if headers is None else struct.pack(">H", 0x2000) + headers


# ---------------------------------------------------------------- client
def m(command: Any, channel: int = 0) -> bytes:
    return pamqp_frame.marshal(command, channel)


def header_frame(channel: int, body_size: int, properties: bytes = EMPTY_PROPERTIES) -> bytes:
    payload = struct.pack(">HHQ", 60, 0, body_size) + properties
    return struct.pack(">BHI", 2, channel, len(payload)) + payload + b"\xce"


def body_frame(channel: int, data: bytes) -> bytes:
    return struct.pack(">BHI", 3, channel, len(data)) + data + b"\xce"


class Client:
    """Drives one AMQPConnection; every call returns the frames written back."""

    def __init__(self, broker: Broker | None = None, *, frame_max: int = 131072, capabilities: dict | None = None) -> None:
        self.broker = broker or Broker()
        self.wakes = 0
        self.conn = AMQPConnection(self.broker, peer="test", on_wake=self._woken)
        if capabilities is None:
            capabilities = {"consumer_cancel_notify": True, "publisher_confirms": True, "basic.nack": True, "authentication_failure_close": True}
        frames = self.raw(
            ProtocolHeader().marshal(),
            m(commands.Connection.StartOk(client_properties={"capabilities": capabilities}, mechanism="PLAIN", response="\x00guest\x00guest")),
            m(commands.Connection.TuneOk(channel_max=2047, frame_max=frame_max, heartbeat=0)),
            m(commands.Connection.Open(virtual_host="/")),
        )
        assert frames[-1].name == "Connection.OpenOk"

    def _woken(self) -> None:
        self.wakes += 1

    def raw(self, *chunks: bytes) -> list[Frame]:
        for chunk in chunks:
            self.conn.receive_data(chunk)
        return parse(self.conn.data_to_send())

    def pending(self) -> list[Frame]:
        """Output produced outside receive_data (deliveries from other connections)."""
        return parse(self.conn.data_to_send())

    def call(self, channel: int, *methods: Any) -> list[Frame]:
        return self.raw(*(m(method, channel) for method in methods))

    def open(self, channel: int = 1) -> None:
        assert [f.name for f in self.call(channel, commands.Channel.Open())] == ["Channel.OpenOk"]

    def publish(self, channel: int, exchange: str, routing_key: str, body: bytes, *, properties: bytes = EMPTY_PROPERTIES, mandatory: bool = False, chunk: int = 4088) -> list[Frame]:
        parts = [m(commands.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory), channel), header_frame(channel, len(body), properties)]
        parts += [body_frame(channel, body[i : i + chunk]) for i in range(0, len(body), chunk)]
        return self.raw(b"".join(parts))


def names(frames: list[Frame]) -> list[str]:
    return [f.name for f in frames]


def channel_names(frames: list[Frame]) -> list[tuple[int, str]]:
    return [(f.channel, f.name) for f in frames]


def close_of(frames: list[Frame]) -> tuple[int, int, str, int, int]:
    closes = [f for f in frames if f.name in ("Connection.Close", "Channel.Close")]
    assert len(closes) == 1, names(frames)
    close = closes[0].value
    return closes[0].channel, close.reply_code, close.reply_text, close.class_id, close.method_id


def bodies(frames: list[Frame]) -> list[bytes]:
    """Message bodies in order (a message's body frames joined)."""
    result: list[bytes] = []
    expecting = 0
    for f in frames:
        if f.kind == "header":
            result.append(b"")
            expecting = f.value[0]
        elif f.kind == "body":
            result[-1] += f.value
            expecting -= len(f.value)
    assert expecting == 0
    return result


@pytest.fixture
def client() -> Client:
    c = Client()
    c.open(1)
    return c


def declare(client: Client, queue: str, channel: int = 1, **kwargs: Any) -> None:
    frames = client.call(channel, commands.Queue.Declare(queue=queue, **kwargs))
    assert names(frames) == ["Queue.DeclareOk"]


# --------------------------------------------------------- channel errors
def test_channel_error_closes_only_that_channel(client) -> None:
    assert close_of(client.call(1, commands.Queue.Declare(queue="missing", passive=True))) == (
        1, 404, "NOT_FOUND - no queue 'missing' in vhost '/'", 50, 10,
    )
    # a closing channel ignores everything but close and close-ok ...
    assert client.call(1, commands.Queue.Declare(queue="q")) == []
    assert channel_names(client.call(1, commands.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0))) == [(1, "Channel.CloseOk")]
    # ... and the connection goes on
    client.open(2)
    assert names(client.call(2, commands.Queue.Declare(queue="q"))) == ["Queue.DeclareOk"]
    assert client.call(1, commands.Channel.CloseOk()) == []
    client.open(1)
    assert names(client.call(1, commands.Queue.Declare(queue="q", passive=True))) == ["Queue.DeclareOk"]
    assert not client.conn.closed


def test_client_channel_close(client) -> None:
    frames = client.call(1, commands.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
    assert channel_names(frames) == [(1, "Channel.CloseOk")]
    client.open(1)


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        pytest.param([commands.Basic.Qos(prefetch_size=10)], (0, 540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)", 60, 10), id="qos-prefetch-size"),
        pytest.param([commands.Basic.Recover(requeue=False)], (0, 540, "NOT_IMPLEMENTED - requeue=false", 60, 110), id="recover-no-requeue"),
        pytest.param([commands.Channel.Flow(active=False)], (0, 540, "NOT_IMPLEMENTED - active=false", 20, 20), id="flow-off"),
        pytest.param([commands.Exchange.Declare(exchange="x", exchange_type="bogus")], (0, 503, "COMMAND_INVALID - unknown exchange type 'bogus'", 40, 10), id="unknown-exchange-type"),
        pytest.param([commands.Tx.Select(), commands.Confirm.Select()], (1, 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode", 85, 10), id="tx-then-confirm"),
        pytest.param([commands.Confirm.Select(), commands.Tx.Select()], (1, 406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode", 90, 10), id="confirm-then-tx"),
        pytest.param([commands.Tx.Commit()], (1, 406, "PRECONDITION_FAILED - channel is not transactional", 90, 20), id="commit-without-select"),
        pytest.param([commands.Tx.Rollback()], (1, 406, "PRECONDITION_FAILED - channel is not transactional", 90, 30), id="rollback-without-select"),
        pytest.param([commands.Basic.Get(queue="")], (1, 404, "NOT_FOUND - no previously declared queue", 60, 70), id="no-previous-queue"),
        pytest.param([commands.Basic.Consume(queue="missing")], (1, 404, "NOT_FOUND - no queue 'missing' in vhost '/'", 60, 20), id="consume-missing"),
        pytest.param([commands.Queue.Purge(queue="missing")], (1, 404, "NOT_FOUND - no queue 'missing' in vhost '/'", 50, 30), id="purge-missing"),
    ],
)
def test_method_errors(client, methods: list, expected: tuple) -> None:
    assert close_of(client.call(1, *methods)) == expected


def test_publish_errors(client) -> None:
    assert close_of(client.publish(1, "missing", "k", b"x")) == (1, 404, "NOT_FOUND - no exchange 'missing' in vhost '/'", 60, 40)
    client.open(2)
    client.call(2, commands.Exchange.Declare(exchange="internal", exchange_type="fanout", internal=True))
    assert close_of(client.publish(2, "internal", "k", b"x")) == (2, 403, "ACCESS_REFUSED - cannot publish to internal exchange 'internal' in vhost '/'", 60, 40)
    client.open(3)
    user_id = struct.pack(">H", 0x0010) + _shortstr("bob")
    assert close_of(client.publish(3, "amq.direct", "k", b"x", properties=user_id)) == (
        3, 406, "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'", 60, 40,
    )
    client.open(4)
    assert client.publish(4, "amq.direct", "k", b"x", properties=struct.pack(">H", 0x0010) + _shortstr("guest")) == []


def test_immediate_publish_is_not_implemented(client) -> None:
    frames = client.raw(m(commands.Basic.Publish(exchange="amq.direct", routing_key="k", immediate=True), 1), header_frame(1, 1), body_frame(1, b"x"))
    assert close_of(frames) == (0, 540, "NOT_IMPLEMENTED - immediate=true", 60, 40)


# ------------------------------------------------------------ round trips
def test_publish_get_keeps_property_bytes_exactly(client) -> None:
    declare(client, "q")
    assert client.publish(1, "", "q", b"hello", properties=PROPERTIES_ALL_TYPES) == []
    frames = client.call(1, commands.Basic.Get(queue="q", no_ack=True))
    assert names(frames) == ["Basic.GetOk", "header", "body"]
    get_ok = frames[0].value
    assert (get_ok.delivery_tag, get_ok.redelivered, get_ok.exchange, get_ok.routing_key, get_ok.message_count) == (1, False, "", "q", 0)
    assert frames[1].value == (5, PROPERTIES_ALL_TYPES)
    assert frames[2].value == b"hello"


def test_consumer_delivery_keeps_property_bytes_exactly(client) -> None:
    declare(client, "q")
    client.call(1, commands.Basic.Consume(queue="q", consumer_tag="c", no_ack=True))
    frames = client.publish(1, "amq.direct", "nowhere", b"lost") + client.raw()
    assert frames == []
    client.call(1, commands.Queue.Bind(queue="q", exchange="amq.topic", routing_key="a.#"))
    frames = client.publish(1, "amq.topic", "a.b", b"hi", properties=PROPERTIES_ALL_TYPES)
    assert names(frames) == ["Basic.Deliver", "header", "body"]
    deliver = frames[0].value
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered, deliver.exchange, deliver.routing_key) == ("c", 1, False, "amq.topic", "a.b")
    assert frames[1].value == (2, PROPERTIES_ALL_TYPES)


@pytest.mark.parametrize(
    ("frame_max", "size", "pieces"),
    [(4096, 10000, [4088, 4088, 1824]), (4096, 4088, [4088]), (4096, 4089, [4088, 1]), (131072, 300000, [131064, 131064, 37872]), (131072, 1, [1])],
)
def test_body_split_by_frame_max(frame_max: int, size: int, pieces: list[int]) -> None:
    client = Client(frame_max=frame_max)
    client.open(1)
    declare(client, "q")
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    client.publish(1, "", "q", body, chunk=frame_max - 8)
    frames = client.call(1, commands.Basic.Get(queue="q", no_ack=True))
    assert [len(f.value) for f in frames if f.kind == "body"] == pieces
    assert bodies(frames) == [body]


def test_empty_body_has_no_body_frame(client) -> None:
    declare(client, "q")
    client.publish(1, "", "q", b"")
    client.call(1, commands.Basic.Consume(queue="q", consumer_tag="c", no_ack=True))
    frames = client.publish(1, "", "q", b"")
    assert names(frames) == ["Basic.Deliver", "header"]
    assert frames[1].value == (0, EMPTY_PROPERTIES)


def test_get_reports_remaining_count_and_get_empty(client) -> None:
    declare(client, "q")
    for body in (b"1", b"2"):
        client.publish(1, "", "q", body)
    counts = [client.call(1, commands.Basic.Get(queue="q", no_ack=True))[0].value.message_count for _ in range(2)]
    assert counts == [1, 0]
    assert names(client.call(1, commands.Basic.Get(queue="q"))) == ["Basic.GetEmpty"]


def test_server_named_queue_and_name_shortcut(client) -> None:
    frames = client.call(1, commands.Queue.Declare(queue="", exclusive=True))
    name = frames[0].value.queue
    assert re.fullmatch(r"amq\.gen-[A-Za-z0-9_-]{22}", name)
    # "" means the last queue declared on this channel
    client.publish(1, "", name, b"a")
    get = client.call(1, commands.Basic.Get(queue="", no_ack=True))
    assert get[0].value.routing_key == name
    assert names(client.call(1, commands.Queue.Bind(queue="", exchange="amq.direct"))) == ["Queue.BindOk"]
    client.publish(1, "amq.direct", name, b"b")  # the routing key defaulted to the name
    assert client.call(1, commands.Queue.Purge(queue=""))[0].value.message_count == 1
    assert names(client.call(1, commands.Queue.Delete(queue=""))) == ["Queue.DeleteOk"]


def test_nowait_methods_answer_nothing(client) -> None:
    frames = client.call(
        1,
        commands.Queue.Declare(queue="nw", nowait=True),
        commands.Exchange.Declare(exchange="nwx", exchange_type="direct", nowait=True),
        commands.Queue.Bind(queue="nw", exchange="nwx", nowait=True),
        commands.Basic.Consume(queue="nw", consumer_tag="t", nowait=True),
        commands.Basic.Cancel(consumer_tag="t", nowait=True),
        commands.Exchange.Delete(exchange="nwx", nowait=True),
    )
    assert frames == []
    assert names(client.call(1, commands.Queue.Declare(queue="nw", passive=True))) == ["Queue.DeclareOk"]


# ------------------------------------------------------------------ acks
def test_unknown_delivery_tag_is_406(client) -> None:
    assert close_of(client.call(1, commands.Basic.Ack(delivery_tag=5))) == (1, 406, "PRECONDITION_FAILED - unknown delivery tag 5", 60, 80)
    client.open(2)
    assert close_of(client.call(2, commands.Basic.Reject(delivery_tag=3))) == (2, 406, "PRECONDITION_FAILED - unknown delivery tag 3", 60, 90)
    client.open(3)
    assert close_of(client.call(3, commands.Basic.Nack(delivery_tag=7))) == (3, 406, "PRECONDITION_FAILED - unknown delivery tag 7", 60, 120)


def test_multiple_with_tag_zero_settles_everything(client) -> None:
    assert client.call(1, commands.Basic.Ack(delivery_tag=0, multiple=True), commands.Basic.Nack(delivery_tag=0, multiple=True)) == []
    assert close_of(client.call(1, commands.Basic.Ack(delivery_tag=0))) == (1, 406, "PRECONDITION_FAILED - unknown delivery tag 0", 60, 80)


def test_double_ack_and_ack_of_no_ack_get(client) -> None:
    declare(client, "q")
    client.publish(1, "", "q", b"a")
    client.publish(1, "", "q", b"b")
    client.call(1, commands.Basic.Get(queue="q"))
    assert client.call(1, commands.Basic.Ack(delivery_tag=1)) == []
    assert close_of(client.call(1, commands.Basic.Ack(delivery_tag=1)))[1:3] == (406, "PRECONDITION_FAILED - unknown delivery tag 1")
    client.open(2)
    client.call(2, commands.Basic.Get(queue="q", no_ack=True))
    assert close_of(client.call(2, commands.Basic.Ack(delivery_tag=1)))[1:3] == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


def test_reject_requeue_sets_redelivered_and_keeps_position(client) -> None:
    """RabbitMQ 3.10: get 1-3 of 5, publish 6, reject 2, 3, 1 (requeue), drain."""
    declare(client, "q")
    for i in range(1, 6):
        client.publish(1, "", "q", str(i).encode())
    for _ in range(3):
        client.call(1, commands.Basic.Get(queue="q"))
    client.publish(1, "", "q", b"6")
    for tag in (2, 3, 1):
        assert client.call(1, commands.Basic.Reject(delivery_tag=tag, requeue=True)) == []
    frames = client.call(1, *[commands.Basic.Get(queue="q", no_ack=True) for _ in range(6)])
    assert bodies(frames) == [b"1", b"2", b"3", b"4", b"5", b"6"]
    assert [f.value.redelivered for f in frames if f.name == "Basic.GetOk"] == [True, True, True, False, False, False]


def test_prefetch_nack_requeue_and_ack_sequence(client) -> None:
    """Recorded from RabbitMQ 3.10 (qos 1, three messages, nack-requeue, ack)."""
    declare(client, "q")
    client.call(1, commands.Basic.Qos(prefetch_count=1))
    for body in (b"1", b"2", b"3"):
        client.publish(1, "", "q", body)
    frames = client.call(1, commands.Basic.Consume(queue="q", consumer_tag="c"))
    frames += client.call(1, commands.Basic.Nack(delivery_tag=1, requeue=True))
    frames += client.call(1, commands.Basic.Ack(delivery_tag=2))
    frames += client.call(1, commands.Basic.Cancel(consumer_tag="c"), commands.Queue.Delete(queue="q"))
    delivers = [(f.value.delivery_tag, f.value.redelivered) for f in frames if f.name == "Basic.Deliver"]
    assert delivers == [(1, False), (2, True), (3, False)]
    assert bodies(frames) == [b"1", b"1", b"2"]
    assert names(frames)[-2:] == ["Basic.CancelOk", "Queue.DeleteOk"]
    assert frames[-1].value.message_count == 1


def test_declare_ok_counts_and_ack_after_cancel(client) -> None:
    """Recorded from RabbitMQ 3.10: counts exclude unacked messages; a
    cancelled consumer's deliveries can still be acked on its channel."""
    client.open(2)
    declare(client, "q")
    client.call(1, commands.Basic.Qos(prefetch_count=1))
    for body in (b"1", b"2", b"3"):
        client.publish(1, "", "q", body)
    client.call(1, commands.Basic.Consume(queue="q", consumer_tag="c"))
    ok = client.call(2, commands.Queue.Declare(queue="q"))[0].value
    assert (ok.message_count, ok.consumer_count) == (2, 1)
    assert names(client.call(1, commands.Basic.Cancel(consumer_tag="c"))) == ["Basic.CancelOk"]
    assert client.call(1, commands.Basic.Ack(delivery_tag=1)) == []
    ok = client.call(2, commands.Queue.Declare(queue="q"))[0].value
    assert (ok.message_count, ok.consumer_count) == (2, 0)
    assert client.call(2, commands.Basic.Get(queue="q"))[0].value.message_count == 1


def test_recover_requeues_unacked(client) -> None:
    declare(client, "q")
    client.publish(1, "", "q", b"a")
    client.call(1, commands.Basic.Get(queue="q"))
    assert names(client.call(1, commands.Basic.Recover(requeue=True))) == ["Basic.RecoverOk"]
    frames = client.call(1, commands.Basic.Get(queue="q", no_ack=True))
    assert frames[0].value.redelivered
    assert frames[0].value.delivery_tag == 2


def test_channel_close_requeues_unacked(client) -> None:
    declare(client, "q")
    client.publish(1, "", "q", b"a")
    client.call(1, commands.Basic.Get(queue="q"))
    client.call(1, commands.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0))
    client.open(2)
    frames = client.call(2, commands.Basic.Get(queue="q", no_ack=True))
    assert frames[0].value.redelivered and bodies(frames) == [b"a"]


# ------------------------------------------------------------- consumers
def test_consumer_tag_reuse_closes_the_connection(client) -> None:
    declare(client, "q")
    assert names(client.call(1, commands.Basic.Consume(queue="q", consumer_tag="t1"))) == ["Basic.ConsumeOk"]
    assert close_of(client.call(1, commands.Basic.Consume(queue="q", consumer_tag="t1"))) == (
        0, 530, "NOT_ALLOWED - attempt to reuse consumer tag 't1'", 60, 20,
    )


def test_generated_consumer_tag(client) -> None:
    declare(client, "q")
    tag = client.call(1, commands.Basic.Consume(queue="q"))[0].value.consumer_tag
    assert re.fullmatch(r"amq\.ctag-[A-Za-z0-9_-]{22}", tag)


def test_cancel_of_unknown_tag_is_answered(client) -> None:
    frames = client.call(1, commands.Basic.Cancel(consumer_tag="nobody"))
    assert names(frames) == ["Basic.CancelOk"]
    assert frames[0].value.consumer_tag == "nobody"


def test_exclusive_consumer_refuses_others(client) -> None:
    declare(client, "q")
    client.call(1, commands.Basic.Consume(queue="q", consumer_tag="x", exclusive=True))
    client.open(2)
    assert close_of(client.call(2, commands.Basic.Consume(queue="q", consumer_tag="y"))) == (
        2, 403, "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use", 60, 20,
    )
    client.open(3)
    assert names(client.call(3, commands.Basic.Get(queue="q"))) == ["Basic.GetEmpty"]


def test_delete_ok_comes_before_cancel_of_own_consumer(client) -> None:
    declare(client, "q")
    client.call(1, commands.Basic.Consume(queue="q", consumer_tag="c"))
    frames = client.call(1, commands.Queue.Delete(queue="q"))
    assert names(frames) == ["Queue.DeleteOk", "Basic.Cancel"]
    assert frames[1].value.consumer_tag == "c"
    assert frames[1].value.nowait


def test_delete_if_unused_if_empty_and_missing_over_the_wire(client) -> None:
    declare(client, "q")
    client.call(1, commands.Basic.Consume(queue="q", consumer_tag="c"))
    assert close_of(client.call(1, commands.Queue.Delete(queue="q", if_unused=True))) == (1, 406, "PRECONDITION_FAILED - queue 'q' in vhost '/' in use", 50, 40)
    client.open(2)  # channel 1's consumer went with channel 1
    client.publish(2, "", "q", b"x")
    assert close_of(client.call(2, commands.Queue.Delete(queue="q", if_empty=True))) == (2, 406, "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty", 50, 40)
    client.open(3)
    frames = client.call(3, commands.Queue.Delete(queue="missing"))
    assert names(frames) == ["Queue.DeleteOk"]
    assert frames[0].value.message_count == 0
    frames = client.call(3, commands.Queue.Delete(queue="q", if_unused=True))
    assert frames[0].value.message_count == 1


# ------------------------------------------------------------- confirms
def test_confirms_number_publishes_and_return_precedes_ack(client) -> None:
    """Recorded from RabbitMQ 3.10."""
    declare(client, "q")
    assert names(client.call(1, commands.Confirm.Select())) == ["Confirm.SelectOk"]
    frames = client.publish(1, "", "q", b"a")
    frames += client.publish(1, "", "nowhere", b"bb", mandatory=True)
    frames += client.publish(1, "", "nowhere", b"c")
    frames += client.publish(1, "amq.direct", "nowhere", b"dd", mandatory=True)
    assert names(frames) == [
        "Basic.Ack",
        "Basic.Return", "header", "body", "Basic.Ack",
        "Basic.Ack",
        "Basic.Return", "header", "body", "Basic.Ack",
    ]
    acks = [(f.value.delivery_tag, f.value.multiple) for f in frames if f.name == "Basic.Ack"]
    assert acks == [(1, False), (2, False), (3, False), (4, False)]
    returns = [f.value for f in frames if f.name == "Basic.Return"]
    assert [(r.reply_code, r.reply_text, r.exchange, r.routing_key) for r in returns] == [
        (312, "NO_ROUTE", "", "nowhere"),
        (312, "NO_ROUTE", "amq.direct", "nowhere"),
    ]
    assert bodies(frames) == [b"bb", b"dd"]


def test_confirm_select_nowait(client) -> None:
    assert client.call(1, commands.Confirm.Select(nowait=True)) == []
    assert names(client.publish(1, "amq.direct", "k", b"x")) == ["Basic.Ack"]


def test_mandatory_return_without_confirms(client) -> None:
    frames = client.publish(1, "amq.fanout", "k", b"xyz", mandatory=True, properties=PROPERTIES_ALL_TYPES)
    assert names(frames) == ["Basic.Return", "header", "body"]
    assert frames[1].value == (3, PROPERTIES_ALL_TYPES)


# ------------------------------------------------------------ transactions
def test_tx_commit_and_rollback(client) -> None:
    """Recorded from RabbitMQ 3.10."""
    declare(client, "q")
    assert names(client.call(1, commands.Tx.Select())) == ["Tx.SelectOk"]
    client.publish(1, "", "q", b"a")
    assert client.call(1, commands.Queue.Declare(queue="q", passive=True))[0].value.message_count == 0
    assert names(client.call(1, commands.Tx.Rollback())) == ["Tx.RollbackOk"]
    assert client.call(1, commands.Queue.Declare(queue="q", passive=True))[0].value.message_count == 0
    assert client.publish(1, "", "q", b"b") == []
    assert client.publish(1, "", "nowhere", b"c", mandatory=True) == []
    frames = client.call(1, commands.Tx.Commit())
    assert names(frames) == ["Basic.Return", "header", "body", "Tx.CommitOk"]
    assert client.call(1, commands.Queue.Declare(queue="q", passive=True))[0].value.message_count == 1
    # an ack inside a rolled-back transaction is forgotten; the delivery stays unacked
    assert names(client.call(1, commands.Basic.Get(queue="q"))) == ["Basic.GetOk", "header", "body"]
    client.call(1, commands.Basic.Ack(delivery_tag=1))
    assert names(client.call(1, commands.Tx.Rollback())) == ["Tx.RollbackOk"]
    client.call(1, commands.Basic.Ack(delivery_tag=1))
    assert names(client.call(1, commands.Tx.Commit())) == ["Tx.CommitOk"]
    client.call(1, commands.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0))
    client.open(2)
    assert names(client.call(2, commands.Basic.Get(queue="q"))) == ["Basic.GetEmpty"]


def test_tx_uncommitted_publishes_vanish_with_the_channel(client) -> None:
    declare(client, "q")
    client.call(1, commands.Tx.Select())
    client.publish(1, "", "q", b"a")
    client.call(1, commands.Channel.Close(reply_code=200, reply_text="", class_id=0, method_id=0))
    client.open(2)
    assert client.call(2, commands.Queue.Declare(queue="q", passive=True))[0].value.message_count == 0


# -------------------------------------------------------- headers over wire
def header_case(case_id: str, binding: list[bytes], headers: list[bytes] | None, routed: bool) -> Any:
    return pytest.param(binding, headers, routed, id=case_id)


#: binding arguments, message headers (None: no headers property), routed in RabbitMQ 3.10.8?
HEADER_CASES = [
    header_case("int-widths", [field("a", b_(1))], [field("a", l_(1))], True),
    header_case("unsigned-short-vs-int", [field("a", u_(5))], [field("a", I_(5))], True),
    header_case("short-vs-int", [field("a", s_(5))], [field("a", I_(5))], True),
    header_case("float-vs-double", [field("a", f_(1.5))], [field("a", d_(1.5))], True),
    header_case("int-vs-other-double", [field("a", I_(1))], [field("a", d_(1.5))], False),
    header_case("longstr-vs-bytes", [field("a", S_(b"abc"))], [field("a", x_(b"abc"))], True),
    header_case("non-utf8-longstr", [field("a", S_(b"\xff\xfe"))], [field("a", S_(b"\xff\xfe"))], True),
    header_case("non-utf8-longstr-vs-bytes", [field("a", S_(b"\xff\xfe"))], [field("a", x_(b"\xff\xfe"))], True),
    header_case("bool-vs-int", [field("a", t_(True))], [field("a", I_(1))], False),
    header_case("false-vs-zero", [field("a", t_(False))], [field("a", I_(0))], False),
    header_case("str-vs-int", [field("a", S_(b"1"))], [field("a", I_(1))], False),
    header_case("void-present", [field("a", V_)], [field("a", S_(b"zz"))], True),
    header_case("void-missing", [field("a", V_)], [field("b", S_(b"zz"))], False),
    header_case("int-vs-void", [field("a", I_(1))], [field("a", V_)], False),
    header_case("void-vs-void", [field("a", V_)], [field("a", V_)], True),
    header_case("decimal", [field("a", D_(2, 12345))], [field("a", D_(2, 12345))], True),
    header_case("table", [field("a", F_(field("x", I_(1))))], [field("a", F_(field("x", I_(1))))], True),
    header_case("array", [field("a", A_(I_(1), S_(b"x")))], [field("a", A_(I_(1), S_(b"x")))], True),
    header_case("all-empty", [], [], True),
    header_case("all-no-headers", [], None, True),
    header_case("any-empty", [field("x-match", S_(b"any"))], [field("a", I_(1))], False),
    header_case("any-no-headers", [field("x-match", S_(b"any")), field("a", V_)], None, False),
    header_case("x-key-ignored", [field("x-foo", S_(b"bar"))], [], True),
    header_case("all-with-x", [field("x-match", S_(b"all-with-x")), field("x-foo", S_(b"bar"))], [], False),
    header_case("all-with-x-match", [field("x-match", S_(b"all-with-x")), field("x-foo", S_(b"bar"))], [field("x-foo", S_(b"bar"))], True),
    header_case("any-with-x", [field("x-match", S_(b"any-with-x")), field("x-foo", S_(b"bar")), field("a", I_(2))], [field("x-foo", S_(b"bar"))], True),
    header_case("any-ignores-x", [field("x-match", S_(b"any")), field("x-foo", S_(b"bar")), field("a", I_(2))], [field("x-foo", S_(b"bar"))], False),
    header_case(
        "int-vs-equal-double", [field("a", I_(1))], [field("a", d_(1.0))], True,
    ),
    header_case(
        "long-vs-timestamp", [field("a", l_(1700000000))], [field("a", T_(1700000000))], True,
    ),
    header_case(
        "timestamp-vs-double", [field("a", T_(5))], [field("a", d_(5.0))], True,
    ),
    header_case(
        "decimal-other-scale", [field("a", D_(2, 12345))], [field("a", D_(3, 123450))], False,
    ),
    header_case(
        "table-widths", [field("a", F_(field("x", b_(1))))], [field("a", F_(field("x", I_(1))))], False,
    ),
    header_case(
        "array-widths", [field("a", A_(b_(1)))], [field("a", A_(I_(1)))], False,
    ),
]


def _raw_queue_bind(channel: int, queue: str, exchange: str, arguments: bytes) -> bytes:
    """queue.bind with an argument table encoded by hand (exact wire types)."""
    payload = struct.pack(">IH", (50 << 16) | 20, 0) + _shortstr(queue) + _shortstr(exchange) + _shortstr("") + b"\x00" + arguments
    return struct.pack(">BHI", 1, channel, len(payload)) + payload + b"\xce"


@pytest.mark.parametrize(("binding", "headers", "routed"), HEADER_CASES)
def test_headers_exchange_over_the_wire(client, binding: list[bytes], headers: list[bytes] | None, routed: bool) -> None:
    declare(client, "hq")
    assert names(client.raw(_raw_queue_bind(1, "hq", "amq.headers", table(*binding)))) == ["Queue.BindOk"]
    properties = headers_properties(None if headers is None else table(*headers))
    assert client.publish(1, "amq.headers", "", b"m", properties=properties) == []
    frames = client.call(1, commands.Basic.Get(queue="hq", no_ack=True))
    assert names(frames)[0] == ("Basic.GetOk" if routed else "Basic.GetEmpty")


def test_x_match_validation_over_the_wire(client) -> None:
    declare(client, "q")
    frames = client.raw(_raw_queue_bind(1, "q", "amq.headers", table(field("x-match", S_(b"some")))))
    assert close_of(frames) == (1, 406, 'PRECONDITION_FAILED - Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x', 50, 20)
    client.open(2)
    frames = client.raw(_raw_queue_bind(2, "q", "amq.headers", table(field("x-match", b_(5)))))
    assert close_of(frames) == (2, 406, "PRECONDITION_FAILED - Invalid x-match field type byte (value 5); expected longstr", 50, 20)


def test_x_match_of_type_binary_over_the_wire(client) -> None:
    declare(client, "q")
    frames = client.raw(_raw_queue_bind(1, "q", "amq.headers", table(field("x-match", x_(b"any")))))
    assert close_of(frames) == (1, 406, 'PRECONDITION_FAILED - Invalid x-match field type binary (value <<"any">>); expected longstr', 50, 20)


# --------------------------------------------------- connections sharing a broker
def test_exclusive_queue_is_locked_for_another_connection() -> None:
    """Recorded from RabbitMQ 3.10: every queue operation of B fails with 405."""
    broker = Broker()
    a, b = Client(broker), Client(broker)
    a.open(1)
    declare(a, "exq", exclusive=True)
    attempts = [
        (commands.Queue.Declare(queue="exq", passive=True), (50, 10)),
        (commands.Queue.Declare(queue="exq", exclusive=True), (50, 10)),
        (commands.Queue.Declare(queue="exq"), (50, 10)),
        (commands.Basic.Consume(queue="exq"), (60, 20)),
        (commands.Queue.Delete(queue="exq"), (50, 40)),
        (commands.Queue.Bind(queue="exq", exchange="amq.direct", routing_key="k"), (50, 20)),
        (commands.Queue.Purge(queue="exq"), (50, 30)),
        (commands.Basic.Get(queue="exq"), (60, 70)),
    ]
    for number, (method, ids) in enumerate(attempts, start=1):
        b.open(number)
        assert close_of(b.call(number, method)) == (number, 405, LOCKED.format("exq"), *ids)
    # anyone may publish to it
    b.open(20)
    assert b.publish(20, "", "exq", b"hi") == []
    frames = a.call(1, commands.Basic.Get(queue="exq", no_ack=True))
    assert bodies(frames) == [b"hi"]


def test_exclusive_queue_goes_with_its_connection() -> None:
    broker = Broker()
    a, b = Client(broker), Client(broker)
    a.open(1)
    declare(a, "exq", exclusive=True)
    assert channel_names(a.raw(m(commands.Connection.Close(reply_code=200, reply_text="", class_id=0, method_id=0)))) == [(0, "Connection.CloseOk")]
    b.open(1)
    assert close_of(b.call(1, commands.Queue.Declare(queue="exq", passive=True)))[1:3] == (404, "NOT_FOUND - no queue 'exq' in vhost '/'")


def test_delivery_from_another_connection_wakes_the_consumer() -> None:
    broker = Broker()
    a, b = Client(broker), Client(broker)
    a.open(1)
    b.open(1)
    declare(a, "q")
    a.call(1, commands.Basic.Consume(queue="q", consumer_tag="ca", no_ack=True))
    assert a.wakes == 0  # output made inside receive_data never wakes
    assert b.publish(1, "", "q", b"one") == []
    assert a.wakes == 1
    # more output before the gateway flushes does not wake again
    b.publish(1, "", "q", b"two")
    assert a.wakes == 1
    frames = a.pending()
    assert names(frames) == ["Basic.Deliver", "header", "body"] * 2
    assert bodies(frames) == [b"one", b"two"]
    assert a.pending() == []
    b.publish(1, "", "q", b"three")
    assert a.wakes == 2
    assert b.wakes == 0


def test_round_robin_across_connections_and_requeue_on_close() -> None:
    """Recorded from RabbitMQ 3.10: A's unacked message goes to B, redelivered."""
    broker = Broker()
    a, b = Client(broker), Client(broker)
    a.open(1)
    b.open(1)
    declare(a, "q")
    a.call(1, commands.Basic.Consume(queue="q", consumer_tag="ca"))
    b.call(1, commands.Basic.Consume(queue="q", consumer_tag="cb"))
    assert b.publish(1, "", "q", b"1") == []
    # b's own delivery is written during its receive_data call
    assert bodies(b.publish(1, "", "q", b"2")) == [b"2"]
    assert bodies(a.pending()) == [b"1"]
    a.raw(m(commands.Connection.Close(reply_code=200, reply_text="", class_id=0, method_id=0)))
    frames = b.pending()
    assert [(f.value.consumer_tag, f.value.delivery_tag, f.value.redelivered) for f in frames if f.name == "Basic.Deliver"] == [("cb", 2, True)]
    assert bodies(frames) == [b"1"]


def test_peer_gone_requeues_and_frees_exclusive_queues() -> None:
    broker = Broker()
    a, b = Client(broker), Client(broker)
    a.open(1)
    b.open(1)
    declare(b, "q")
    declare(a, "mine", exclusive=True)
    b.publish(1, "", "q", b"x")
    a.call(1, commands.Basic.Get(queue="q"))
    a.conn.receive_data(b"")
    assert "mine" not in broker.vhosts["/"].queues
    frames = b.call(1, commands.Basic.Get(queue="q", no_ack=True))
    assert frames[0].value.redelivered


def test_queue_deleted_by_another_connection_cancels_consumer() -> None:
    broker = Broker()
    a, b = Client(broker), Client(broker)
    a.open(1)
    b.open(1)
    declare(a, "q")
    a.call(1, commands.Basic.Consume(queue="q", consumer_tag="ca"))
    assert names(b.call(1, commands.Queue.Delete(queue="q"))) == ["Queue.DeleteOk"]
    assert a.wakes == 1
    frames = a.pending()
    assert channel_names(frames) == [(1, "Basic.Cancel")]
    assert (frames[0].value.consumer_tag, frames[0].value.nowait) == ("ca", True)


def test_no_cancel_notification_without_the_capability() -> None:
    broker = Broker()
    a, b = Client(broker, capabilities={}), Client(broker)
    a.open(1)
    b.open(1)
    declare(a, "q")
    a.call(1, commands.Basic.Consume(queue="q", consumer_tag="ca"))
    b.call(1, commands.Queue.Delete(queue="q"))
    assert a.pending() == []
