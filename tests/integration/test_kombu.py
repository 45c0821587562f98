"""kombu with its ``amqp://`` transport (py-amqp) against wiregate."""

from __future__ import annotations

import datetime
import decimal
import socket
import time
from collections.abc import Iterator

import amqp.exceptions
import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.message import Message
from kombu.simple import SimpleQueue


@pytest.fixture
def connection(amqp_url: str) -> Iterator[Connection]:
    with Connection(amqp_url, transport="amqp", connect_timeout=5) as conn:
        conn.connect()
        yield conn


@pytest.fixture
def simple(connection: Connection, unique: str) -> Iterator[SimpleQueue]:
    """A SimpleQueue; its queue and its durable direct exchange are deleted afterwards."""
    queue = connection.SimpleQueue(f"{unique}.simple")
    yield queue
    queue.close()
    channel = connection.channel()
    channel.queue_delete(f"{unique}.simple")
    channel.exchange_delete(f"{unique}.simple")
    channel.close()


def drain(connection: Connection, received: list, count: int, timeout: float = 5.0) -> None:
    """Call drain_events until ``count`` messages arrived; fail on a timeout."""
    while len(received) < count:
        connection.drain_events(timeout=timeout)


def test_transport_is_py_amqp_and_server_claims_rabbitmq(connection: Connection) -> None:
    assert connection.transport_cls == "amqp"
    assert connection.transport.driver_name == "py-amqp"
    properties = connection.connection.server_properties
    assert properties["product"] == "RabbitMQ"
    assert properties["capabilities"]["publisher_confirms"] is True


def test_producer_and_consumer_through_a_direct_exchange(connection: Connection, unique: str) -> None:
    exchange = Exchange(f"{unique}.x", type="direct", auto_delete=True)
    queue = Queue(f"{unique}.q", exchange, routing_key="jobs", auto_delete=True)
    received: list[tuple[object, Message]] = []

    with Consumer(connection, [queue], callbacks=[lambda body, message: received.append((body, message))], accept=["json"]):
        producer = Producer(connection, exchange=exchange, serializer="json")
        for number in range(3):
            producer.publish({"job": number, "tags": ["a", "b"]}, routing_key="jobs", headers={"attempt": number})
        producer.publish({"job": "lost"}, routing_key="elsewhere")
        drain(connection, received, 3)
        for _body, message in received:
            message.ack()

    assert [body for body, _message in received] == [{"job": n, "tags": ["a", "b"]} for n in range(3)]
    message = received[0][1]
    assert message.content_type == "application/json"
    assert message.headers == {"attempt": 0}
    assert message.delivery_info["exchange"] == f"{unique}.x"
    assert message.delivery_info["routing_key"] == "jobs"
    assert message.delivery_info["redelivered"] is False


def test_topic_and_fanout_exchanges(connection: Connection, unique: str) -> None:
    topic = Exchange(f"{unique}.topic", type="topic", auto_delete=True)
    fanout = Exchange(f"{unique}.fanout", type="fanout", auto_delete=True)
    queues = [
        Queue(f"{unique}.errors", topic, routing_key="*.error", auto_delete=True),
        Queue(f"{unique}.all", topic, routing_key="#", auto_delete=True),
        Queue(f"{unique}.f1", fanout, auto_delete=True),
        Queue(f"{unique}.f2", fanout, auto_delete=True),
    ]
    bound = [queue(connection.default_channel) for queue in queues]
    for queue in bound:
        queue.declare()
    producer = Producer(connection)
    producer.publish(b"disk", exchange=topic, routing_key="disk.error", content_type="application/data", content_encoding="binary")
    producer.publish(b"boot", exchange=topic, routing_key="boot.info", content_type="application/data", content_encoding="binary")
    producer.publish(b"all", exchange=fanout, routing_key="", content_type="application/data", content_encoding="binary")

    def bodies(queue: Queue) -> list[bytes]:
        taken = []
        while (message := queue.get(no_ack=True)) is not None:
            taken.append(message.body)
        return taken

    assert [bodies(queue) for queue in bound] == [[b"disk"], [b"disk", b"boot"], [b"all"], [b"all"]]
    for queue in bound:
        queue.delete()


def test_simple_queue_get_nowait_uses_basic_get(simple: SimpleQueue) -> None:
    with pytest.raises(simple.Empty):
        simple.get_nowait()
    simple.put({"hello": "world"})
    simple.put("second")
    # Publishing and basic.get use different channels: RabbitMQ may take a moment to enqueue.
    deadline = time.monotonic() + 5
    while simple.qsize() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    first = simple.get_nowait()
    assert first.payload == {"hello": "world"}
    assert first.delivery_info["message_count"] == 1
    first.ack()
    assert simple.qsize() == 1
    second = simple.get_nowait()
    assert second.payload == "second"
    second.ack()
    with pytest.raises(simple.Empty):
        simple.get_nowait()


def test_simple_queue_blocking_get_consumes(simple: SimpleQueue) -> None:
    simple.put({"hello": "world"})
    simple.put("second")
    first = simple.get(block=True, timeout=5)
    second = simple.get(block=True, timeout=5)
    assert (first.payload, second.payload) == ({"hello": "world"}, "second")
    with pytest.raises(simple.Empty):
        simple.get(block=True, timeout=0.2)
    first.ack()
    second.ack()
    assert simple.qsize() == 0


def test_simple_queue_requeue_redelivers(simple: SimpleQueue) -> None:
    simple.put("retry me")
    message = simple.get(timeout=5)
    assert message.delivery_info["redelivered"] is False
    message.requeue()
    again = simple.get(timeout=5)
    assert (again.payload, again.delivery_info["redelivered"]) == ("retry me", True)
    again.ack()


def test_drain_events_times_out_when_idle(connection: Connection, unique: str) -> None:
    queue = Queue(f"{unique}.q", auto_delete=True)
    with Consumer(connection, [queue], callbacks=[lambda body, message: None]):
        with pytest.raises(socket.timeout):
            connection.drain_events(timeout=0.2)


def test_prefetch_and_reject(connection: Connection, unique: str) -> None:
    queue = Queue(f"{unique}.q", auto_delete=True)
    producer = Producer(connection, serializer="json")
    received: list[Message] = []
    with Consumer(connection, [queue], callbacks=[lambda _body, message: received.append(message)], prefetch_count=2):
        for number in range(4):
            producer.publish(number, routing_key=queue.name, declare=[queue])
        drain(connection, received, 2)
        with pytest.raises(socket.timeout):
            connection.drain_events(timeout=0.2)
        assert [message.payload for message in received] == [0, 1]
        received[0].reject(requeue=False)
        received[1].ack()
        drain(connection, received, 4)
        for message in received[2:]:
            message.ack()
    assert [message.payload for message in received] == [0, 1, 2, 3]


def test_header_value_types_via_py_amqp(simple: SimpleQueue) -> None:
    headers = {
        "float": 2.5,
        "int": 7,
        "int64": 2**40,
        "negative": -(2**40),
        "decimal": decimal.Decimal("12.34"),
        "datetime": datetime.datetime(2024, 5, 1, 12, 0, 0),
        "bool": False,
        "none": None,
        "str": "text",
        "nested": {"list": [1, "a", 1.25, {"deep": True}]},
    }
    simple.put("typed", headers=headers)
    message = simple.get(timeout=5)
    message.ack()
    # py-amqp decodes long strings to str and timestamps to naive UTC datetimes.
    assert message.headers == headers
    assert {key: type(value) for key, value in message.headers.items()} == {key: type(value) for key, value in headers.items()}


def test_channel_error_surfaces_as_py_amqp_exception(connection: Connection, unique: str) -> None:
    channel = connection.channel()
    with pytest.raises(amqp.exceptions.NotFound) as missing:
        channel.queue_declare(f"{unique}.missing", passive=True)
    assert missing.value.reply_code == 404
    assert missing.value.reply_text == f"NOT_FOUND - no queue '{unique}.missing' in vhost '/'"
    fresh = connection.channel()
    name, messages, consumers = fresh.queue_declare("", exclusive=True)
    assert name.startswith("amq.gen-") and (messages, consumers) == (0, 0)
    fresh.close()


def test_publisher_confirms_via_confirm_publish(amqp_url: str, unique: str) -> None:
    with Connection(amqp_url, transport="amqp", transport_options={"confirm_publish": True}) as conn:
        queue = Queue(f"{unique}.q", auto_delete=True)
        producer = Producer(conn, serializer="json")
        producer.publish("confirmed", routing_key=queue.name, declare=[queue])
        channel = conn.default_channel
        bound = queue(channel)
        assert bound.get(no_ack=True).payload == "confirmed"
        bound.delete()
        with pytest.raises(amqp.exceptions.NotFound):
            producer.publish("lost", exchange=f"{unique}.missing", routing_key="x")


@pytest.mark.parametrize("login_method", ["AMQPLAIN", "PLAIN"])
def test_login_methods_and_refusal(wiregate_server, login_method: str) -> None:
    base = f"amqp://guest:{{}}@{wiregate_server.host}:{wiregate_server.amqp_port}//"
    with Connection(base.format("guest"), transport="amqp", login_method=login_method, connect_timeout=5) as conn:
        conn.connect()
        assert conn.connection.server_properties["product"] == "RabbitMQ"
    with Connection(base.format("wrong"), transport="amqp", login_method=login_method, connect_timeout=5) as conn:
        with pytest.raises(amqp.exceptions.AccessRefused) as refused:
            conn.connection.connect()
    assert refused.value.reply_code == 403
    assert refused.value.reply_text == (
        f"ACCESS_REFUSED - Login was refused using authentication mechanism {login_method}. For details see the broker logfile."
    )
