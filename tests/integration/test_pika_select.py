"""pika's callback-style SelectConnection against wiregate, driven by its own ioloop.

Each test is a small state machine of callbacks; the ioloop stops when the
flow finishes or fails, and a timer guards against a flow that stalls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest
from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic, BasicProperties

TIMEOUT = 5.0


class Flow:
    """Runs one SelectConnection until ``done()`` or ``fail()``, at most ``TIMEOUT`` seconds."""

    def __init__(self, amqp_url: str, on_channel: Callable[[Channel], None], *, channel_may_close: bool = False) -> None:
        self.result: Any = None
        self.error: BaseException | str | None = None
        self.channel: Channel | None = None
        self.closed_reason: BaseException | None = None
        self._on_channel = on_channel
        self._channel_may_close = channel_may_close
        self.connection = pika.SelectConnection(
            pika.URLParameters(amqp_url),
            on_open_callback=self._opened,
            on_open_error_callback=lambda _conn, error: self.fail(error),
            on_close_callback=self._closed,
        )

    def run(self) -> Any:
        timer = self.connection.ioloop.call_later(TIMEOUT, lambda: self.fail("flow timed out"))
        self.connection.ioloop.start()
        self.connection.ioloop.remove_timeout(timer)
        if self.error is not None:
            raise AssertionError(f"flow failed: {self.error!r}")
        return self.result

    def done(self, result: Any = None) -> None:
        self.result = result
        self._finish()

    def fail(self, error: BaseException | str) -> None:
        if self.error is None:
            self.error = error
        self._finish()

    def _finish(self) -> None:
        if self.connection.is_open:
            self.connection.close()
        elif self.connection.is_closed:
            self.connection.ioloop.stop()

    def _opened(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._channel_opened)

    def _channel_opened(self, channel: Channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._channel_closed)
        self._on_channel(channel)

    def _channel_closed(self, _channel: Channel, reason: BaseException) -> None:
        if not self._channel_may_close and self.connection.is_open and self.result is None and self.error is None:
            self.fail(reason)

    def _closed(self, _connection: pika.SelectConnection, reason: BaseException) -> None:
        self.closed_reason = reason
        self.connection.ioloop.stop()


def test_publish_consume_ack_flow(amqp_url: str, unique: str) -> None:
    queue = f"{unique}.q"
    received: list[tuple[bytes, bool, str | None]] = []
    flow: Flow

    def on_channel(channel: Channel) -> None:
        channel.queue_declare(queue, callback=on_declared)

    def on_declared(frame: Method) -> None:
        assert flow.channel is not None
        assert frame.method.queue == queue
        flow.channel.basic_qos(prefetch_count=2, callback=on_qos)

    def on_qos(_frame: Method) -> None:
        assert flow.channel is not None
        flow.channel.basic_consume(queue, on_message)
        for i in range(5):
            flow.channel.basic_publish("", queue, f"m{i}".encode(), BasicProperties(message_id=str(i)))

    def on_message(channel: Channel, method: Basic.Deliver, properties: BasicProperties, body: bytes) -> None:
        received.append((body, method.redelivered, properties.message_id))
        channel.basic_ack(method.delivery_tag)
        if len(received) == 5:
            channel.queue_declare(queue, passive=True, callback=on_counted)

    def on_counted(frame: Method) -> None:
        assert flow.channel is not None
        counts = (frame.method.message_count, frame.method.consumer_count)
        flow.channel.queue_delete(queue, callback=lambda _frame: flow.done(counts))

    flow = Flow(amqp_url, on_channel)
    assert flow.run() == (0, 1)
    assert received == [(f"m{i}".encode(), False, str(i)) for i in range(5)]
    assert isinstance(flow.closed_reason, pika.exceptions.ConnectionClosedByClient)


def test_confirms_arrive_through_add_on_delivery_confirmation(amqp_url: str, unique: str) -> None:
    queue = f"{unique}.q"
    events: list[tuple[str, int, bool]] = []
    confirmed: set[int] = set()
    flow: Flow

    def on_channel(channel: Channel) -> None:
        channel.add_on_return_callback(lambda _ch, _method, _properties, body: events.append(("Return", 0, False)))
        channel.confirm_delivery(on_confirmation, callback=on_confirm_mode)

    def on_confirm_mode(_frame: Method) -> None:
        assert flow.channel is not None
        flow.channel.queue_declare(queue, callback=on_declared)

    def on_declared(_frame: Method) -> None:
        assert flow.channel is not None
        for i in range(10):
            flow.channel.basic_publish("", queue, f"m{i}".encode())
        flow.channel.basic_publish("", f"{unique}.nowhere", b"unroutable", mandatory=True)

    def on_confirmation(frame: Method) -> None:
        method = frame.method
        events.append((type(method).__name__, method.delivery_tag, method.multiple))
        # RabbitMQ may confirm out of order (the unroutable message first); multiple covers every lower tag.
        if method.multiple:
            confirmed.update(range(1, method.delivery_tag + 1))
        else:
            confirmed.add(method.delivery_tag)
        if confirmed == set(range(1, 12)):
            assert flow.channel is not None
            flow.channel.queue_delete(queue, callback=lambda frame: flow.done(frame.method.message_count))

    flow = Flow(amqp_url, on_channel)
    assert flow.run() == 10
    assert {kind for kind, _tag, _multiple in events} == {"Ack", "Return"}
    # The basic.return of the mandatory unroutable message precedes its basic.ack.
    ack_of_unroutable = next(i for i, (kind, tag, _multiple) in enumerate(events) if kind == "Ack" and tag == 11)
    assert events.index(("Return", 0, False)) < ack_of_unroutable


def test_channel_close_by_broker_reaches_the_close_callback(amqp_url: str, unique: str) -> None:
    flow: Flow
    closes: list[tuple[int, str]] = []

    def on_channel(channel: Channel) -> None:
        channel.add_on_close_callback(on_channel_closed)
        channel.queue_declare(f"{unique}.missing", passive=True)

    def on_channel_closed(_channel: Channel, reason: BaseException) -> None:
        assert isinstance(reason, pika.exceptions.ChannelClosedByBroker)
        closes.append((reason.reply_code, reason.reply_text))
        flow.connection.channel(on_open_callback=lambda channel: flow.done(channel.channel_number))

    flow = Flow(amqp_url, on_channel, channel_may_close=True)
    assert flow.run() != 0
    assert closes == [(404, f"NOT_FOUND - no queue '{unique}.missing' in vhost '/'")]


def test_consumer_cancelled_by_broker_reaches_the_cancel_callback(amqp_url: str, unique: str) -> None:
    queue = f"{unique}.q"
    flow: Flow
    tags: list[str] = []

    def on_channel(channel: Channel) -> None:
        channel.add_on_cancel_callback(lambda frame: flow.done(frame.method.consumer_tag))
        channel.queue_declare(queue, callback=on_declared)

    def on_declared(_frame: Method) -> None:
        assert flow.channel is not None
        tags.append(flow.channel.basic_consume(queue, lambda *args: None, callback=on_consuming))

    def on_consuming(_frame: Method) -> None:
        flow.connection.channel(on_open_callback=lambda other: other.queue_delete(queue))

    flow = Flow(amqp_url, on_channel)
    assert flow.run() == tags[0]


@pytest.mark.parametrize("body_size", [0, 300_000])
def test_get_round_trips_bodies(amqp_url: str, unique: str, body_size: int) -> None:
    queue = f"{unique}.q"
    body = bytes(i % 256 for i in range(body_size))
    flow: Flow

    def on_channel(channel: Channel) -> None:
        channel.queue_declare(queue, exclusive=True, callback=on_declared)

    def on_declared(_frame: Method) -> None:
        assert flow.channel is not None
        flow.channel.basic_publish("", queue, body)
        flow.channel.basic_get(queue, on_got)

    def on_got(_channel: Channel, method: Basic.GetOk, _properties: BasicProperties, got: bytes) -> None:
        assert flow.channel is not None
        flow.channel.basic_ack(method.delivery_tag)
        flow.done(got)

    flow = Flow(amqp_url, on_channel)
    assert flow.run() == body


def test_overflow_reject_publish_arrives_as_nack(amqp_url: str, unique: str) -> None:
    queue = f"{unique}.q"
    outcomes: dict[int, str] = {}
    flow: Flow

    def on_channel(channel: Channel) -> None:
        channel.confirm_delivery(on_confirmation, callback=on_confirm_mode)

    def on_confirm_mode(_frame: Method) -> None:
        assert flow.channel is not None
        flow.channel.queue_declare(
            queue, exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}, callback=on_declared
        )

    def on_declared(_frame: Method) -> None:
        assert flow.channel is not None
        for i in range(3):
            flow.channel.basic_publish("", queue, f"m{i}".encode())

    def on_confirmation(frame: Method) -> None:
        method = frame.method
        # A multiple confirm covers every tag up to its own not confirmed yet.
        tags = range(1, method.delivery_tag + 1) if method.multiple else [method.delivery_tag]
        for tag in tags:
            outcomes.setdefault(tag, type(method).__name__)
        if len(outcomes) == 3:
            flow.done()

    flow = Flow(amqp_url, on_channel)
    flow.run()
    assert outcomes == {1: "Ack", 2: "Nack", 3: "Nack"}
