"""Retention and compaction of Kafka topics, seen by real clients.

kafka-python, confluent-kafka (librdkafka) and kcat against the in-process
server.  The broker's cleaner runs on the real clock here: the
``fast_cleaner`` fixture sets ``log.retention.check.interval.ms`` and
``log.cleaner.backoff.ms`` to 50 ms (as ``--kafka-config`` would) and
restores them after the test.  Segments are rolled deterministically by
record timestamps (``segment.ms`` compares the new batch's timestamp with
the segment's first), and conditions that need a timer to fire are polled
with a deadline.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from typing import Any, Callable

import confluent_kafka
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import OffsetOutOfRangeError, PolicyViolationError

from wiregate.kafka_wire.retention import ensure_cleaner

pytestmark = pytest.mark.timeout(60)

FAST = {"log.retention.check.interval.ms": "50", "log.cleaner.backoff.ms": "50"}
HOUR_MS = 3_600_000


def _restart_cleaner(broker: Any) -> None:
    cleaner = broker.topics.cleaner
    if cleaner is not None:
        cleaner.stop()
        broker.topics.cleaner = None
    ensure_cleaner(broker)


@pytest.fixture
def fast_cleaner(wiregate: Any) -> Any:
    """The per-test server, its cleaner checking every 50 ms."""
    configs = wiregate.broker.kafka_configs
    saved = dict(configs)

    def apply(values: dict[str, str]) -> None:
        configs.clear()
        configs.update(values)
        _restart_cleaner(wiregate.broker)

    wiregate.call(apply, {**saved, **FAST})
    yield wiregate
    wiregate.call(apply, saved)


@pytest.fixture
def topic() -> str:
    return f"r-{uuid.uuid4().hex[:10]}"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0, step: Callable[[], None] | None = None) -> Any:
    """Poll ``condition`` until it is truthy (the cleaner's timers run on the real clock)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if step is not None:
            step()
        time.sleep(0.02)


def log_start(server: Any, topic: str, partition: int = 0) -> int:
    return server.call(lambda: server.broker.topics.get(topic).partitions[partition].log_start_offset)


def consume_all(bootstrap: str, topic: str, *, until: int, timeout: float = 15.0) -> list[Any]:
    """Every record of partition 0 from the beginning up to offset ``until`` (kafka-python)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while consumer.position(tp) < until and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(batch)
        return got
    finally:
        consumer.close()


# ------------------------------------------------------------ retention
def test_retention_ms_deletes_expired_records_and_moves_the_start(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    fast_cleaner.create_topic(topic, 1, configs={"retention.ms": "60000"})
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    old = int(time.time() * 1000) - HOUR_MS
    for i in range(5):
        producer.send(topic, b"old-%d" % i, key=b"k", timestamp_ms=old).get(timeout=5)
    # every segment expired: Kafka rolls an empty one and deletes them all
    wait_for(lambda: log_start(fast_cleaner, topic) == 5, "the expired records to go")
    for i in range(3):
        producer.send(topic, b"new-%d" % i, key=b"k").get(timeout=5)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        assert consumer.beginning_offsets([tp]) == {tp: 5}
        assert consumer.end_offsets([tp]) == {tp: 8}
        consumer.seek(tp, 1)  # below the start: OFFSET_OUT_OF_RANGE, reset to earliest
        got: list[Any] = []
        deadline = time.monotonic() + 15
        while len(got) < 3 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(batch)
        assert [(r.offset, r.value) for r in got] == [(5, b"new-0"), (6, b"new-1"), (7, b"new-2")]
    finally:
        consumer.close()
    assert [r.offset for r in fast_cleaner.records(topic)] == [5, 6, 7]


def test_a_consumer_without_reset_policy_gets_offset_out_of_range(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    fast_cleaner.create_topic(topic, 1, configs={"retention.ms": "1000"})
    old = int(time.time() * 1000) - HOUR_MS
    for i in range(3):
        fast_cleaner.produce(topic, b"v%d" % i, key=b"k", timestamp_ms=old)
    wait_for(lambda: log_start(fast_cleaner, topic) == 3, "retention")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="none", fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        with pytest.raises(OffsetOutOfRangeError):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                consumer.poll(timeout_ms=200)
    finally:
        consumer.close()


def test_retention_bytes_keeps_the_newest_segments(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    # wiregate.create_topic does not validate: segments smaller than Kafka's 1 MiB minimum
    fast_cleaner.create_topic(topic, 1, configs={"segment.bytes": "2000", "retention.bytes": "5000"})
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(60):
        producer.produce(topic, b"x" * 100, key=b"%d" % i, partition=0)
        producer.poll(0)
        if i % 10 == 9:
            producer.flush(10)
    producer.flush(10)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
    try:
        tp = confluent_kafka.TopicPartition(topic, 0)
        low, high = wait_for(
            lambda: (lambda w: w if w[0] > 0 else None)(consumer.get_watermark_offsets(tp, timeout=5, cached=False)),
            "retention.bytes to delete segments",
        )
        assert high == 60
        assert low == fast_cleaner.call(lambda: fast_cleaner.broker.topics.get(topic).partitions[0].log.segments[0].base_offset)
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < high - low and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(message.offset())
        assert got == list(range(low, high))
        stored = fast_cleaner.call(lambda: fast_cleaner.broker.topics.get(topic).partitions[0].log.bytes)
        assert stored <= 5000 + 2000
    finally:
        consumer.close()


def test_delete_records_is_a_policy_violation_on_a_compacted_topic(fast_cleaner: Any, topic: str) -> None:
    fast_cleaner.create_topic(topic, 1, configs={"cleanup.policy": "compact"})
    fast_cleaner.produce(topic, b"v", key=b"k")
    admin = KafkaAdminClient(bootstrap_servers=fast_cleaner.kafka_bootstrap)
    try:
        with pytest.raises(PolicyViolationError):
            admin.delete_records({TopicPartition(topic, 0): 1})
    finally:
        admin.close()


# ------------------------------------------------------------ compaction
COMPACT = {"cleanup.policy": "compact", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01"}


def _produce_confluent(bootstrap: str, topic: str, items: list[tuple[bytes, bytes | None, int]], **config: Any) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, **config})
    errors: list[Any] = []
    for key, value, ts in items:
        producer.produce(topic, value, key=key, partition=0, timestamp=ts, on_delivery=lambda err, msg: errors.append(err) if err else None)
        producer.flush(10)
    assert producer.flush(10) == 0
    assert errors == []


def test_compaction_keeps_the_latest_value_per_key_with_offsets_kept(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    fast_cleaner.create_topic(topic, 1, configs=COMPACT)
    t0 = int(time.time() * 1000)
    items = [(b"k%d" % (i % 3), b"v%d" % i, t0) for i in range(9)]
    items.append((b"later", b"rolls the segment", t0 + 2000))  # 2 s later by its timestamp: a new segment
    _produce_confluent(bootstrap, topic, items)

    def compacted() -> bool:
        return [r.offset for r in fast_cleaner.records(topic)] == [6, 7, 8, 9]

    wait_for(compacted, "the cleaner")
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + 15
        while len(got) < 4 and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append((message.offset(), message.key(), message.value(), message.timestamp()[1]))
        assert got == [(6, b"k0", b"v6", t0), (7, b"k1", b"v7", t0), (8, b"k2", b"v8", t0), (9, b"later", b"rolls the segment", t0 + 2000)]
        low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, 0), timeout=5, cached=False)
        assert (low, high) == (0, 10)  # compaction never moves the log start
    finally:
        consumer.close()
    # kafka-python reads the same
    assert [(r.offset, r.key, r.value) for r in consume_all(bootstrap, topic, until=10)] == [
        (6, b"k0", b"v6"), (7, b"k1", b"v7"), (8, b"k2", b"v8"), (9, b"later", b"rolls the segment"),
    ]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_reads_a_compacted_topic(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    fast_cleaner.create_topic(topic, 1, configs=COMPACT)
    t0 = int(time.time() * 1000)
    _produce_confluent(bootstrap, topic, [(b"a", b"1", t0), (b"b", b"2", t0), (b"a", b"3", t0), (b"c", b"4", t0 + 2000)])
    wait_for(lambda: [r.offset for r in fast_cleaner.records(topic)] == [1, 2, 3], "the cleaner")
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o %k %s\n"],
        capture_output=True, text=True, check=True, timeout=20,
    )
    assert out.stdout.splitlines() == ["1 b 2", "2 a 3", "3 c 4"]


def test_tombstones_go_after_delete_retention_ms(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    fast_cleaner.create_topic(topic, 1, configs={**COMPACT, "delete.retention.ms": "100"})
    t0 = int(time.time() * 1000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    for key, value in ((b"a", b"1"), (b"b", b"2"), (b"a", None)):
        producer.send(topic, value, key=key, timestamp_ms=t0).get(timeout=5)
    stamp = [t0]

    def roll() -> None:
        # each record is 2 s after the previous one by its timestamp: a new
        # segment, new dirty bytes, and another cleaning
        stamp[0] += 2000
        producer.send(topic, b"tick", key=b"tick", timestamp_ms=stamp[0]).get(timeout=5)

    roll()
    # first cleaning: a's value goes, its tombstone stays (delete horizon set)
    wait_for(lambda: [(r.key, r.value) for r in fast_cleaner.records(topic)][:2] == [(b"b", b"2"), (b"a", None)], "the first cleaning")
    # later cleanings, past the horizon: the tombstone goes too
    wait_for(lambda: all(r.key != b"a" for r in fast_cleaner.records(topic)), "the tombstone to go", step=roll)
    producer.close()
    keys = [r.key for r in consume_all(bootstrap, topic, until=fast_cleaner.call(lambda: fast_cleaner.broker.topics.get(topic).partitions[0].high_watermark))]
    assert b"a" not in keys and keys[0] == b"b"


def test_idempotent_producer_continues_after_its_batches_are_compacted(fast_cleaner: Any, topic: str) -> None:
    bootstrap = fast_cleaner.kafka_bootstrap
    fast_cleaner.create_topic(topic, 1, configs=COMPACT)
    t0 = int(time.time() * 1000)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})
    errors: list[Any] = []

    def send(key: bytes, value: bytes, ts: int) -> None:
        producer.produce(topic, value, key=key, partition=0, timestamp=ts, on_delivery=lambda err, msg: errors.append(err) if err else None)
        producer.flush(10)

    for i in range(4):
        send(b"same", b"v%d" % i, t0)
    other = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    other.produce(topic, b"x", key=b"same", partition=0, timestamp=t0 + 2000)  # a new segment
    other.flush(10)
    other.produce(topic, b"tick", key=b"tick", partition=0, timestamp=t0 + 4000)  # and another: 4 is cleanable
    other.flush(10)
    # every record of the idempotent producer is superseded: its last batch stays, empty
    wait_for(lambda: [r.offset for r in fast_cleaner.records(topic)] == [4, 5], "the cleaner")
    counts = fast_cleaner.call(
        lambda: [(b.base_offset, int.from_bytes(bytes(b.payload[57:61]), "big")) for b in fast_cleaner.broker.topics.get(topic).partitions[0].log.batches()]
    )
    assert counts == [(3, 0), (4, 1), (5, 1)]
    send(b"same", b"after", t0 + 4000)
    assert errors == []
    assert [(r.offset, r.value) for r in consume_all(bootstrap, topic, until=7)] == [(4, b"x"), (5, b"tick"), (6, b"after")]
