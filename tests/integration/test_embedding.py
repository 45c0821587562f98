"""The embedding API: sync and async servers, declarations from Python, and
reading back what real clients did."""

from __future__ import annotations

import asyncio

import aio_pika
import anyio
import kafka
import pika
import pytest
import trio

import wiregate.testing
from wiregate.core import PreconditionFailed
from wiregate.testing import AsyncServer, Server

pytestmark = pytest.mark.timeout(60)


def test_declared_queue_and_binding_route_a_pika_publish(wiregate):
    wiregate.declare_exchange("events", "topic", durable=True)
    wiregate.declare_queue("audit", durable=True, arguments={"x-max-priority": 5})
    wiregate.bind_queue("audit", "events", "user.#")
    connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
    try:
        channel = connection.channel()
        channel.basic_publish("events", "user.created", b"u1")
        channel.basic_publish("events", "order.created", b"o1")
        channel.basic_qos(prefetch_count=1)
        channel.basic_publish("events", "user.deleted", b"u2")
        method, _, body = next(channel.consume("audit", inactivity_timeout=5))
        assert body == b"u1"
        info = wiregate.queue("audit")
        assert (info.messages_ready, info.messages_unacknowledged, info.consumers) == (1, 1, 1)
        assert info.durable and info.arguments == {"x-max-priority": 5} and info.type == "classic"
        assert wiregate.queue_bodies("audit") == [b"u2"]
        channel.basic_ack(method.delivery_tag)
        channel.cancel()
    finally:
        connection.close()
    assert wiregate.exchanges()["events"] == "topic"
    with pytest.raises(PreconditionFailed):
        wiregate.declare_queue("audit", durable=False)
    with pytest.raises(KeyError):
        wiregate.queue("missing")


def test_produced_records_reach_kafka_python_and_its_records_read_back(wiregate):
    wiregate.create_topic("orders", 2)
    assert wiregate.produce("orders", b"seeded", key=b"k", headers=[("h", b"v")], partition=1, timestamp_ms=1700000000000) == 0
    consumer = kafka.KafkaConsumer(bootstrap_servers=wiregate.kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    try:
        consumer.assign([kafka.TopicPartition("orders", 1)])
        message = next(consumer)
    finally:
        consumer.close()
    assert (message.key, message.value, message.headers, message.timestamp) == (b"k", b"seeded", [("h", b"v")], 1700000000000)
    producer = kafka.KafkaProducer(bootstrap_servers=wiregate.kafka_bootstrap, compression_type="gzip")
    try:
        producer.send("orders", b"from-client", key=b"c", partition=0).get(timeout=10)
    finally:
        producer.close()
    records = wiregate.records("orders")
    assert [(r.partition, r.offset, r.key, r.value) for r in records] == [(0, 0, b"c", b"from-client"), (1, 0, b"k", b"seeded")]
    assert wiregate.records("orders", 1)[0].headers == [("h", b"v")]
    with pytest.raises(ValueError, match="already exists"):
        wiregate.create_topic("orders")


def test_group_members_and_committed_offsets_are_readable(wiregate):
    wiregate.create_topic("jobs", 2)
    for partition in (0, 1):
        wiregate.produce("jobs", b"x", partition=partition)
    consumer = kafka.KafkaConsumer(
        "jobs", bootstrap_servers=wiregate.kafka_bootstrap, group_id="workers", client_id="worker-1",
        auto_offset_reset="earliest", consumer_timeout_ms=5000, enable_auto_commit=False,
    )
    try:
        assert len([m for _, m in zip(range(2), consumer)]) == 2
        consumer.commit()
        group = wiregate.group("workers")
        assert group.state == "Stable" and group.protocol_type == "consumer"
        (member,) = group.members
        assert member.client_id == "worker-1"
        assert member.assignment == {"jobs": [0, 1]}
        assert wiregate.committed_offsets("workers") == {("jobs", 0): 1, ("jobs", 1): 1}
    finally:
        consumer.close()


def test_recording_captures_the_decoded_frames(wiregate):
    with wiregate.recording() as events:
        connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
        channel = connection.channel()
        channel.queue_declare("recorded")
        connection.close()
    names = [event["name"] for event in events]
    assert "queue.declare" in names and "queue.declare-ok" in names
    assert names.index("queue.declare") < names.index("queue.declare-ok")
    before = len(events)
    pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url)).close()
    assert len(events) == before  # recording ended with the block


def test_sync_context_manager_on_fixed_and_kernel_ports():
    with Server() as first:
        assert first.amqp_port > 0
        with wiregate.testing.server(amqp_port=0, kafka_port=0) as second:
            assert second.amqp_port != first.amqp_port
            second.declare_queue("only-here")
            assert "only-here" not in first.queues()
    with pytest.raises(RuntimeError, match="not running"):
        first.queues()


def test_async_server_under_asyncio_with_aio_pika():
    async def main() -> None:
        async with AsyncServer() as srv:
            srv.declare_queue("async-q")
            connection = await aio_pika.connect(srv.amqp_url)
            async with connection:
                channel = await connection.channel()
                await channel.default_exchange.publish(aio_pika.Message(b"hi"), routing_key="async-q")
                queue = await channel.get_queue("async-q")
                message = await queue.get(timeout=5)
                assert message.body == b"hi"
                await message.ack()
            assert srv.queue("async-q").messages == 0

    asyncio.run(main())


def _amqp_greeting_over(stream_bytes: bytes) -> bool:
    return stream_bytes.startswith(b"\x01\x00\x00")  # a method frame on channel 0: connection.start


def test_async_server_under_trio():
    async def main() -> None:
        async with AsyncServer() as srv:
            stream = await trio.open_tcp_stream(srv.host, srv.amqp_port)
            async with stream:
                await stream.send_all(b"AMQP\x00\x00\x09\x01")
                greeting = await stream.receive_some(4096)
            assert _amqp_greeting_over(greeting)
            srv.create_topic("from-trio")
            assert srv.topics() == {"from-trio": 1}

    trio.run(main)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_server_under_anyio(backend):
    async def main() -> None:
        async with AsyncServer() as srv:
            async with await anyio.connect_tcp(srv.host, srv.amqp_port) as stream:
                await stream.send(b"AMQP\x00\x00\x09\x01")
                assert _amqp_greeting_over(await stream.receive())

    anyio.run(main, backend=backend)
