"""Cross-client round trips: four independent Kafka clients are the judge.

Each of kafka-python, aiokafka, confluent-kafka (librdkafka) and kcat
produces a batch of records, uncompressed or with every codec it supports;
then every one of the four consumes them, and all four must see the same
offsets, keys, values, headers, timestamps and timestamp types, equal to
what the producer sent.  kcat cannot set per-record headers or timestamps,
so its records share one header set and carry librdkafka's CreateTime.

Also: ~900 KiB records, a LogAppendTime topic, binary keys, values and
headers with tombstones, and three clients long-polling at once while a
fourth produces.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

pytestmark = pytest.mark.timeout(60)

KCAT = shutil.which("kcat")
needs_kcat = pytest.mark.skipif(KCAT is None, reason="kcat is not installed")

CLIENTS = ["kafka-python", "aiokafka", "confluent", "kcat"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@dataclass(frozen=True)
class Record:
    """One record as a consumer saw it, normalised across clients."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int
    timestamp_type: str  # "create" or "log_append"


@dataclass(frozen=True)
class Sent:
    """One record as a producer meant it; timestamp None: the client picks."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int | None


@pytest.fixture
def bootstrap(wiregate_server: Any) -> str:
    return wiregate_server.kafka_bootstrap


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def records_for(producer: str, count: int = 6) -> list[Sent]:
    """What ``producer`` sends: text (kcat reads lines), unicode, an empty value."""
    base = 1_700_000_000_000
    sent = []
    for i in range(count):
        # long and repetitive, so every client finds compressing it worthwhile
        value = "" if i == 2 else f"value-{i}-é✓ {producer} " * 40
        if producer == "kcat":
            headers: tuple[tuple[str, bytes], ...] = (("h-common", b"same"), ("h-two", b"2"))
            sent.append(Sent(f"key-{i}".encode(), value.encode(), headers, None))
        else:
            headers = (("h-index", str(i).encode()), ("h-dup", b"a"), ("h-dup", f"b{i}".encode()))
            key = None if i == 3 else f"key-{i}".encode()
            sent.append(Sent(key, value.encode(), headers, base + i * 1000))
    return sent


# ------------------------------------------------------------------ producers
def produce_kafka_python(bootstrap: str, topic: str, sent: list[Sent], codec: str, **config: Any) -> list[int]:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec, linger_ms=20, **config
    )
    try:
        futures = [
            producer.send(topic, s.value, key=s.key, headers=list(s.headers), partition=0, timestamp_ms=s.timestamp)
            for s in sent
        ]
        producer.flush(timeout=10)
        return [f.get(timeout=10).offset for f in futures]
    finally:
        producer.close()


def produce_aiokafka(bootstrap: str, topic: str, sent: list[Sent], codec: str, **config: Any) -> list[int]:
    async def run() -> list[int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec, linger_ms=20, **config
        )
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topic, s.value, key=s.key, headers=list(s.headers), partition=0, timestamp_ms=s.timestamp
                )
                for s in sent
            ]
            return [(await f).offset for f in futures]
        finally:
            await producer.stop()

    return asyncio.run(run())


def produce_confluent(bootstrap: str, topic: str, sent: list[Sent], codec: str, **config: Any) -> list[int]:
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20, **config}
    )
    offsets: dict[int, int] = {}
    errors: list[Any] = []

    def report(index: int) -> Callable[[Any, Any], None]:
        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(err)
            else:
                offsets[index] = msg.offset()

        return delivered

    for index, s in enumerate(sent):
        producer.produce(
            topic,
            s.value,
            s.key,
            partition=0,
            headers=list(s.headers),
            timestamp=s.timestamp or 0,
            on_delivery=report(index),
        )
    assert producer.flush(10) == 0
    assert errors == []
    return [offsets[i] for i in range(len(sent))]


def produce_kcat(bootstrap: str, topic: str, sent: list[Sent], codec: str, **config: Any) -> list[int]:
    headers = sent[0].headers
    assert all(s.headers == headers and s.timestamp is None and s.key is not None for s in sent)
    args = [KCAT, "-P", "-b", bootstrap, "-t", topic, "-p", "0", "-K", "\t", "-X", f"compression.codec={codec}"]
    for name, value in headers:
        args += ["-H", f"{name}={value.decode()}"]
    for name, value in config.items():
        args += ["-X", f"{name}={value}"]
    lines = b"".join(s.key + b"\t" + s.value + b"\n" for s in sent)  # type: ignore[operator]
    subprocess.run(args, input=lines, check=True, timeout=20, capture_output=True)
    return []  # kcat reports no offsets


PRODUCERS: dict[str, Callable[..., list[int]]] = {
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
    "confluent": produce_confluent,
    "kcat": produce_kcat,
}


# ------------------------------------------------------------------ consumers
def consume_kafka_python(bootstrap: str, topic: str, count: int) -> list[Record]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[Record] = []
        deadline = time.monotonic() + 15
        while len(got) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(
                    Record(
                        r.offset,
                        r.key,
                        r.value,
                        tuple(r.headers),
                        r.timestamp,
                        "create" if r.timestamp_type == 0 else "log_append",
                    )
                    for r in batch
                )
        return got
    finally:
        consumer.close()


def consume_aiokafka(bootstrap: str, topic: str, count: int) -> list[Record]:
    async def run() -> list[Record]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
        await consumer.start()
        try:
            tp = AioTopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            got: list[Record] = []
            deadline = time.monotonic() + 15
            while len(got) < count and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    got.extend(
                        Record(
                            r.offset,
                            r.key,
                            r.value,
                            tuple(r.headers),
                            r.timestamp,
                            "create" if r.timestamp_type == 0 else "log_append",
                        )
                        for r in batch
                    )
            return got
        finally:
            await consumer.stop()

    return asyncio.run(run())


def consume_confluent(bootstrap: str, topic: str, count: int) -> list[Record]:
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "cross-client-unused",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    types = {confluent_kafka.TIMESTAMP_CREATE_TIME: "create", confluent_kafka.TIMESTAMP_LOG_APPEND_TIME: "log_append"}
    try:
        consumer.assign([confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)])
        got: list[Record] = []
        deadline = time.monotonic() + 15
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            kind, timestamp = msg.timestamp()
            got.append(
                Record(msg.offset(), msg.key(), msg.value(), tuple(msg.headers() or ()), timestamp, types[kind])
            )
        return got
    finally:
        consumer.close()


def consume_kcat(bootstrap: str, topic: str, count: int) -> list[Record]:
    args = [KCAT, "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-c", str(count), "-e", "-J"]
    out = subprocess.run(args, check=True, timeout=20, capture_output=True).stdout
    got = []
    for line in out.decode().splitlines():
        m = json.loads(line)
        flat = m.get("headers") or []
        headers = tuple((flat[i], flat[i + 1].encode()) for i in range(0, len(flat), 2))
        key = None if m["key"] is None else m["key"].encode()
        value = None if m["payload"] is None else m["payload"].encode()
        got.append(Record(m["offset"], key, value, headers, m["ts"], {"create": "create", "logappend": "log_append"}[m["tstype"]]))
    return got


CONSUMERS: dict[str, Callable[[str, str, int], list[Record]]] = {
    "kafka-python": consume_kafka_python,
    "aiokafka": consume_aiokafka,
    "confluent": consume_confluent,
    "kcat": consume_kcat,
}


def stored_codecs(server: Any, topic: str) -> set[int]:
    """The compression codecs of the batches the server stored (attributes bits 0-2)."""
    partition = server.broker.topics.get(topic).partitions[0]
    # v2 batch header: baseOffset 8, length 4, leaderEpoch 4, magic 1, crc 4, attributes 2
    return {int.from_bytes(bytes(batch.payload[21:23]), "big") & 0x7 for batch in partition.log.read(0)}


def client_param(name: str) -> Any:
    return pytest.param(name, marks=needs_kcat if name == "kcat" else ())


def check_everyone_agrees(bootstrap: str, topic: str, sent: list[Sent], offsets: list[int], started_ms: int) -> None:
    """Every consumer sees exactly what was sent, and the same as every other."""
    if offsets:
        assert offsets == list(range(len(sent)))
    seen = {name: consume(bootstrap, topic, len(sent)) for name, consume in CONSUMERS.items() if KCAT or name != "kcat"}
    finished_ms = int(time.time() * 1000) + 1
    for name, records in seen.items():
        assert [r.offset for r in records] == list(range(len(sent))), name
        assert [(r.key, r.value, r.headers) for r in records] == [(s.key, s.value, s.headers) for s in sent], name
        for r, s in zip(records, sent):
            assert r.timestamp_type == "create", name
            if s.timestamp is None:
                assert started_ms - 1 <= r.timestamp <= finished_ms, name
            else:
                assert r.timestamp == s.timestamp, name
    reference = next(iter(seen.values()))
    for name, records in seen.items():
        assert records == reference, name


def produce_params() -> list[Any]:
    params = []
    for producer in CLIENTS:
        for codec in CODECS:
            marks = []
            if producer == "kcat":
                # kcat here links librdkafka 2.0.2, which compresses only when
                # the broker advertises Produce v0 (KAFKA-18659): it does
                marks.append(needs_kcat)
            params.append(pytest.param(producer, codec, marks=marks, id=f"{producer}-{codec}"))
    return params


@pytest.mark.parametrize(("producer", "codec"), produce_params())
def test_produce_with_one_consume_with_all(
    wiregate_server: Any, bootstrap: str, unique: str, producer: str, codec: str
) -> None:
    create_topic(bootstrap, unique)
    sent = records_for(producer)
    started_ms = int(time.time() * 1000)
    offsets = PRODUCERS[producer](bootstrap, unique, sent, codec)
    assert stored_codecs(wiregate_server, unique) == {CODEC_IDS[codec]}
    check_everyone_agrees(bootstrap, unique, sent, offsets, started_ms)


@pytest.mark.parametrize("producer", [client_param(c) for c in CLIENTS])
def test_large_message_every_consumer(bootstrap: str, unique: str, producer: str) -> None:
    """A ~900 KiB value (under every client's 1 MB default request limit)."""
    create_topic(bootstrap, unique)
    big = ("0123456789abcdef" * 57_600).encode()  # 921,600 bytes
    headers = (("h", b"big"),)
    if producer == "kcat":
        sent = [Sent(b"big", big, headers, None), Sent(b"small", b"after", headers, None)]
    else:
        sent = [Sent(b"big", big, headers, 1_700_000_000_000), Sent(b"small", b"after", headers, 1_700_000_000_001)]
    started_ms = int(time.time() * 1000)
    offsets = PRODUCERS[producer](bootstrap, unique, sent, "none")
    check_everyone_agrees(bootstrap, unique, sent, offsets, started_ms)


def test_log_append_time_seen_alike_by_every_consumer(wiregate_server: Any, bootstrap: str, unique: str) -> None:
    """A LogAppendTime topic: the broker's clock replaces the producer's, for every reader."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(unique, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})])
    finally:
        admin.close()
    sent = [Sent(b"k%d" % i, b"v%d" % i, (("h", b"x"),), 1_000 + i) for i in range(4)]
    before = int(time.time() * 1000)
    produce_kafka_python(bootstrap, unique, sent[:2], "none")
    produce_confluent(bootstrap, unique, sent[2:], "zstd")
    after = int(time.time() * 1000) + 1
    seen = {name: consume(bootstrap, unique, len(sent)) for name, consume in CONSUMERS.items() if KCAT or name != "kcat"}
    reference = seen["kafka-python"]
    assert [(r.offset, r.key, r.value, r.headers) for r in reference] == [
        (i, s.key, s.value, s.headers) for i, s in enumerate(sent)
    ]
    for name, records in seen.items():
        assert records == reference, name
        for r in records:
            assert r.timestamp_type == "log_append", name
            assert before - 1 <= r.timestamp <= after, name


@pytest.mark.parametrize("producer", ["kafka-python", "aiokafka", "confluent"])
def test_binary_null_and_empty_fields(bootstrap: str, unique: str, producer: str) -> None:
    """Tombstones, empty keys, every byte value, and empty header values (kcat's JSON cannot carry bytes)."""
    create_topic(bootstrap, unique)
    every_byte = bytes(range(256))
    sent = [
        Sent(b"tombstone", None, (), 1_700_000_000_000),  # type: ignore[arg-type]
        Sent(b"", every_byte, (("empty", b""), ("bin", every_byte)), 1_700_000_000_001),
        Sent(every_byte, b"", (("\u00e9\u2713", b"\x00"),), 1_700_000_000_002),
        Sent(None, b"no key", (), 1_700_000_000_003),
    ]
    offsets = PRODUCERS[producer](bootstrap, unique, sent, "lz4")
    assert offsets == [0, 1, 2, 3]
    seen = {name: CONSUMERS[name](bootstrap, unique, len(sent)) for name in ["kafka-python", "aiokafka", "confluent"]}
    for name, records in seen.items():
        assert [(r.key, r.value, r.headers, r.timestamp) for r in records] == [
            (s.key, s.value, s.headers, s.timestamp) for s in sent
        ], name


def test_parked_fetches_of_every_client_wake_while_another_produces(bootstrap: str, unique: str) -> None:
    """Three consumers long-poll four partitions at once while confluent-kafka produces:
    every one of them gets every record, in order per partition."""
    create_topic(bootstrap, unique, 4)
    total = 2000
    seen: dict[str, dict[int, list[int]]] = {"kafka-python": {}, "confluent": {}, "aiokafka": {}}
    ready = threading.Barrier(4, timeout=15)
    done = threading.Event()

    def finished(name: str) -> bool:
        return sum(len(v) for v in seen[name].values()) >= total

    def kafka_python() -> None:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=5000, enable_auto_commit=False)
        consumer.assign([TopicPartition(unique, p) for p in range(4)])
        consumer.seek_to_beginning()
        consumer.poll(timeout_ms=100)
        ready.wait()
        while not finished("kafka-python") and not done.is_set():
            for tp, batch in consumer.poll(timeout_ms=200).items():
                seen["kafka-python"].setdefault(tp.partition, []).extend(int(r.value) for r in batch)
        consumer.close()

    def confluent() -> None:
        consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": bootstrap, "group.id": unique, "enable.auto.commit": False, "fetch.wait.max.ms": 5000}
        )
        consumer.assign([confluent_kafka.TopicPartition(unique, p, confluent_kafka.OFFSET_BEGINNING) for p in range(4)])
        consumer.poll(0.1)
        ready.wait()
        while not finished("confluent") and not done.is_set():
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen["confluent"].setdefault(msg.partition(), []).append(int(msg.value()))
        consumer.close()

    def aiokafka() -> None:
        async def run() -> None:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=5000, enable_auto_commit=False)
            await consumer.start()
            consumer.assign([AioTopicPartition(unique, p) for p in range(4)])
            await consumer.seek_to_beginning()
            await consumer.getmany(timeout_ms=100)
            await asyncio.get_running_loop().run_in_executor(None, ready.wait)
            while not finished("aiokafka") and not done.is_set():
                for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                    seen["aiokafka"].setdefault(tp.partition, []).extend(int(r.value) for r in batch)
            await consumer.stop()

        asyncio.run(run())

    threads = [threading.Thread(target=t, daemon=True) for t in (kafka_python, confluent, aiokafka)]
    for t in threads:
        t.start()
    ready.wait()
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
    for i in range(total):
        producer.produce(unique, b"%d" % i, partition=i % 4)
        if i % 100 == 0:
            producer.poll(0)
            time.sleep(0.01)  # spread the writes so fetches park and wake many times
    assert producer.flush(10) == 0
    deadline = time.monotonic() + 15
    while not all(finished(name) for name in seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    for t in threads:
        t.join(10)
    expected = {p: list(range(p, total, 4)) for p in range(4)}
    for name, partitions in seen.items():
        assert partitions == expected, name
