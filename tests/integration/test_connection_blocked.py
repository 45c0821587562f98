"""connection.blocked / connection.unblocked, driven by the broker's resource alarm.

RabbitMQ tells a connection it is blocked when it publishes during an alarm
(consuming connections are not blocked), and sends unblocked only to the
connections it told.
"""

from __future__ import annotations

import pika


def _connect(server):
    connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    events: list[tuple[str, str | None]] = []
    connection.add_on_connection_blocked_callback(lambda _c, frame: events.append(("blocked", frame.method.reason)))
    connection.add_on_connection_unblocked_callback(lambda _c, _frame: events.append(("unblocked", None)))
    return connection, events


def test_publisher_is_blocked_then_unblocked(wiregate_server) -> None:
    publisher, published_events = _connect(wiregate_server)
    idle, idle_events = _connect(wiregate_server)
    try:
        wiregate_server.call(wiregate_server.broker.block, "low on memory")
        publisher.channel().basic_publish("", "nowhere", b"x")
        publisher.process_data_events(time_limit=0.3)
        idle.process_data_events(time_limit=0.1)
        wiregate_server.call(wiregate_server.broker.unblock)
        publisher.process_data_events(time_limit=0.3)
        idle.process_data_events(time_limit=0.1)
    finally:
        wiregate_server.call(wiregate_server.broker.unblock)
        publisher.close()
        idle.close()
    assert published_events == [("blocked", "low on memory"), ("unblocked", None)]
    assert idle_events == []


def test_blocked_is_sent_once_per_alarm(wiregate_server) -> None:
    publisher, events = _connect(wiregate_server)
    try:
        wiregate_server.call(wiregate_server.broker.block, "disk alarm")
        channel = publisher.channel()
        for _ in range(3):
            channel.basic_publish("", "nowhere", b"x")
        publisher.process_data_events(time_limit=0.3)
    finally:
        wiregate_server.call(wiregate_server.broker.unblock)
        publisher.process_data_events(time_limit=0.3)
        publisher.close()
    assert events == [("blocked", "disk alarm"), ("unblocked", None)]
