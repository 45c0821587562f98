"""Quorum queues, stream queues, the delayed-message exchange and CC/BCC,
through pika against the in-process server.

Expected behaviour was recorded from RabbitMQ 3.10.8 (quorum and stream) and
from the rabbitmq-delayed-message-exchange plugin's documented behaviour.
"""

from __future__ import annotations

import time

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker, UnroutableError


@pytest.fixture
def connection(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield conn
    if conn.is_open:
        conn.close()


def _drain(conn, got, until, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)


# ------------------------------------------------------------------ quorum
@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"durable": False}, "invalid property 'non-durable' for queue '{q}' in vhost '/'"),
        ({"durable": True, "exclusive": True}, "invalid property 'exclusive-owner' for queue '{q}' in vhost '/'"),
        ({"durable": True, "auto_delete": True}, "invalid property 'auto-delete' for queue '{q}' in vhost '/'"),
    ],
)
def test_quorum_queue_refuses_properties(connection, unique, kwargs, text) -> None:
    q = f"{unique}.qq"
    with pytest.raises(ChannelClosedByBroker) as info:
        connection.channel().queue_declare(q, arguments={"x-queue-type": "quorum"}, **kwargs)
    assert info.value.reply_code == 406
    assert info.value.reply_text == "PRECONDITION_FAILED - " + text.format(q=q)


def test_quorum_queue_refuses_server_names_and_priorities(connection, unique) -> None:
    with pytest.raises(ChannelClosedByBroker) as info:
        connection.channel().queue_declare("", durable=True, arguments={"x-queue-type": "quorum"})
    assert info.value.reply_text == "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue"
    q = f"{unique}.qq"
    with pytest.raises(ChannelClosedByBroker) as info:
        connection.channel().queue_declare(q, durable=True, arguments={"x-queue-type": "quorum", "x-max-priority": 5})
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '{q}' in vhost '/' of queue type rabbit_quorum_queue"
    )


def test_quorum_delivery_count_and_delivery_limit_dead_letters(connection, unique) -> None:
    ch = connection.channel()
    dead = f"{unique}.dead"
    ch.queue_declare(dead)
    q = f"{unique}.qq"
    ch.queue_declare(
        q,
        durable=True,
        arguments={"x-queue-type": "quorum", "x-delivery-limit": 1, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead},
    )
    ch.confirm_delivery()
    ch.basic_publish("", q, b"x", pika.BasicProperties(headers={"h": 1}))
    seen = []
    for _ in range(3):
        method, props, _body = ch.basic_get(q)
        if method is None:
            seen.append("empty")
            break
        seen.append((method.redelivered, props.headers))
        ch.basic_nack(method.delivery_tag, requeue=True)
    assert seen == [(False, {"h": 1, "x-delivery-count": 0}), (True, {"h": 1, "x-delivery-count": 1}), "empty"]
    method, props, body = ch.basic_get(dead, auto_ack=True)
    assert body == b"x"
    assert props.headers["x-death"][0]["reason"] == "delivery_limit"
    assert props.headers["x-first-death-queue"] == q
    ch.queue_delete(q)
    ch.queue_delete(dead)


def test_quorum_redeclare_as_classic_is_inequivalent(connection, unique) -> None:
    q = f"{unique}.qq"
    connection.channel().queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
    with pytest.raises(ChannelClosedByBroker) as info:
        connection.channel().queue_declare(q, durable=True)
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '{q}' in vhost '/': "
        "received none but current is the value 'quorum' of type 'longstr'"
    )
    connection.channel().queue_delete(q)


# ------------------------------------------------------------------ stream
def _stream(connection, unique, count=3):
    ch = connection.channel()
    q = f"{unique}.stream"
    ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream"})
    ch.confirm_delivery()
    for i in range(count):
        ch.basic_publish("", q, f"m{i}".encode())
    return ch, q


def _consume_stream(connection, q, offset, expect):
    ch = connection.channel()
    ch.basic_qos(prefetch_count=10)
    got = []

    def on_message(channel, method, props, body):
        got.append((body.decode(), props.headers["x-stream-offset"]))
        channel.basic_ack(method.delivery_tag)

    ch.basic_consume(q, on_message, arguments={} if offset is None else {"x-stream-offset": offset})
    _drain(connection, got, lambda: len(got) >= expect, timeout=1.0 if expect else 0.3)
    ch.close()
    return got


def test_stream_offsets(connection, unique) -> None:
    ch, q = _stream(connection, unique)
    assert _consume_stream(connection, q, "first", 3) == [("m0", 0), ("m1", 1), ("m2", 2)]
    assert _consume_stream(connection, q, 1, 2) == [("m1", 1), ("m2", 2)]
    assert _consume_stream(connection, q, "next", 0) == []
    # acknowledging does not remove anything from a stream
    assert ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream"}).method.message_count == 3
    assert ch.queue_delete(q).method.message_count == 0


def test_stream_refusals(connection, unique) -> None:
    _ch, q = _stream(connection, unique, count=1)
    with pytest.raises(ChannelClosedByBroker) as info:
        connection.channel().basic_consume(q, lambda *a: None)
    assert info.value.reply_text == f"PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '{q}' in vhost '/''"
    with pytest.raises(ConnectionClosedByBroker) as closed:
        connection.channel().basic_get(q)
    assert closed.value.reply_code == 540
    assert closed.value.reply_text == f"NOT_IMPLEMENTED - basic.get not supported by stream queues queue '{q}' in vhost '/'"


def test_stream_consumer_sees_new_messages(connection, unique) -> None:
    ch, q = _stream(connection, unique, count=1)
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=1)
    got = []

    def on_message(channel, method, props, body):
        got.append(body)
        channel.basic_ack(method.delivery_tag)

    consumer.basic_consume(q, on_message, arguments={"x-stream-offset": "next"})
    ch.basic_publish("", q, b"later-1")
    ch.basic_publish("", q, b"later-2")
    _drain(connection, got, lambda: len(got) >= 2)
    assert got == [b"later-1", b"later-2"]
    ch.queue_delete(q)


# ----------------------------------------------------------------- delayed
def test_delayed_message_exchange_holds_messages(connection, unique) -> None:
    ch = connection.channel()
    x = f"{unique}.delayed"
    q = f"{unique}.q"
    ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    start = time.monotonic()
    ch.basic_publish(x, "k", b"later", pika.BasicProperties(headers={"x-delay": 300}))
    ch.basic_publish(x, "k", b"now")
    assert ch.basic_get(q, auto_ack=True)[2] == b"now"
    assert ch.basic_get(q, auto_ack=True)[0] is None
    body = None
    while body is None and time.monotonic() - start < 3:
        connection.process_data_events(time_limit=0.05)
        body = ch.basic_get(q, auto_ack=True)[2]
    assert body == b"later"
    assert time.monotonic() - start >= 0.3
    ch.queue_delete(q)
    ch.exchange_delete(x)


def test_delayed_exchange_needs_a_delayed_type(connection, unique) -> None:
    with pytest.raises(ChannelClosedByBroker) as info:
        connection.channel().exchange_declare(f"{unique}.d", "x-delayed-message")
    assert info.value.reply_text == "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type"


def test_delayed_mandatory_message_is_returned_like_the_plugin(connection, unique) -> None:
    ch = connection.channel()
    x = f"{unique}.delayed"
    q = f"{unique}.q"
    ch.exchange_declare(x, "x-delayed-message", arguments={"x-delayed-type": "direct"})
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    ch.confirm_delivery()
    with pytest.raises(UnroutableError):
        ch.basic_publish(x, "k", b"held", pika.BasicProperties(headers={"x-delay": 100}), mandatory=True)
    ch.queue_delete(q)
    ch.exchange_delete(x)


# ------------------------------------------------------------------ CC/BCC
def test_cc_and_bcc_route_and_bcc_is_stripped(connection, unique) -> None:
    ch = connection.channel()
    a, b, c = (f"{unique}.{n}" for n in "abc")
    for q in (a, b, c):
        ch.queue_declare(q)
    ch.confirm_delivery()
    ch.basic_publish("", a, b"m", pika.BasicProperties(headers={"CC": [b], "BCC": [c], "k": 1}))
    for q in (a, b, c):
        method, props, body = ch.basic_get(q, auto_ack=True)
        assert body == b"m", q
        assert props.headers == {"CC": [b], "k": 1}
        ch.queue_delete(q)
