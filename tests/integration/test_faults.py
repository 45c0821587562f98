"""Fault injection seen through real clients.

Each Kafka client must see an injected error as the error Kafka would send
and react as it does against Kafka (retry a retriable error, fail on a
fatal one); pika and aio-pika must see RabbitMQ's channel/connection closes
and publisher nacks.  The server is the ``wiregate`` fixture (a clean
broker per test, so rules never leak between tests).
"""

from __future__ import annotations

import asyncio
import time

import aio_pika
import aiokafka
import confluent_kafka
import kafka
import kafka.errors
import pika
import pika.exceptions
import pytest

pytestmark = pytest.mark.timeout(60)


def _kafka_python_producer(bootstrap: str, **config) -> kafka.KafkaProducer:
    return kafka.KafkaProducer(bootstrap_servers=bootstrap, retry_backoff_ms=20, request_timeout_ms=5000, **config)


# ------------------------------------------------------------------ Kafka
def test_spec_errors_are_refused_when_added(wiregate):
    with pytest.raises(ValueError, match="unknown Kafka API"):
        wiregate.faults.kafka("Produceish", error="NOT_LEADER_OR_FOLLOWER")
    with pytest.raises(ValueError, match="unknown Kafka error"):
        wiregate.faults.kafka("Produce", error="NOT_A_REAL_ERROR")
    with pytest.raises(ValueError, match="one action"):
        wiregate.faults.kafka("Produce", error=6, drop=True)
    with pytest.raises(ValueError, match="unknown protocol"):
        wiregate.faults.add({"protocol": "mqtt", "action": "drop"})
    with pytest.raises(ValueError, match="unknown AMQP method"):
        wiregate.faults.amqp("basic.publsh", "nack")
    with pytest.raises(ValueError, match="nack applies to basic.publish"):
        wiregate.faults.amqp("queue.declare", "nack")
    assert wiregate.faults.list() == []


def test_kafka_python_retries_a_not_leader_produce(wiregate):
    wiregate.create_topic("orders", 1)
    fault = wiregate.faults.kafka("Produce", error="NOT_LEADER_OR_FOLLOWER", after=2)
    producer = _kafka_python_producer(wiregate.kafka_bootstrap, acks="all", retries=5, max_in_flight_requests_per_connection=1)
    try:
        for i in range(5):
            producer.send("orders", f"m{i}".encode()).get(timeout=10)
    finally:
        producer.close()
    assert fault.hits == 1
    assert not fault.active
    # The refused batch was retried and stored once: nothing lost, nothing doubled.
    assert [r.value for r in wiregate.records("orders")] == [f"m{i}".encode() for i in range(5)]
    assert [r.offset for r in wiregate.records("orders")] == list(range(5))


def test_kafka_python_fails_on_a_fatal_produce_error(wiregate):
    wiregate.create_topic("secret", 1)
    wiregate.faults.kafka("Produce", error="TOPIC_AUTHORIZATION_FAILED", topic="secret")
    producer = _kafka_python_producer(wiregate.kafka_bootstrap, retries=5)
    try:
        with pytest.raises(kafka.errors.TopicAuthorizationFailedError):
            producer.send("secret", b"x").get(timeout=10)
    finally:
        producer.close()
    assert wiregate.records("secret") == []


def test_aiokafka_retries_a_not_leader_produce(wiregate):
    wiregate.create_topic("orders", 1)
    fault = wiregate.faults.kafka("Produce", error="NOT_LEADER_OR_FOLLOWER", times=2)

    async def main() -> None:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=wiregate.kafka_bootstrap, retry_backoff_ms=20, acks="all")
        await producer.start()
        try:
            for i in range(3):
                await producer.send_and_wait("orders", f"a{i}".encode())
        finally:
            await producer.stop()

    asyncio.run(main())
    assert fault.hits == 2
    assert [r.value for r in wiregate.records("orders")] == [b"a0", b"a1", b"a2"]


def test_confluent_kafka_retries_a_not_leader_produce(wiregate):
    wiregate.create_topic("orders", 1)
    fault = wiregate.faults.kafka("Produce", error="NOT_LEADER_OR_FOLLOWER")
    producer = confluent_kafka.Producer({"bootstrap.servers": wiregate.kafka_bootstrap, "retry.backoff.ms": 20, "linger.ms": 0})
    errors = []
    for i in range(3):
        producer.produce("orders", f"c{i}".encode(), on_delivery=lambda err, msg: errors.append(err))
        producer.flush(10)
    assert errors == [None, None, None]
    assert fault.hits == 1
    # librdkafka's idempotence is off by default: the retried batch is stored once here
    # because the refused one never was.
    assert [r.value for r in wiregate.records("orders")] == [b"c0", b"c1", b"c2"]


def test_confluent_kafka_reports_a_fatal_produce_error(wiregate):
    wiregate.create_topic("orders", 1)
    wiregate.faults.kafka("Produce", error="INVALID_RECORD", times=None)
    producer = confluent_kafka.Producer({"bootstrap.servers": wiregate.kafka_bootstrap, "retry.backoff.ms": 20})
    errors = []
    producer.produce("orders", b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert len(errors) == 1 and errors[0].code() == confluent_kafka.KafkaError.INVALID_RECORD
    assert wiregate.records("orders") == []


def test_kafka_python_reconnects_after_a_dropped_connection(wiregate):
    wiregate.create_topic("orders", 1)
    fault = wiregate.faults.kafka("Produce", drop=True)
    producer = _kafka_python_producer(wiregate.kafka_bootstrap, retries=5, acks=1)
    try:
        producer.send("orders", b"after-drop").get(timeout=15)
    finally:
        producer.close()
    assert fault.hits == 1
    assert [r.value for r in wiregate.records("orders")] == [b"after-drop"]


def test_a_delayed_fetch_answers_after_the_delay(wiregate):
    wiregate.create_topic("slow", 1)
    wiregate.produce("slow", b"v")
    consumer = kafka.KafkaConsumer(bootstrap_servers=wiregate.kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000)
    try:
        consumer.assign([kafka.TopicPartition("slow", 0)])
        fault = wiregate.faults.kafka("Fetch", delay_ms=400)
        started = time.monotonic()
        message = next(consumer)
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    assert message.value == b"v"
    assert fault.hits == 1
    assert elapsed >= 0.4  # held at least as long as asked: a lower bound, not a speed claim


def test_metadata_error_on_one_topic_is_retried(wiregate):
    wiregate.create_topic("late", 1)
    fault = wiregate.faults.kafka("Metadata", error="LEADER_NOT_AVAILABLE", topic="late", times=2)
    producer = _kafka_python_producer(wiregate.kafka_bootstrap)
    try:
        producer.send("late", b"x").get(timeout=10)
    finally:
        producer.close()
    assert fault.hits == 2
    assert [r.value for r in wiregate.records("late")] == [b"x"]


def test_consumer_group_survives_coordinator_errors(wiregate):
    wiregate.create_topic("jobs", 2)
    for i in range(4):
        wiregate.produce("jobs", f"j{i}".encode(), partition=i % 2)
    fault = wiregate.faults.kafka("FindCoordinator", error="COORDINATOR_NOT_AVAILABLE", times=2)
    consumer = kafka.KafkaConsumer(
        "jobs",
        bootstrap_servers=wiregate.kafka_bootstrap,
        group_id="workers",
        auto_offset_reset="earliest",
        consumer_timeout_ms=10000,
        retry_backoff_ms=20,
    )
    try:
        values = sorted(message.value for _, message in zip(range(4), consumer))
        consumer.commit()
    finally:
        consumer.close()
    assert values == [b"j0", b"j1", b"j2", b"j3"]
    assert fault.hits == 2
    assert wiregate.committed_offsets("workers") == {("jobs", 0): 2, ("jobs", 1): 2}


def test_observing_records_requests_without_changing_them(wiregate):
    wiregate.create_topic("seen", 3)
    observer = wiregate.faults.kafka("Produce", topic="seen", partition=1)
    producer = _kafka_python_producer(wiregate.kafka_bootstrap, client_id="observed-client")
    try:
        producer.send("seen", b"p0", partition=0).get(timeout=10)
        producer.send("seen", b"p1", partition=1).get(timeout=10)
    finally:
        producer.close()
    assert observer.active  # observing rules stay until removed
    assert observer.hits == 1
    (matched,) = observer.matched
    assert matched["client_id"] == "observed-client"
    assert matched["topic"] == {"seen"} and matched["partition"] == {1}
    assert len(wiregate.records("seen")) == 2
    observer.remove()
    assert not observer.active


# ------------------------------------------------------------------ AMQP
def _pika(wiregate) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))


def test_pika_confirm_publish_is_nacked(wiregate):
    wiregate.declare_queue("work")
    fault = wiregate.faults.amqp("basic.publish", "nack", routing_key="work", after=1)
    connection = _pika(wiregate)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", "work", b"first")
        with pytest.raises(pika.exceptions.NackError):
            channel.basic_publish("", "work", b"second")
        channel.basic_publish("", "work", b"third")
    finally:
        connection.close()
    assert fault.hits == 1
    assert wiregate.queue_bodies("work") == [b"first", b"third"]


def test_pika_sees_the_channel_closed_with_the_given_code(wiregate):
    wiregate.faults.amqp("queue.declare", "close_channel", queue="jobs", reply_code=406, reply_text="no jobs today")
    connection = _pika(wiregate)
    try:
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            channel.queue_declare("jobs")
        assert caught.value.reply_code == 406
        assert caught.value.reply_text == "PRECONDITION_FAILED - no jobs today"
        # The connection carries on, and the method was not carried out.
        channel = connection.channel()
        channel.queue_declare("other")
    finally:
        connection.close()
    assert set(wiregate.queues()) == {"other"}


def test_pika_sees_the_connection_closed_with_the_given_code(wiregate):
    wiregate.faults.amqp("basic.consume", "close_connection")
    connection = _pika(wiregate)
    channel = connection.channel()
    channel.queue_declare("q")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
        channel.basic_consume("q", lambda *args: None)
    assert caught.value.reply_code == 320
    assert caught.value.reply_text == "CONNECTION_FORCED - fault injected by wiregate"


def test_pika_sees_a_dropped_connection(wiregate):
    wiregate.faults.amqp("queue.purge", "drop")
    connection = _pika(wiregate)
    channel = connection.channel()
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        channel.queue_purge("anything")
    assert connection.is_closed


def test_a_delayed_method_is_carried_out_after_the_delay(wiregate):
    fault = wiregate.faults.amqp("queue.declare", "delay", delay_ms=300)
    connection = _pika(wiregate)
    try:
        channel = connection.channel()
        started = time.monotonic()
        channel.queue_declare("late")
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    assert fault.hits == 1
    assert elapsed >= 0.3
    assert "late" in wiregate.queues()


def test_aio_pika_sees_nacks_and_channel_closes(wiregate):
    wiregate.declare_queue("work")

    async def main() -> None:
        connection = await aio_pika.connect(wiregate.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            wiregate.faults.amqp("basic.publish", "nack")
            with pytest.raises(aio_pika.exceptions.DeliveryError):
                await channel.default_exchange.publish(aio_pika.Message(b"nacked"), routing_key="work")
            await channel.default_exchange.publish(aio_pika.Message(b"kept"), routing_key="work")
            wiregate.faults.amqp("queue.bind", "close_channel", reply_code=404, reply_text="gone")
            queue = await channel.get_queue("work")
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await queue.bind("amq.topic", "k")

    asyncio.run(main())
    assert wiregate.queue_bodies("work") == [b"kept"]


def test_observed_amqp_methods_are_recorded(wiregate):
    observer = wiregate.faults.amqp("basic.publish", exchange="amq.topic")
    connection = _pika(wiregate)
    try:
        channel = connection.channel()
        channel.basic_publish("amq.topic", "a.b", b"1")
        channel.basic_publish("", "nowhere", b"2")
        channel.queue_declare("sync")  # a round trip: the publishes were handled
    finally:
        connection.close()
    assert [(m["method"], m["exchange"], m["routing_key"]) for m in observer.matched] == [("basic.publish", "amq.topic", "a.b")]


def test_reset_clears_fault_rules(wiregate):
    wiregate.faults.kafka("Produce", error=6, times=None)
    wiregate.faults.amqp("queue.declare", "drop")
    assert len(wiregate.faults.list()) == 2
    wiregate.reset()
    assert wiregate.faults.list() == []
