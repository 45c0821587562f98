"""wiregate's pytest plugin, as a user gets it by installing wiregate: a test
file that only names the fixtures runs against a fresh in-process broker."""

from __future__ import annotations

INNER = '''
import pika
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic


def test_first_leaves_things_behind(wiregate):
    connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
    channel = connection.channel()
    channel.exchange_declare("left-exchange", "topic")
    channel.queue_declare("left-queue", durable=True)
    channel.basic_publish("", "left-queue", b"stale")
    connection.close()
    producer = KafkaProducer(bootstrap_servers=wiregate.kafka_bootstrap)
    producer.send("left-topic", b"stale").get(timeout=10)
    producer.close()
    assert "left-queue" in wiregate.broker.vhosts["/"].queues


def test_second_sees_a_clean_broker(wiregate):
    connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as missing:
        connection.channel().queue_declare("left-queue", passive=True)
    assert missing.value.reply_code == 404
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        connection.channel().exchange_declare("left-exchange", passive=True)
    connection.close()
    admin = KafkaAdminClient(bootstrap_servers=wiregate.kafka_bootstrap)
    try:
        assert "left-topic" not in admin.list_topics()
    finally:
        admin.close()


def test_session_server_is_shared(wiregate_server, wiregate):
    assert wiregate is wiregate_server
    assert wiregate.amqp_url.startswith("amqp://guest:guest@127.0.0.1:")
    assert wiregate.kafka_bootstrap.startswith("127.0.0.1:")
'''


def test_fixtures_come_with_the_package_and_isolate_tests(pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-q")
    result.assert_outcomes(passed=3)
