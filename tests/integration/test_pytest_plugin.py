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


SEEDED = '''
import pika
import pytest
from kafka import KafkaConsumer


@pytest.mark.wiregate(
    exchanges={"events": "topic"},
    queues={"jobs": {"x-max-length": 2}},
    topics={"orders": 3, "audit": 1},
    bindings=[("jobs", "events", "job.*")],
)
def test_marker_seeds_a_fresh_broker(wiregate):
    connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
    channel = connection.channel()
    declared = channel.queue_declare("jobs", passive=True)
    assert declared.method.message_count == 0
    for i in range(3):
        channel.basic_publish("events", "job.new", str(i).encode())
    channel.queue_declare("sync-point")
    connection.close()
    assert wiregate.queue_bodies("jobs") == [b"1", b"2"]  # x-max-length 2 drops the head
    consumer = KafkaConsumer(bootstrap_servers=wiregate.kafka_bootstrap)
    try:
        assert consumer.partitions_for_topic("orders") == {0, 1, 2}
        assert consumer.partitions_for_topic("audit") == {0}
    finally:
        consumer.close()


def test_unseeded_neighbour_sees_nothing(wiregate):
    assert wiregate.queues() == {}
    assert wiregate.topics() == {}
    assert "events" not in wiregate.exchanges()


@pytest.mark.wiregate(queues="not-a-list")
def test_bad_marker_is_a_usage_error(wiregate):
    pass
'''


def test_marker_seeds_queues_topics_exchanges_and_bindings(pytester) -> None:
    pytester.makepyfile(test_seeded=SEEDED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*queues is a list of names or a dict*"])


TRACED = '''
import pika


def test_fails_after_publishing(wiregate):
    connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
    channel = connection.channel()
    channel.queue_declare("traced-queue")
    channel.basic_publish("", "traced-queue", b"hello")
    connection.close()
    assert False, "deliberately"


def test_passes(wiregate):
    pass
'''


def test_trace_option_shows_the_frames_of_a_failing_test(pytester) -> None:
    pytester.makepyfile(test_traced=TRACED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--wiregate-trace")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*wiregate trace*", "*queue.declare*traced-queue*", "*basic.publish*"])
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    without.assert_outcomes(passed=1, failed=1)
    assert "wiregate trace" not in without.stdout.str()


# Every test creates the same queue and topic, with properties that differ per
# test: anything left from another test makes the declare or create fail.
MANY = '''
import pika
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic


@pytest.fixture(scope="module")
def admin(wiregate_server):
    client = KafkaAdminClient(bootstrap_servers=wiregate_server.kafka_bootstrap)
    yield client
    client.close()


@pytest.mark.parametrize("n", range(200))
def test_same_names_every_time(wiregate, admin, n):
    connection = pika.BlockingConnection(pika.URLParameters(wiregate.amqp_url))
    channel = connection.channel()
    channel.queue_declare("same-queue", durable=True, arguments={"x-max-length": n + 1})
    channel.basic_publish("", "same-queue", b"x")
    connection.close()
    admin.create_topics([NewTopic("same-topic", n % 4 + 1, 1)])
    assert wiregate.queue("same-queue").messages_ready == 1
    assert wiregate.topics() == {"same-topic": n % 4 + 1}
'''


def test_two_hundred_tests_reuse_names_in_parallel_workers(pytester) -> None:
    pytester.makepyfile(test_many=MANY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=200)
