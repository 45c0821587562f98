"""pika's BlockingConnection against wiregate: what an unmodified pika app observes.

Every expectation here (reply codes, reply texts, redelivered flags, header
value types) was checked against RabbitMQ 3.10.8.
"""

from __future__ import annotations

import datetime
import decimal
import time
from collections.abc import Callable, Iterator

import pika
import pika.compat
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

Delivery = tuple[Basic.Deliver, BasicProperties, bytes]


# --- helpers -----------------------------------------------------------------------


class Cleanup:
    """Queues and exchanges a test declared, deleted afterwards on a fresh connection."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def queue(self, name: str) -> str:
        self.queues.append(name)
        return name

    def exchange(self, name: str) -> str:
        self.exchanges.append(name)
        return name

    def run(self) -> None:
        if not self.queues and not self.exchanges:
            return
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            channel = connection.channel()
            for queue in self.queues:
                channel.queue_delete(queue)
            for exchange in self.exchanges:
                channel.exchange_delete(exchange)
        finally:
            connection.close()


@pytest.fixture
def cleanup(amqp_url: str) -> Iterator[Cleanup]:
    resources = Cleanup(amqp_url)
    yield resources
    resources.run()


@pytest.fixture
def connection(amqp_url: str) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield conn
    if conn.is_open:
        conn.close()


@pytest.fixture
def channel(connection: pika.BlockingConnection) -> BlockingChannel:
    return connection.channel()


def declare_queue(channel: BlockingChannel, cleanup: Cleanup, name: str, **kwargs: object) -> str:
    channel.queue_declare(cleanup.queue(name), **kwargs)
    return name


def consume(
    connection: pika.BlockingConnection,
    channel: BlockingChannel,
    queue: str,
    count: int,
    *,
    timeout: float = 5.0,
    settle: float = 0.0,
    auto_ack: bool = False,
) -> list[Delivery]:
    """Consume until ``count`` deliveries arrived, then ``settle`` more seconds; cancel; return them."""
    received: list[Delivery] = []

    def on_message(_channel: BlockingChannel, method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        received.append((method, properties, body))

    tag = channel.basic_consume(queue, on_message, auto_ack=auto_ack)
    wait_until(connection, lambda: len(received) >= count, timeout)
    pump(connection, settle)
    channel.basic_cancel(tag)
    return received


def pump(connection: pika.BlockingConnection, seconds: float) -> None:
    """Process events for ``seconds`` (``process_data_events`` alone returns at the first event)."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        connection.process_data_events(time_limit=min(remaining, 0.02))


def wait_until(connection: pika.BlockingConnection, condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.02)


def get_eventually(channel: BlockingChannel, queue: str, timeout: float = 2.0) -> tuple:
    """basic.get (auto-ack), retried briefly: RabbitMQ dead-letters and expires asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        got = channel.basic_get(queue, auto_ack=True)
        if got[0] is not None or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [body for _method, _properties, body in deliveries]


def drain(channel: BlockingChannel, queue: str) -> list[bytes]:
    """Everything ready in ``queue``, taken with basic.get and auto-ack."""
    taken = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append(body)


# --- exchange types ---------------------------------------------------------------------


def test_direct_exchange_routes_by_exact_key(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    exchange = cleanup.exchange(f"{unique}.direct")
    channel.exchange_declare(exchange, "direct")
    black = declare_queue(channel, cleanup, f"{unique}.black")
    green = declare_queue(channel, cleanup, f"{unique}.green")
    channel.queue_bind(black, exchange, "black")
    channel.queue_bind(green, exchange, "green")
    channel.queue_bind(green, exchange, "both")
    channel.queue_bind(black, exchange, "both")
    for key in ("black", "green", "both", "orange", "Black"):
        channel.basic_publish(exchange, key, key.encode())

    black_got = consume(connection, channel, black, 2)
    green_got = consume(connection, channel, green, 2)
    for method, _properties, _body in black_got + green_got:
        channel.basic_ack(method.delivery_tag)

    assert bodies(black_got) == [b"black", b"both"]
    assert bodies(green_got) == [b"green", b"both"]
    method, _properties, _body = black_got[0]
    assert (method.exchange, method.routing_key, method.redelivered) == (exchange, "black", False)
    assert channel.queue_declare(black, passive=True).method.message_count == 0


def test_default_exchange_routes_to_the_queue_named_by_the_key(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"direct to queue")
    channel.basic_publish("", f"{unique}.missing", b"dropped")
    received = consume(connection, channel, queue, 1, settle=0.1, auto_ack=True)
    assert bodies(received) == [b"direct to queue"]
    assert received[0][0].exchange == ""


def test_fanout_exchange_copies_to_every_bound_queue(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    exchange = cleanup.exchange(f"{unique}.fanout")
    channel.exchange_declare(exchange, "fanout")
    queues = [declare_queue(channel, cleanup, f"{unique}.q{i}") for i in range(3)]
    for queue in queues:
        channel.queue_bind(queue, exchange, routing_key=f"ignored-{queue}")
    channel.basic_publish(exchange, "any key at all", b"one")
    channel.basic_publish(exchange, "", b"two")

    for queue in queues:
        received = consume(connection, channel, queue, 2)
        channel.basic_ack(received[-1][0].delivery_tag, multiple=True)
        assert bodies(received) == [b"one", b"two"]
        assert received[0][0].routing_key == "any key at all"


TOPIC_BINDINGS = {"q1": ["*.orange.*"], "q2": ["*.*.rabbit", "lazy.#"], "q3": ["#"], "q4": ["a.#.z"]}
TOPIC_CASES = {
    "quick.orange.rabbit": {"q1", "q2", "q3"},
    "lazy.orange.elephant": {"q1", "q2", "q3"},
    "quick.orange.fox": {"q1", "q3"},
    "lazy.brown.fox": {"q2", "q3"},
    "lazy.pink.rabbit": {"q2", "q3"},
    "quick.brown.fox": {"q3"},
    "orange": {"q3"},
    "quick.orange.male.rabbit": {"q3"},
    "lazy.orange.male.rabbit": {"q2", "q3"},
    "lazy": {"q2", "q3"},
    "a.z": {"q3", "q4"},
    "a.b.c.z": {"q3", "q4"},
    "": {"q3"},
}


def test_topic_exchange_matches_star_and_hash(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    exchange = cleanup.exchange(f"{unique}.topic")
    channel.exchange_declare(exchange, "topic")
    for short, patterns in TOPIC_BINDINGS.items():
        declare_queue(channel, cleanup, f"{unique}.{short}")
        for pattern in patterns:
            channel.queue_bind(f"{unique}.{short}", exchange, pattern)
    for key in TOPIC_CASES:
        channel.basic_publish(exchange, key, key.encode())

    expected = {short: [key.encode() for key, matched in TOPIC_CASES.items() if short in matched] for short in TOPIC_BINDINGS}
    actual = {}
    for short in TOPIC_BINDINGS:
        received = consume(connection, channel, f"{unique}.{short}", len(expected[short]), settle=0.05)
        channel.basic_ack(0, multiple=True)
        actual[short] = bodies(received)
    assert actual == expected


def test_headers_exchange_matches_all_and_any(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    exchange = cleanup.exchange(f"{unique}.headers")
    channel.exchange_declare(exchange, "headers")
    all_queue = declare_queue(channel, cleanup, f"{unique}.all")
    any_queue = declare_queue(channel, cleanup, f"{unique}.any")
    channel.queue_bind(all_queue, exchange, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    channel.queue_bind(any_queue, exchange, arguments={"x-match": "any", "format": "pdf", "type": "report"})
    messages = {
        b"both": {"format": "pdf", "type": "report"},
        b"both-and-more": {"format": "pdf", "type": "report", "extra": 1},
        b"format-only": {"format": "pdf"},
        b"type-only": {"type": "report", "format": "zip"},
        b"neither": {"format": "zip"},
        b"no-headers": None,
    }
    for body, headers in messages.items():
        channel.basic_publish(exchange, "key is ignored", body, BasicProperties(headers=headers))

    all_got = consume(connection, channel, all_queue, 2, settle=0.05, auto_ack=True)
    any_got = consume(connection, channel, any_queue, 4, settle=0.05, auto_ack=True)
    assert bodies(all_got) == [b"both", b"both-and-more"]
    assert bodies(any_got) == [b"both", b"both-and-more", b"format-only", b"type-only"]


def test_exchange_to_exchange_binding_forwards(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    source = cleanup.exchange(f"{unique}.source")
    destination = cleanup.exchange(f"{unique}.destination")
    channel.exchange_declare(source, "topic")
    channel.exchange_declare(destination, "fanout")
    channel.exchange_bind(destination, source, "orders.*")
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.queue_bind(queue, destination)
    channel.basic_publish(source, "orders.new", b"forwarded")
    channel.basic_publish(source, "invoices.new", b"not forwarded")
    assert drain(channel, queue) == [b"forwarded"]


# --- basic.get, qos, nack/reject ----------------------------------------------------------


def test_basic_get_reports_remaining_count_then_empty(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(3):
        channel.basic_publish("", queue, f"m{i}".encode())

    method, properties, body = channel.basic_get(queue)
    assert isinstance(method, Basic.GetOk)
    assert (body, method.message_count, method.redelivered, method.delivery_tag) == (b"m0", 2, False, 1)
    assert (method.exchange, method.routing_key) == ("", queue)
    channel.basic_ack(method.delivery_tag)
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.message_count, method.delivery_tag) == (b"m1", 1, 2)
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.message_count) == (b"m2", 0)
    assert channel.basic_get(queue) == (None, None, None)


def test_qos_prefetch_limits_unacked_deliveries(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(10):
        channel.basic_publish("", queue, str(i).encode())
    channel.basic_qos(prefetch_count=3)
    received: list[Delivery] = []
    channel.basic_consume(queue, lambda _ch, method, properties, body: received.append((method, properties, body)))

    wait_until(connection, lambda: len(received) >= 3)
    pump(connection, 0.2)
    assert bodies(received) == [b"0", b"1", b"2"]
    channel.basic_ack(received[0][0].delivery_tag)
    wait_until(connection, lambda: len(received) >= 4)
    pump(connection, 0.2)
    assert bodies(received) == [b"0", b"1", b"2", b"3"]
    channel.basic_ack(received[3][0].delivery_tag, multiple=True)
    wait_until(connection, lambda: len(received) >= 7)
    pump(connection, 0.2)
    assert len(received) == 7
    assert channel.queue_declare(queue, passive=True).method.message_count == 3


def test_nack_multiple_requeue_redelivers_in_original_order(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(5):
        channel.basic_publish("", queue, f"m{i}".encode())
    first = consume(connection, channel, queue, 5)
    assert [method.redelivered for method, _p, _b in first] == [False] * 5
    channel.basic_nack(first[-1][0].delivery_tag, multiple=True, requeue=True)

    again = consume(connection, channel, queue, 5)
    channel.basic_ack(again[-1][0].delivery_tag, multiple=True)
    assert bodies(again) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [method.redelivered for method, _p, _b in again] == [True] * 5


def test_reject_requeue_puts_messages_back_at_their_original_position(
    channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(4):
        channel.basic_publish("", queue, f"m{i}".encode())
    m0, _properties, _body = channel.basic_get(queue)
    m1, _properties, _body = channel.basic_get(queue)
    channel.basic_reject(m1.delivery_tag, requeue=True)
    channel.basic_reject(m0.delivery_tag, requeue=True)

    taken = []
    while True:
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        taken.append((body, method.redelivered))
    assert taken == [(b"m0", True), (b"m1", True), (b"m2", False), (b"m3", False)]


def test_reject_without_requeue_drops_the_message(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"dropped")
    channel.basic_publish("", queue, b"kept")
    method, _properties, _body = channel.basic_get(queue)
    channel.basic_reject(method.delivery_tag, requeue=False)
    assert drain(channel, queue) == [b"kept"]


def test_closing_a_channel_requeues_its_unacked_messages(
    connection: pika.BlockingConnection, cleanup: Cleanup, unique: str
) -> None:
    first = connection.channel()
    queue = declare_queue(first, cleanup, f"{unique}.q")
    first.basic_publish("", queue, b"a")
    first.basic_publish("", queue, b"b")
    assert len(consume(connection, first, queue, 2)) == 2
    first.close()

    second = connection.channel()
    method, _properties, body = second.basic_get(queue, auto_ack=True)
    assert (body, method.redelivered, method.message_count) == (b"a", True, 1)


def test_ack_of_unknown_delivery_tag_closes_the_channel_with_406(channel: BlockingChannel) -> None:
    channel.basic_ack(42)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_qos(prefetch_count=1)
    assert closed.value.reply_code == 406
    assert closed.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 42"


# --- publisher confirms and transactions ----------------------------------------------------


def test_confirms_ack_routed_and_unroutable_non_mandatory_publishes(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"routed")
    channel.basic_publish("", f"{unique}.nowhere", b"unroutable but not mandatory")
    channel.basic_publish("", queue, b"mandatory and routed", mandatory=True)
    assert drain(channel, queue) == [b"routed", b"mandatory and routed"]


def test_confirms_raise_unroutable_error_for_mandatory_unroutable(channel: BlockingChannel, unique: str) -> None:
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError) as unroutable:
        channel.basic_publish("", f"{unique}.nowhere", b"returned", BasicProperties(message_id="r1"), mandatory=True)
    [returned] = unroutable.value.messages
    assert returned.method.reply_code == 312
    assert returned.method.reply_text == "NO_ROUTE"
    assert (returned.method.exchange, returned.method.routing_key) == ("", f"{unique}.nowhere")
    assert returned.properties.message_id == "r1"
    assert returned.body == b"returned"
    assert channel.is_open


def test_confirm_mode_publish_to_missing_exchange_closes_channel_404(channel: BlockingChannel, unique: str) -> None:
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_publish(f"{unique}.missing", "key", b"lost")
    assert closed.value.reply_code == 404
    assert closed.value.reply_text == f"NOT_FOUND - no exchange '{unique}.missing' in vhost '/'"


def test_returned_message_without_confirms_reaches_on_return_callback(
    connection: pika.BlockingConnection, channel: BlockingChannel, unique: str
) -> None:
    returned = []
    channel.add_on_return_callback(lambda _ch, method, properties, body: returned.append((method, body)))
    channel.basic_publish("", f"{unique}.nowhere", b"bounced", mandatory=True)
    wait_until(connection, lambda: returned)
    [(method, body)] = returned
    assert (method.reply_code, method.reply_text, body) == (312, "NO_ROUTE", b"bounced")


def test_tx_commit_publishes_and_rollback_discards(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    observer = connection.channel()
    channel.tx_select()
    channel.basic_publish("", queue, b"committed")
    assert observer.queue_declare(queue, passive=True).method.message_count == 0
    channel.tx_commit()
    assert observer.queue_declare(queue, passive=True).method.message_count == 1
    channel.basic_publish("", queue, b"rolled back")
    channel.tx_rollback()
    assert observer.queue_declare(queue, passive=True).method.message_count == 1
    assert drain(observer, queue) == [b"committed"]


def test_tx_acks_take_effect_on_commit_only(connection: pika.BlockingConnection, cleanup: Cleanup, unique: str) -> None:
    channel = connection.channel()
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"first")
    channel.basic_publish("", queue, b"second")
    channel.tx_select()
    first, _properties, _body = channel.basic_get(queue)
    second, _properties, _body = channel.basic_get(queue)
    channel.basic_ack(first.delivery_tag)
    channel.tx_rollback()
    channel.basic_ack(second.delivery_tag)
    channel.tx_commit()
    # The rolled-back ack left "first" unacked: closing the channel requeues it.
    channel.close()
    observer = connection.channel()
    method, _properties, body = observer.basic_get(queue, auto_ack=True)
    assert (body, method.redelivered, method.message_count) == (b"first", True, 0)


def test_tx_commit_without_select_closes_channel_406(channel: BlockingChannel) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.tx_commit()
    assert closed.value.reply_code == 406
    assert closed.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"


# --- bodies and properties -----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 131072 - 8, 131072 - 7, 1 << 20], ids=["empty", "one", "frame", "frame+1", "1MiB"])
def test_body_sizes_round_trip_through_consume_and_get(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str, size: int
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    body = bytes(i % 251 for i in range(size))
    channel.basic_publish("", queue, body)
    [(_method, _properties, consumed)] = consume(connection, channel, queue, 1, auto_ack=True)
    channel.basic_publish("", queue, body)
    _method, _properties, got = channel.basic_get(queue, auto_ack=True)
    assert consumed == body
    assert got == body


HEADERS = {
    "str": "text ✓",
    "empty-str": "",
    "bytes": b"\x00\xffraw",
    "int-small": 7,
    "int-negative": -1,
    "int32-max": 2**31 - 1,
    "int32-min": -(2**31),
    "int64": 2**31,
    "int64-max": 2**63 - 1,
    "int64-min": -(2**63),
    "decimal": decimal.Decimal("3.14"),
    "decimal-negative": decimal.Decimal("-12.5"),
    "datetime": datetime.datetime(2024, 5, 1, 12, 30, 45, tzinfo=datetime.timezone.utc),
    "true": True,
    "false": False,
    "none": None,
    "nested": {"level": 2, "inner": {"list": [1, "two", None], "flag": True}},
    "list": [1, 2**40, "three", b"four", {"five": 5}, [6, [7]], False, None],
    "empty-list": [],
    "empty-dict": {},
}


def wire_type(value: object) -> type:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31:
        return pika.compat.long
    return type(value)


def test_every_basic_property_and_header_type_round_trips(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    properties = BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers=HEADERS,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-1",
        reply_to="reply.queue",
        expiration="60000",
        message_id="msg-1",
        timestamp=1714566645,
        type="order.created",
        user_id="guest",
        app_id="wiregate-tests",
        cluster_id="cluster-a",
    )
    channel.basic_publish("", queue, b"{}", properties)
    [(_method, consumed, _body)] = consume(connection, channel, queue, 1, auto_ack=True)
    channel.basic_publish("", queue, b"{}", properties)
    _method, got, _body = channel.basic_get(queue, auto_ack=True)
    for received in (consumed, got):
        assert received.__dict__ == properties.__dict__
        # pika decodes 'I' (32-bit) as int and 'l' (64-bit) as its own long: the types show the wire encoding survived.
        assert {key: type(value) for key, value in received.headers.items()} == {key: wire_type(value) for key, value in HEADERS.items()}


def test_no_properties_arrive_as_none(connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"bare")
    [(_method, properties, _body)] = consume(connection, channel, queue, 1, auto_ack=True)
    assert properties.__dict__ == BasicProperties().__dict__


def test_user_id_other_than_the_login_closes_channel_406(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"forged", BasicProperties(user_id="mallory"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_get(queue)
    assert closed.value.reply_code == 406
    assert closed.value.reply_text == "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"


# --- declare errors ---------------------------------------------------------------------


def test_exclusive_queue_is_locked_for_a_second_connection(amqp_url: str, channel: BlockingChannel, unique: str) -> None:
    queue = f"{unique}.exclusive"
    channel.queue_declare(queue, exclusive=True)
    expected_text = (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' in vhost '/'. "
        "It could be originally declared on another connection or the exclusive property value does not match "
        "that of the original declaration."
    )
    other = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for attempt in (
            lambda ch: ch.queue_declare(queue, exclusive=True),
            lambda ch: ch.queue_declare(queue, passive=True),
            lambda ch: ch.basic_consume(queue, lambda *args: None),
            lambda ch: ch.basic_get(queue),
            lambda ch: ch.queue_delete(queue),
        ):
            other_channel = other.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
                attempt(other_channel)
            assert (closed.value.reply_code, closed.value.reply_text) == (405, expected_text)
        assert other.is_open
    finally:
        other.close()


def test_exclusive_queue_is_deleted_with_its_connection(amqp_url: str, channel: BlockingChannel, unique: str) -> None:
    queue = f"{unique}.exclusive"
    owner = pika.BlockingConnection(pika.URLParameters(amqp_url))
    owner.channel().queue_declare(queue, exclusive=True)
    owner.close()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(queue, passive=True)
    assert closed.value.reply_code == 404


def test_passive_declare_of_missing_queue_is_404(channel: BlockingChannel, unique: str) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(f"{unique}.missing", passive=True)
    assert closed.value.reply_code == 404
    assert closed.value.reply_text == f"NOT_FOUND - no queue '{unique}.missing' in vhost '/'"


def test_passive_declare_of_missing_exchange_is_404(channel: BlockingChannel, unique: str) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.exchange_declare(f"{unique}.missing", passive=True)
    assert closed.value.reply_code == 404
    assert closed.value.reply_text == f"NOT_FOUND - no exchange '{unique}.missing' in vhost '/'"


def test_bind_to_missing_exchange_is_404(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_bind(queue, f"{unique}.missing", "key")
    assert closed.value.reply_code == 404
    assert closed.value.reply_text == f"NOT_FOUND - no exchange '{unique}.missing' in vhost '/'"


def test_passive_declare_reports_counts(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"1")
    channel.basic_publish("", queue, b"2")
    consumer_channel = connection.channel()
    consumer_channel.basic_consume(queue, lambda *args: None, auto_ack=False)
    pump(connection, 0.1)
    declared = channel.queue_declare(queue, passive=True).method
    assert (declared.queue, declared.message_count, declared.consumer_count) == (queue, 0, 1)


def test_server_named_queue(channel: BlockingChannel) -> None:
    declared = channel.queue_declare("", exclusive=True).method
    assert declared.queue.startswith("amq.gen-")
    assert len(declared.queue) == len("amq.gen-") + 22
    channel.basic_publish("", declared.queue, b"to a generated name")
    assert drain(channel, declared.queue) == [b"to a generated name"]


@pytest.mark.parametrize(
    ("first", "second", "detail"),
    [
        ({"durable": False}, {"durable": True}, "inequivalent arg 'durable' for queue '{q}' in vhost '/': received 'true' but current is 'false'"),
        ({"auto_delete": False}, {"auto_delete": True}, "inequivalent arg 'auto_delete' for queue '{q}' in vhost '/': received 'true' but current is 'false'"),
        (
            {"arguments": {"x-max-length": 10}},
            {"arguments": {"x-max-length": 20}},
            "inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': received '20' but current is '10'",
        ),
        (
            {},
            {"arguments": {"x-message-ttl": 1000}},
            "inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': received the value '1000' of type 'signedint' but current is none",
        ),
    ],
    ids=["durable", "auto_delete", "x-max-length", "x-message-ttl-added"],
)
def test_queue_redeclare_mismatch_is_406(
    connection: pika.BlockingConnection, cleanup: Cleanup, unique: str, first: dict, second: dict, detail: str
) -> None:
    queue = f"{unique}.q"
    declare_queue(connection.channel(), cleanup, queue, **first)
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(queue, **second)
    assert closed.value.reply_code == 406
    assert closed.value.reply_text == "PRECONDITION_FAILED - " + detail.format(q=queue)


def test_exchange_redeclare_with_another_type_is_406(connection: pika.BlockingConnection, cleanup: Cleanup, unique: str) -> None:
    exchange = cleanup.exchange(f"{unique}.x")
    connection.channel().exchange_declare(exchange, "direct")
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.exchange_declare(exchange, "fanout")
    assert closed.value.reply_code == 406
    assert closed.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{exchange}' in vhost '/': "
        "received 'fanout' but current is 'direct'"
    )


def test_declare_with_reserved_amq_prefix_is_403(channel: BlockingChannel, unique: str) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(f"amq.{unique}")
    assert closed.value.reply_code == 403
    assert closed.value.reply_text == f"ACCESS_REFUSED - queue name 'amq.{unique}' contains reserved prefix 'amq.*'"


# --- consumer cancel, channel and connection errors -------------------------------------------


def test_deleting_the_queue_cancels_its_consumer(
    amqp_url: str, connection: pika.BlockingConnection, channel: BlockingChannel, unique: str
) -> None:
    queue = f"{unique}.q"
    channel.queue_declare(queue)
    cancelled: list[Basic.Cancel] = []
    channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method))
    tag = channel.basic_consume(queue, lambda *args: None)

    deleter = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        deleter.channel().queue_delete(queue)
    finally:
        deleter.close()
    wait_until(connection, lambda: cancelled)

    [cancel] = cancelled
    assert cancel.consumer_tag == tag
    assert channel.is_open
    assert channel.consumer_tags == []
    declared = channel.queue_declare("", exclusive=True).method
    assert declared.message_count == 0


def test_channel_error_leaves_connection_usable_on_a_new_channel(
    connection: pika.BlockingConnection, cleanup: Cleanup, unique: str
) -> None:
    broken = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        broken.queue_declare(f"{unique}.missing", passive=True)
    assert broken.is_closed
    with pytest.raises(pika.exceptions.ChannelWrongStateError):
        broken.basic_publish("", "x", b"")

    fresh = connection.channel()
    queue = declare_queue(fresh, cleanup, f"{unique}.q")
    fresh.basic_publish("", queue, b"still works")
    assert drain(fresh, queue) == [b"still works"]
    assert connection.is_open


def test_many_channels_on_one_connection(connection: pika.BlockingConnection, cleanup: Cleanup, unique: str) -> None:
    channels = [connection.channel() for _ in range(50)]
    queue = declare_queue(channels[0], cleanup, f"{unique}.q")
    for number, channel in enumerate(channels):
        channel.basic_publish("", queue, str(number).encode())
    assert sorted(int(body) for body in drain(channels[-1], queue)) == list(range(50))
    assert len({channel.channel_number for channel in channels}) == 50


def test_client_close_is_a_normal_shutdown(connection: pika.BlockingConnection) -> None:
    connection.channel()
    connection.close(reply_code=200, reply_text="Normal shutdown")
    assert connection.is_closed


def test_nonzero_prefetch_size_closes_the_connection_with_540(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        channel.basic_qos(prefetch_size=1)
    assert closed.value.reply_code == 540
    assert closed.value.reply_text == "NOT_IMPLEMENTED - prefetch_size!=0 (1)"
    assert connection.is_closed


def test_unknown_exchange_type_closes_the_connection_with_503(connection: pika.BlockingConnection, unique: str) -> None:
    channel = connection.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        channel.exchange_declare(f"{unique}.x", "no-such-type")
    assert closed.value.reply_code == 503
    assert closed.value.reply_text == "COMMAND_INVALID - unknown exchange type 'no-such-type'"
    assert connection.is_closed


def test_unknown_vhost_is_refused_with_530(wiregate_server) -> None:
    params = pika.ConnectionParameters(host=wiregate_server.host, port=wiregate_server.amqp_port, virtual_host="no-such-vhost")
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        pika.BlockingConnection(params)
    assert "(530) 'NOT_ALLOWED - vhost no-such-vhost not found'" in str(refused.value)


def test_wrong_password_is_refused_with_403(wiregate_server) -> None:
    params = pika.ConnectionParameters(
        host=wiregate_server.host,
        port=wiregate_server.amqp_port,
        credentials=pika.PlainCredentials("guest", "wrong"),
        connection_attempts=1,
    )
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        pika.BlockingConnection(params)
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(refused.value)


# --- queue features ----------------------------------------------------------------------


def test_purge_and_delete_report_message_counts(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for _ in range(3):
        channel.basic_publish("", queue, b"x")
    assert channel.queue_purge(queue).method.message_count == 3
    channel.basic_publish("", queue, b"y")
    channel.basic_publish("", queue, b"z")
    assert channel.queue_delete(queue).method.message_count == 2
    assert channel.queue_delete(queue).method.message_count == 0


def test_delete_if_empty_and_if_unused_refuse_with_406(
    connection: pika.BlockingConnection, cleanup: Cleanup, unique: str
) -> None:
    channel = connection.channel()
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_delete(queue, if_empty=True)
    assert (closed.value.reply_code, closed.value.reply_text) == (406, f"PRECONDITION_FAILED - queue '{queue}' in vhost '/' not empty")

    channel = connection.channel()
    channel.basic_consume(queue, lambda *args: None)
    other = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        other.queue_delete(queue, if_unused=True)
    assert (closed.value.reply_code, closed.value.reply_text) == (406, f"PRECONDITION_FAILED - queue '{queue}' in vhost '/' in use")


def test_exchange_delete_if_unused_refuses_with_406(connection: pika.BlockingConnection, cleanup: Cleanup, unique: str) -> None:
    channel = connection.channel()
    exchange = cleanup.exchange(f"{unique}.x")
    channel.exchange_declare(exchange, "fanout")
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.queue_bind(queue, exchange)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.exchange_delete(exchange, if_unused=True)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        406,
        f"PRECONDITION_FAILED - exchange '{exchange}' in vhost '/' in use",
    )


def test_exclusive_consumer_refuses_a_second_consumer_with_403(
    connection: pika.BlockingConnection, cleanup: Cleanup, unique: str
) -> None:
    channel = connection.channel()
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_consume(queue, lambda *args: None, exclusive=True)
    other = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        other.basic_consume(queue, lambda *args: None)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        403,
        f"ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use",
    )


def test_exclusive_consume_on_a_queue_with_consumers_is_403(
    connection: pika.BlockingConnection, cleanup: Cleanup, unique: str
) -> None:
    channel = connection.channel()
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_consume(queue, lambda *args: None)
    other = connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        other.basic_consume(queue, lambda *args: None, exclusive=True)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        403,
        f"ACCESS_REFUSED - queue '{queue}' in vhost '/' in exclusive use",
    )


def test_cancel_keeps_unacked_deliveries_with_the_channel(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"held")
    [(method, _properties, _body)] = consume(connection, channel, queue, 1)
    # consume() cancelled the consumer; the delivery is still unacked and ackable.
    assert channel.queue_declare(queue, passive=True).method.message_count == 0
    channel.basic_ack(method.delivery_tag)
    assert channel.basic_get(queue) == (None, None, None)
    assert channel.is_open


def test_basic_recover_requeues_unacked_as_redelivered(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"again")
    method, _properties, _body = channel.basic_get(queue)
    assert method.redelivered is False
    channel.basic_recover(requeue=True)
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert (body, method.redelivered) == (b"again", True)


def test_auto_delete_queue_goes_with_its_last_consumer(
    connection: pika.BlockingConnection, channel: BlockingChannel, unique: str
) -> None:
    queue = f"{unique}.auto"
    channel.queue_declare(queue, auto_delete=True)
    first = channel.basic_consume(queue, lambda *args: None)
    second = channel.basic_consume(queue, lambda *args: None)
    channel.basic_cancel(first)
    assert channel.queue_declare(queue, passive=True).method.consumer_count == 1
    channel.basic_cancel(second)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(queue, passive=True)
    assert closed.value.reply_code == 404


def test_message_ttl_expires_ready_messages(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-message-ttl": 100})
    channel.basic_publish("", queue, b"queue ttl")
    per_message = declare_queue(channel, cleanup, f"{unique}.pm")
    channel.basic_publish("", per_message, b"message ttl", BasicProperties(expiration="100"))
    channel.basic_publish("", per_message, b"kept")
    time.sleep(0.3)
    assert channel.basic_get(queue) == (None, None, None)
    assert drain(channel, per_message) == [b"kept"]


def test_max_length_drops_head_by_default(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-max-length": 2})
    for i in range(5):
        channel.basic_publish("", queue, f"m{i}".encode())
    assert drain(channel, queue) == [b"m3", b"m4"]


def test_max_length_reject_publish_nacks_confirms(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    channel.confirm_delivery()
    channel.basic_publish("", queue, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        channel.basic_publish("", queue, b"overflows")
    assert drain(channel, queue) == [b"fits"]


def test_dead_lettering_on_reject_adds_x_death(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    dlx = cleanup.exchange(f"{unique}.dlx")
    channel.exchange_declare(dlx, "fanout")
    dead = declare_queue(channel, cleanup, f"{unique}.dead")
    channel.queue_bind(dead, dlx)
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-dead-letter-exchange": dlx})
    channel.basic_publish("", queue, b"doomed", BasicProperties(headers={"kept": 1}))
    method, _properties, _body = channel.basic_get(queue)
    channel.basic_reject(method.delivery_tag, requeue=False)

    method, properties, body = get_eventually(channel, dead)
    assert body == b"doomed"
    assert (method.exchange, method.routing_key) == (dlx, queue)
    assert properties.headers["kept"] == 1
    [death] = properties.headers["x-death"]
    assert {key: death[key] for key in ("count", "reason", "queue", "exchange", "routing-keys")} == {
        "count": 1,
        "reason": "rejected",
        "queue": queue,
        "exchange": "",
        "routing-keys": [queue],
    }
    assert properties.headers["x-first-death-reason"] == "rejected"
    assert properties.headers["x-first-death-queue"] == queue


def test_priority_queue_delivers_highest_priority_first(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-max-priority": 10})
    for priority in (1, 5, 0, 9, 5):
        channel.basic_publish("", queue, f"p{priority}".encode(), BasicProperties(priority=priority))
    assert drain(channel, queue) == [b"p9", b"p5", b"p5", b"p1", b"p0"]


def test_mandatory_return_in_tx_arrives_on_commit(
    connection: pika.BlockingConnection, channel: BlockingChannel, unique: str
) -> None:
    returned = []
    channel.add_on_return_callback(lambda _ch, method, _properties, body: returned.append(body))
    channel.tx_select()
    channel.basic_publish("", f"{unique}.nowhere", b"bounced on commit", mandatory=True)
    pump(connection, 0.1)
    assert returned == []
    channel.tx_commit()
    wait_until(connection, lambda: returned)
    assert returned == [b"bounced on commit"]


def test_round_robin_between_two_consumers(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    received: dict[str, list[bytes]] = {"a": [], "b": []}
    channel.basic_consume(queue, lambda _ch, _m, _p, body: received["a"].append(body), auto_ack=True, consumer_tag="a")
    channel.basic_consume(queue, lambda _ch, _m, _p, body: received["b"].append(body), auto_ack=True, consumer_tag="b")
    for i in range(6):
        channel.basic_publish("", queue, str(i).encode())
    wait_until(connection, lambda: len(received["a"]) + len(received["b"]) >= 6)
    assert received == {"a": [b"0", b"2", b"4"], "b": [b"1", b"3", b"5"]}


# --- more channel semantics --------------------------------------------------------------


def test_global_qos_is_shared_by_the_channels_consumers(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    first = declare_queue(channel, cleanup, f"{unique}.a")
    second = declare_queue(channel, cleanup, f"{unique}.b")
    for queue in (first, second):
        for i in range(5):
            channel.basic_publish("", queue, f"{queue}-{i}".encode())
    channel.basic_qos(prefetch_count=3, global_qos=True)
    received: list[bytes] = []
    channel.basic_consume(first, lambda _ch, _m, _p, body: received.append(body))
    channel.basic_consume(second, lambda _ch, _m, _p, body: received.append(body))
    wait_until(connection, lambda: len(received) >= 3)
    pump(connection, 0.2)
    assert len(received) == 3


@pytest.mark.parametrize(
    ("order", "expected"),
    [(("consumer", "global"), 5), (("global", "consumer"), 6)],
    ids=["consumer-then-global", "global-then-consumer"],
)
def test_per_consumer_and_global_qos_interplay(
    connection: pika.BlockingConnection,
    channel: BlockingChannel,
    cleanup: Cleanup,
    unique: str,
    order: tuple[str, str],
    expected: int,
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(10):
        channel.basic_publish("", queue, str(i).encode())
    for kind in order:
        if kind == "global":
            channel.basic_qos(prefetch_count=5, global_qos=True)
        else:
            channel.basic_qos(prefetch_count=2)
    received: list[bytes] = []
    for _ in range(3):
        channel.basic_consume(queue, lambda _ch, _m, _p, body: received.append(body))
    wait_until(connection, lambda: len(received) >= expected)
    pump(connection, 0.2)
    # Three consumers with 2 each would take 6.  Set after the per-consumer limit, the channel-wide
    # limit of 5 also applies; RabbitMQ 3.10 drops the channel-wide limit when a per-consumer
    # basic.qos follows it, so then only the per-consumer limit counts.
    assert len(received) == expected


def test_consumer_priority_gets_messages_first(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    received: dict[str, list[bytes]] = {"low": [], "high": []}
    channel.basic_consume(queue, lambda _ch, _m, _p, body: received["low"].append(body), auto_ack=True)
    channel.basic_consume(
        queue, lambda _ch, _m, _p, body: received["high"].append(body), auto_ack=True, arguments={"x-priority": 10}
    )
    for i in range(4):
        channel.basic_publish("", queue, str(i).encode())
    wait_until(connection, lambda: len(received["low"]) + len(received["high"]) >= 4)
    assert received == {"low": [], "high": [b"0", b"1", b"2", b"3"]}


def test_single_active_consumer_hands_over_on_cancel(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-single-active-consumer": True})
    received: dict[str, list[bytes]] = {"first": [], "second": []}
    first = channel.basic_consume(queue, lambda _ch, _m, _p, body: received["first"].append(body), auto_ack=True)
    channel.basic_consume(queue, lambda _ch, _m, _p, body: received["second"].append(body), auto_ack=True)
    for i in range(3):
        channel.basic_publish("", queue, str(i).encode())
    wait_until(connection, lambda: len(received["first"]) + len(received["second"]) >= 3)
    channel.basic_cancel(first)
    channel.basic_publish("", queue, b"after")
    wait_until(connection, lambda: received["second"])
    assert received == {"first": [b"0", b"1", b"2"], "second": [b"after"]}


def test_nack_all_with_tag_zero_requeues_everything(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(3):
        channel.basic_publish("", queue, str(i).encode())
    for _ in range(3):
        channel.basic_get(queue)
    channel.basic_nack(0, multiple=True, requeue=True)
    assert drain(channel, queue) == [b"0", b"1", b"2"]


def test_get_ok_message_count_excludes_unacked(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(3):
        channel.basic_publish("", queue, str(i).encode())
    channel.basic_get(queue)
    method, _properties, _body = channel.basic_get(queue)
    assert method.message_count == 1
    declared = channel.queue_declare(queue, passive=True).method
    assert declared.message_count == 1


def test_confirm_then_tx_select_is_406(channel: BlockingChannel) -> None:
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.tx_select()
    assert (closed.value.reply_code, closed.value.reply_text) == (406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")


def test_tx_then_confirm_select_is_406(channel: BlockingChannel) -> None:
    channel.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.confirm_delivery()
    assert (closed.value.reply_code, closed.value.reply_text) == (406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")


def test_publish_to_internal_exchange_is_403(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    exchange = cleanup.exchange(f"{unique}.internal")
    channel.exchange_declare(exchange, "fanout", internal=True)
    channel.basic_publish(exchange, "", b"refused")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_qos(prefetch_count=1)
    assert (closed.value.reply_code, closed.value.reply_text) == (
        403,
        f"ACCESS_REFUSED - cannot publish to internal exchange '{exchange}' in vhost '/'",
    )


@pytest.mark.parametrize(
    ("operation", "text"),
    [
        (lambda ch, q: ch.queue_bind(q, ""), "ACCESS_REFUSED - operation not permitted on the default exchange"),
        (lambda ch, q: ch.exchange_delete(""), "ACCESS_REFUSED - operation not permitted on the default exchange"),
        (lambda ch, q: ch.exchange_delete("amq.direct"), "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"),
        (lambda ch, q: ch.exchange_declare("amq.custom", "direct"), "ACCESS_REFUSED - exchange name 'amq.custom' contains reserved prefix 'amq.*'"),
    ],
    ids=["bind-default", "delete-default", "delete-amq-direct", "declare-amq-prefix"],
)
def test_reserved_exchanges_are_protected_with_403(
    channel: BlockingChannel, cleanup: Cleanup, unique: str, operation: Callable, text: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        operation(channel, queue)
    assert (closed.value.reply_code, closed.value.reply_text) == (403, text)


def test_bind_of_missing_queue_is_404(channel: BlockingChannel, unique: str) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_bind(f"{unique}.missing", "amq.direct", "key")
    assert (closed.value.reply_code, closed.value.reply_text) == (404, f"NOT_FOUND - no queue '{unique}.missing' in vhost '/'")


def test_unbind_of_missing_binding_succeeds(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.queue_unbind(queue, "amq.direct", "never-bound")
    assert channel.is_open


def test_auto_delete_exchange_goes_with_its_last_binding(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    exchange = f"{unique}.auto"
    channel.exchange_declare(exchange, "fanout", auto_delete=True)
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.queue_bind(queue, exchange)
    channel.queue_unbind(queue, exchange)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.exchange_declare(exchange, passive=True)
    assert closed.value.reply_code == 404


def test_alternate_exchange_takes_unroutable_messages(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    alternate = cleanup.exchange(f"{unique}.ae")
    channel.exchange_declare(alternate, "fanout")
    unrouted = declare_queue(channel, cleanup, f"{unique}.unrouted")
    channel.queue_bind(unrouted, alternate)
    main = cleanup.exchange(f"{unique}.main")
    channel.exchange_declare(main, "direct", arguments={"alternate-exchange": alternate})
    channel.confirm_delivery()
    channel.basic_publish(main, "no-binding", b"to the alternate", mandatory=True)
    assert drain(channel, unrouted) == [b"to the alternate"]


def test_queue_expires_when_unused(channel: BlockingChannel, unique: str) -> None:
    queue = f"{unique}.expiring"
    channel.queue_declare(queue, arguments={"x-expires": 100})
    time.sleep(0.4)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(queue, passive=True)
    assert closed.value.reply_code == 404


def test_basic_recover_without_requeue_is_not_implemented(channel: BlockingChannel) -> None:
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        channel.basic_recover(requeue=False)
    assert (closed.value.reply_code, closed.value.reply_text) == (540, "NOT_IMPLEMENTED - requeue=false")


def test_small_negotiated_frame_max_splits_bodies(wiregate_server, cleanup: Cleanup, unique: str) -> None:
    params = pika.ConnectionParameters(host=wiregate_server.host, port=wiregate_server.amqp_port, frame_max=4096)
    small = pika.BlockingConnection(params)
    try:
        channel = small.channel()
        queue = declare_queue(channel, cleanup, f"{unique}.q")
        body = bytes(i % 253 for i in range(100_000))
        channel.basic_publish("", queue, body, BasicProperties(headers={"padding": "x" * 1000}))
        [(_method, properties, consumed)] = consume(small, channel, queue, 1, auto_ack=True)
        assert consumed == body
        assert properties.headers == {"padding": "x" * 1000}
    finally:
        small.close()


# --- dead-lettering, TTL and queue argument validation ---------------------------------------------


def dead_letter_pair(channel: BlockingChannel, cleanup: Cleanup, unique: str, **arguments: object) -> tuple[str, str]:
    """A queue dead-lettering through the default exchange into a second queue: (source, dead)."""
    dead = declare_queue(channel, cleanup, f"{unique}.dead")
    source = declare_queue(
        channel,
        cleanup,
        f"{unique}.source",
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead, **arguments},
    )
    return source, dead


def death_summary(properties: BasicProperties) -> list[tuple]:
    return [(death["reason"], death["queue"], death["count"], death["routing-keys"]) for death in properties.headers["x-death"]]


def test_expired_message_is_dead_lettered_with_its_original_expiration(
    channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    source, dead = dead_letter_pair(channel, cleanup, unique, **{"x-message-ttl": 50})
    channel.basic_publish("", source, b"late", BasicProperties(expiration="10000", headers={"kept": "yes"}))
    method, properties, body = get_eventually(channel, dead)
    assert body == b"late"
    assert death_summary(properties) == [("expired", source, 1, [source])]
    # The per-message TTL moves into x-death so the dead letter does not expire again.
    assert properties.expiration is None
    assert properties.headers["x-death"][0]["original-expiration"] == "10000"
    assert properties.headers["kept"] == "yes"
    assert channel.basic_get(source) == (None, None, None)


def test_max_length_dead_letters_the_dropped_head(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    source, dead = dead_letter_pair(channel, cleanup, unique, **{"x-max-length": 1})
    channel.basic_publish("", source, b"first")
    channel.basic_publish("", source, b"second")
    method, properties, body = get_eventually(channel, dead)
    assert body == b"first"
    assert death_summary(properties) == [("maxlen", source, 1, [source])]
    assert drain(channel, source) == [b"second"]


def test_reject_publish_dlx_dead_letters_the_refused_message(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    source, dead = dead_letter_pair(channel, cleanup, unique, **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    channel.basic_publish("", source, b"kept")
    channel.basic_publish("", source, b"refused")
    method, properties, body = get_eventually(channel, dead)
    assert body == b"refused"
    assert death_summary(properties) == [("maxlen", source, 1, [source])]
    assert drain(channel, source) == [b"kept"]


def test_x_death_counts_each_queue_in_a_dead_letter_cycle(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    ping, pong = f"{unique}.ping", f"{unique}.pong"
    declare_queue(channel, cleanup, ping, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": pong})
    declare_queue(channel, cleanup, pong, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": ping})
    channel.basic_publish("", ping, b"bouncing")
    for _ in range(2):
        for queue in (ping, pong):
            deadline = time.monotonic() + 2
            while (method := channel.basic_get(queue)[0]) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            channel.basic_reject(method.delivery_tag, requeue=False)
    method, properties, _body = get_eventually(channel, ping)
    # Most recent death first; each queue's entry counts its deaths.
    assert death_summary(properties) == [("rejected", pong, 2, [pong]), ("rejected", ping, 2, [ping])]
    assert properties.headers["x-first-death-queue"] == ping
    assert properties.headers["x-first-death-reason"] == "rejected"


def test_requeued_message_past_its_ttl_is_dropped(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-message-ttl": 100})
    channel.basic_publish("", queue, b"held too long")
    method, _properties, _body = channel.basic_get(queue)
    time.sleep(0.2)
    # Unacked messages do not expire, but once requeued the TTL applies again.
    channel.basic_reject(method.delivery_tag, requeue=True)
    time.sleep(0.05)
    assert channel.basic_get(queue) == (None, None, None)


def test_ttl_expires_messages_waiting_behind_a_slow_consumer(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-message-ttl": 100})
    channel.basic_qos(prefetch_count=1)
    received: list[Delivery] = []
    channel.basic_consume(queue, lambda _ch, method, properties, body: received.append((method, properties, body)))
    for i in range(3):
        channel.basic_publish("", queue, str(i).encode())
    wait_until(connection, lambda: received)
    time.sleep(0.25)
    channel.basic_ack(received[0][0].delivery_tag)
    pump(connection, 0.2)
    assert bodies(received) == [b"0"]


def test_expiration_zero_reaches_only_a_ready_consumer(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    consumed = declare_queue(channel, cleanup, f"{unique}.consumed")
    idle = declare_queue(channel, cleanup, f"{unique}.idle")
    received: list[bytes] = []
    channel.basic_consume(consumed, lambda _ch, _m, _p, body: received.append(body), auto_ack=True)
    channel.basic_publish("", consumed, b"now or never", BasicProperties(expiration="0"))
    channel.basic_publish("", idle, b"nobody waiting", BasicProperties(expiration="0"))
    wait_until(connection, lambda: received, timeout=1)
    assert received == [b"now or never"]
    assert channel.basic_get(idle) == (None, None, None)


def test_max_length_bytes_drops_head_by_body_size(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-max-length-bytes": 10})
    for body in (b"12345", b"67890", b"abc"):
        channel.basic_publish("", queue, body)
    assert drain(channel, queue) == [b"67890", b"abc"]


def test_priority_is_capped_at_max_priority_and_requeue_keeps_the_head(
    channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-max-priority": 5})
    for priority in (1, 5, 3):
        channel.basic_publish("", queue, f"p{priority}".encode(), BasicProperties(priority=priority))
    method, _properties, _body = channel.basic_get(queue)
    channel.basic_reject(method.delivery_tag, requeue=True)
    channel.basic_publish("", queue, b"p5-later", BasicProperties(priority=5))
    channel.basic_publish("", queue, b"p9-capped", BasicProperties(priority=9))
    assert drain(channel, queue) == [b"p5", b"p5-later", b"p9-capped", b"p3", b"p1"]


@pytest.mark.parametrize(
    ("arguments", "detail"),
    [
        ({"x-message-ttl": -1}, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': {{value_negative,-1}}"),
        ({"x-message-ttl": "10"}, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '/': \"expected integer, got longstr\""),
        ({"x-max-length": -1}, "invalid arg 'x-max-length' for queue '{q}' in vhost '/': {{value_negative,-1}}"),
        ({"x-max-priority": 300}, "invalid arg 'x-max-priority' for queue '{q}' in vhost '/': {{max_value_exceeded,300}}"),
        ({"x-overflow": "nope"}, "invalid arg 'x-overflow' for queue '{q}' in vhost '/': invalid_overflow"),
        ({"x-expires": 0}, "invalid arg 'x-expires' for queue '{q}' in vhost '/': {{value_zero,0}}"),
        ({"x-dead-letter-routing-key": "k"}, "invalid arg 'x-dead-letter-routing-key' for queue '{q}' in vhost '/': routing_key_but_no_dlx_defined"),
        ({"x-queue-type": "nope"}, "invalid arg 'x-queue-type' for queue '{q}' in vhost '/': \"unsupported queue type 'nope'\""),
    ],
    ids=["ttl-negative", "ttl-string", "max-length-negative", "max-priority-300", "overflow", "expires-zero", "dlrk-without-dlx", "queue-type"],
)
def test_invalid_queue_arguments_are_406(channel: BlockingChannel, unique: str, arguments: dict, detail: str) -> None:
    queue = f"{unique}.q"
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.queue_declare(queue, arguments=arguments)
    assert (closed.value.reply_code, closed.value.reply_text) == (406, "PRECONDITION_FAILED - " + detail.format(q=queue))


def test_unknown_queue_arguments_are_accepted(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    declare_queue(channel, cleanup, f"{unique}.q", arguments={"x-whatever": "ignored"})
    assert channel.is_open


@pytest.mark.parametrize(
    ("expiration", "detail"),
    [("abc", "invalid expiration 'abc': no_integer"), ("-1", "invalid expiration '-1': {value_negative,-1}")],
    ids=["not-a-number", "negative"],
)
def test_invalid_expiration_closes_the_channel_406(
    channel: BlockingChannel, cleanup: Cleanup, unique: str, expiration: str, detail: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    channel.basic_publish("", queue, b"x", BasicProperties(expiration=expiration))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        channel.basic_get(queue)
    assert (closed.value.reply_code, closed.value.reply_text) == (406, "PRECONDITION_FAILED - " + detail)


# --- routing and acknowledgement edge cases (matrices recorded from RabbitMQ 3.10.8) ---------------

TOPIC_EDGE_PATTERNS = {
    "#.#": ["a.b", "a..b", "a.x.b", "a", "", "b.a", ".a", "a.", "x.y.z", "a.x.y.b"],
    "a.#.#.b": ["a.b", "a..b", "a.x.b", "a.x.y.b"],
    "a.*.b": ["a..b", "a.x.b"],
    "a..b": ["a..b"],
    "*": ["a"],
    "#.a": ["a", "b.a", ".a"],
    "a.#": ["a.b", "a..b", "a.x.b", "a", "a.", "a.x.y.b"],
    "": [""],
    "*.*": ["a.b", "b.a", ".a", "a."],
    "#.*.#": ["a.b", "a..b", "a.x.b", "a", "b.a", ".a", "a.", "x.y.z", "a.x.y.b"],
}
TOPIC_EDGE_KEYS = ["a.b", "a..b", "a.x.b", "a", "", "b.a", ".a", "a.", "x.y.z", "a.x.y.b"]


def test_topic_edge_cases_empty_words_and_repeated_hashes(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    exchange = cleanup.exchange(f"{unique}.topic")
    channel.exchange_declare(exchange, "topic")
    queues = {}
    for number, pattern in enumerate(TOPIC_EDGE_PATTERNS):
        queues[pattern] = declare_queue(channel, cleanup, f"{unique}.{number}")
        channel.queue_bind(queues[pattern], exchange, pattern)
    channel.confirm_delivery()
    for key in TOPIC_EDGE_KEYS:
        channel.basic_publish(exchange, key, key.encode())
    assert {pattern: [body.decode() for body in drain(channel, queue)] for pattern, queue in queues.items()} == TOPIC_EDGE_PATTERNS


HEADERS_EDGE_BINDINGS = {
    "any-ignores-x": ({"x-match": "any", "x-foo": "1", "a": "1"}, ["a1", "a1-xfoo"]),
    "all-ignores-x": ({"x-match": "all", "x-foo": "1", "a": "1"}, ["a1", "a1-xfoo"]),
    "all-with-x": ({"x-match": "all-with-x", "x-foo": "1", "a": "1"}, ["a1-xfoo"]),
    "any-with-x": ({"x-match": "any-with-x", "x-foo": "1"}, ["a1-xfoo", "xfoo"]),
    "int-is-not-str": ({"x-match": "all", "n": 1}, ["n1"]),
    "empty-all": ({"x-match": "all"}, ["a1", "a1-xfoo", "xfoo", "n1", "n1-str", "none", "void", "bool", "bool-as-int"]),
    "empty-any": ({"x-match": "any"}, []),
    "void": ({"x-match": "all", "v": None}, ["void"]),
    "bool-is-not-int": ({"x-match": "all", "b": True}, ["bool"]),
}
HEADERS_EDGE_MESSAGES = {
    "a1": {"a": "1"},
    "a1-xfoo": {"a": "1", "x-foo": "1"},
    "xfoo": {"x-foo": "1"},
    "n1": {"n": 1},
    "n1-str": {"n": "1"},
    "none": None,
    "void": {"v": None},
    "bool": {"b": True},
    "bool-as-int": {"b": 1},
}


def test_headers_edge_cases_x_keys_types_and_empty_bindings(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    exchange = cleanup.exchange(f"{unique}.headers")
    channel.exchange_declare(exchange, "headers")
    queues = {}
    for name, (arguments, _expected) in HEADERS_EDGE_BINDINGS.items():
        queues[name] = declare_queue(channel, cleanup, f"{unique}.{name}")
        channel.queue_bind(queues[name], exchange, arguments=arguments)
    channel.confirm_delivery()
    for body, headers in HEADERS_EDGE_MESSAGES.items():
        channel.basic_publish(exchange, "", body.encode(), BasicProperties(headers=headers))
    actual = {name: [body.decode() for body in drain(channel, queue)] for name, queue in queues.items()}
    assert actual == {name: expected for name, (_arguments, expected) in HEADERS_EDGE_BINDINGS.items()}


def test_cc_and_bcc_headers_add_routes_and_bcc_is_stripped(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    main = declare_queue(channel, cleanup, f"{unique}.main")
    copied = declare_queue(channel, cleanup, f"{unique}.cc")
    blind = declare_queue(channel, cleanup, f"{unique}.bcc")
    channel.confirm_delivery()
    channel.basic_publish("", main, b"copies", BasicProperties(headers={"CC": [copied], "BCC": [blind], "kept": 1}))
    for queue in (main, copied, blind):
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        assert (body, method.routing_key) == (b"copies", main)
        assert properties.headers == {"CC": [copied], "kept": 1}


@pytest.mark.parametrize(
    ("misuse", "tag"),
    [
        (lambda ch, q: (lambda tag: (ch.basic_ack(tag), ch.basic_ack(tag)))(ch.basic_get(q)[0].delivery_tag), 1),
        (lambda ch, q: (ch.basic_get(q), ch.basic_ack(5, multiple=True)), 5),
        (lambda ch, q: (ch.basic_get(q), ch.basic_get(q), ch.basic_ack(1), ch.basic_ack(1, multiple=True)), 1),
        (lambda ch, q: (ch.basic_get(q, auto_ack=True), ch.basic_ack(1)), 1),
        (lambda ch, q: ch.basic_ack(0), 0),
        (lambda ch, q: ch.basic_reject(9), 9),
        (lambda ch, q: ch.basic_nack(3, requeue=True), 3),
    ],
    ids=["double-ack", "multiple-beyond-last", "multiple-of-acked", "ack-of-auto-acked", "single-tag-zero", "reject-unknown", "nack-unknown"],
)
def test_acknowledgement_misuse_is_406_unknown_delivery_tag(
    channel: BlockingChannel, cleanup: Cleanup, unique: str, misuse: Callable, tag: int
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(3):
        channel.basic_publish("", queue, str(i).encode())
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        misuse(channel, queue)
        channel.basic_qos(prefetch_count=0)  # a round trip, so an asynchronous close arrives
    assert (closed.value.reply_code, closed.value.reply_text) == (406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")


def test_nack_all_on_an_empty_channel_is_fine(channel: BlockingChannel) -> None:
    channel.basic_nack(0, multiple=True)
    channel.basic_qos(prefetch_count=0)
    assert channel.is_open


def test_channel_flow_off_is_not_implemented(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    assert channel.flow(True) is True
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        channel.flow(False)
    assert (closed.value.reply_code, closed.value.reply_text) == (540, "NOT_IMPLEMENTED - active=false")


def test_purge_leaves_unacked_messages(channel: BlockingChannel, cleanup: Cleanup, unique: str) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(3):
        channel.basic_publish("", queue, str(i).encode())
    method, _properties, _body = channel.basic_get(queue)
    assert channel.queue_purge(queue).method.message_count == 2
    channel.basic_reject(method.delivery_tag, requeue=True)
    assert drain(channel, queue) == [b"0"]


# --- resource alarm (RabbitMQ: rabbitmqctl set_vm_memory_high_watermark 0) ---------------------------


@pytest.fixture
def memory_alarm(wiregate_server) -> Iterator[Callable[[bool], None]]:
    """Raise (True) or clear (False) the broker's memory alarm; always cleared afterwards."""

    def set_alarm(on: bool) -> None:
        if on:
            wiregate_server.call(wiregate_server.broker.block, "low on memory")
        else:
            wiregate_server.call(wiregate_server.broker.unblock)

    yield set_alarm
    set_alarm(False)


def alarm_watcher(amqp_url: str, events: list[tuple[str, str]], name: str) -> pika.BlockingConnection:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.add_on_connection_blocked_callback(lambda _conn, frame: events.append((name, frame.method.reason)))
    connection.add_on_connection_unblocked_callback(lambda _conn, _frame: events.append((name, "unblocked")))
    return connection


def test_alarm_blocks_a_connection_when_it_publishes(
    amqp_url: str, memory_alarm: Callable[[bool], None], cleanup: Cleanup, unique: str
) -> None:
    events: list[tuple[str, str]] = []
    consumer = alarm_watcher(amqp_url, events, "consumer")
    publisher = alarm_watcher(amqp_url, events, "publisher")
    try:
        consumer_channel = consumer.channel()
        queue = declare_queue(consumer_channel, cleanup, f"{unique}.q")
        consumer_channel.basic_consume(queue, lambda *args: None, auto_ack=True)
        publisher_channel = publisher.channel()
        memory_alarm(True)
        pump(consumer, 0.1)
        pump(publisher, 0.1)
        assert events == []
        publisher_channel.basic_publish("", queue, b"during the alarm")
        wait_until(publisher, lambda: events)
        pump(consumer, 0.1)
        assert events == [("publisher", "low on memory")]
        memory_alarm(False)
        wait_until(publisher, lambda: len(events) > 1)
        pump(consumer, 0.1)
        assert events == [("publisher", "low on memory"), ("publisher", "unblocked")]
    finally:
        consumer.close()
        publisher.close()


def test_alarm_holds_publishes_until_it_clears(
    amqp_url: str, memory_alarm: Callable[[bool], None], channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    events: list[tuple[str, str]] = []
    publisher = alarm_watcher(amqp_url, events, "publisher")
    try:
        publisher_channel = publisher.channel()
        memory_alarm(True)
        publisher_channel.basic_publish("", queue, b"held 1")
        publisher_channel.basic_publish("", queue, b"held 2")
        wait_until(publisher, lambda: events)
        pump(publisher, 0.2)
        assert channel.queue_declare(queue, passive=True).method.message_count == 0
        memory_alarm(False)
        wait_until(publisher, lambda: len(events) > 1)
        pump(publisher, 0.2)
        assert drain(channel, queue) == [b"held 1", b"held 2"]
    finally:
        publisher.close()


def test_requeue_from_several_channels_restores_publish_order(
    connection: pika.BlockingConnection, channel: BlockingChannel, cleanup: Cleanup, unique: str
) -> None:
    queue = declare_queue(channel, cleanup, f"{unique}.q")
    for i in range(6):
        channel.basic_publish("", queue, f"m{i}".encode())
    first, second = connection.channel(), connection.channel()
    first.basic_get(queue)  # m0
    second.basic_get(queue)  # m1
    first.basic_get(queue)  # m2
    first.close()
    second.close()
    taken = []
    while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
        taken.append((got[2], got[0].redelivered))
    assert taken == [(b"m0", True), (b"m1", True), (b"m2", True), (b"m3", False), (b"m4", False), (b"m5", False)]
