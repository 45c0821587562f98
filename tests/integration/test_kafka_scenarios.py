"""Kafka scenarios through real clients: kafka-python, aiokafka, confluent-kafka, kcat.

Admin operations through each client's admin API, keyed partitioning, acks
0/1/all, idempotent producers, two-member consumer groups that split a topic
and rebalance when one member leaves, committed offsets written by one client
and resumed from by another, seeking by offset and by time, and group listings.

The server runs with the broker settings kafka-python's own integration
fixture gives a real Kafka: ``group.initial.rebalance.delay.ms`` = 0, so a
new group forms at once instead of after Kafka's default 3 s, and
``group.min.session.timeout.ms`` = 1000, so a crashed member can be evicted
in about a second.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import confluent_kafka
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin import NewPartitions as AioNewPartitions
from aiokafka.admin import NewTopic as AioNewTopic
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpConfigResourceType
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.admin import NewTopic as KpNewTopic
from kafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from wiregate.core import Broker
from wiregate.testing import Server

pytestmark = pytest.mark.timeout(60)

KCAT = shutil.which("kcat")
GROUP_CLIENTS = ["kafka-python", "confluent", "aiokafka"]
FAST_KP = dict(heartbeat_interval_ms=100, session_timeout_ms=6000, request_timeout_ms=10000)
FAST_CK = {"heartbeat.interval.ms": 100, "session.timeout.ms": 6000}
FAST_AIO = dict(heartbeat_interval_ms=100, session_timeout_ms=6000)
# kafka-python 3.0.12 sometimes drops a join the coordinator completed when
# poll()'s timeout expires between JoinGroup and SyncGroup: it never applies
# the SyncGroup assignment, stops heartbeating, and is evicted after the
# session timeout.  Group loops poll long enough for a rebalance to finish.
KP_POLL_MS = 500


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    broker = Broker()
    broker.kafka_configs["group.initial.rebalance.delay.ms"] = "0"
    broker.kafka_configs["group.min.session.timeout.ms"] = "1000"
    with Server(broker=broker) as srv:
        yield srv


@pytest.fixture
def bootstrap(server: Server) -> str:
    return server.kafka_bootstrap


@pytest.fixture
def name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([KpNewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def produce_values(bootstrap: str, topic: str, count: int, partitions: int = 1, **kwargs: Any) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for i in range(count):
            producer.send(topic, f"m{i}".encode(), partition=i % partitions, **kwargs)
        producer.flush(timeout=10)
    finally:
        producer.close()


def wait_until(condition: Callable[[], bool], step: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        step()


def confluent_wait(futures: dict[Any, Any]) -> dict[Any, Any]:
    return {key: future.result(timeout=15) for key, future in futures.items()}


# ------------------------------------------------------------------ admin
def test_admin_kafka_python(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([KpNewTopic(name, 3, 1, topic_configs={"retention.ms": "123456"})])
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([KpNewTopic(name, 3, 1)])
        assert name in admin.list_topics()
        [described] = admin.describe_topics([name])
        assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]
        admin.create_partitions({name: KpNewPartitions(5)})
        [described] = admin.describe_topics([name])
        assert len(described["partitions"]) == 5
        resource = KpConfigResource(KpConfigResourceType.TOPIC, name)
        configs = admin.describe_configs([resource], config_filter="all")["topic"][name]
        assert configs["retention.ms"]["value"] == "123456"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert configs["cleanup.policy"]["value"] == "delete"
        admin.alter_configs([KpConfigResource(KpConfigResourceType.TOPIC, name, configs={"retention.ms": "654321"})])
        configs = admin.describe_configs([resource], config_filter="all")["topic"][name]
        assert configs["retention.ms"]["value"] == "654321"
        admin.delete_topics([name])
        assert name not in admin.list_topics()
    finally:
        admin.close()


def test_admin_confluent(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    confluent_wait(admin.create_topics([NewTopic(name, 3, 1, config={"retention.ms": "123456"})]))
    with pytest.raises(confluent_kafka.KafkaException) as refused:
        confluent_wait(admin.create_topics([NewTopic(name, 3, 1)]))
    assert refused.value.args[0].code() == confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS
    metadata = admin.list_topics(timeout=10)
    assert sorted(metadata.topics[name].partitions) == [0, 1, 2]
    confluent_wait(admin.create_partitions([NewPartitions(name, 5)]))
    assert sorted(admin.list_topics(name, timeout=10).topics[name].partitions) == [0, 1, 2, 3, 4]
    resource = ConfigResource("TOPIC", name)
    [configs] = confluent_wait(admin.describe_configs([resource])).values()
    assert configs["retention.ms"].value == "123456"
    assert configs["retention.ms"].source == confluent_kafka.admin.ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"
    confluent_wait(admin.alter_configs([ConfigResource("TOPIC", name, set_config={"retention.ms": "654321"})]))
    [configs] = confluent_wait(admin.describe_configs([resource])).values()
    assert configs["retention.ms"].value == "654321"
    confluent_wait(admin.delete_topics([name]))
    assert name not in admin.list_topics(timeout=10).topics


def test_admin_aiokafka(bootstrap: str, name: str) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            response = await admin.create_topics([AioNewTopic(name, 3, 1, topic_configs={"retention.ms": "123456"})])
            assert [t[1] for t in response.topic_errors] == [0]
            response = await admin.create_topics([AioNewTopic(name, 3, 1)])
            assert [t[1] for t in response.topic_errors] == [36]  # TOPIC_ALREADY_EXISTS
            assert name in await admin.list_topics()
            [described] = await admin.describe_topics([name])
            assert len(described["partitions"]) == 3
            response = await admin.create_partitions({name: AioNewPartitions(5)})
            assert [t[1] for t in response.topic_errors] == [0]
            [described] = await admin.describe_topics([name])
            assert len(described["partitions"]) == 5
            response = await admin.delete_topics([name])
            assert [t[1] for t in response.topic_error_codes] == [0]
            assert name not in await admin.list_topics()
        finally:
            await admin.close()

    asyncio.run(run())


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed")
def test_kcat_metadata(bootstrap: str, name: str) -> None:
    create_topic(bootstrap, name, 3)
    out = subprocess.run([KCAT, "-L", "-J", "-b", bootstrap, "-t", name], check=True, capture_output=True, timeout=20)
    metadata = json.loads(out.stdout)
    [broker] = metadata["brokers"]
    [topic] = metadata["topics"]
    assert topic["topic"] == name
    assert [p["partition"] for p in topic["partitions"]] == [0, 1, 2]
    assert {p["leader"] for p in topic["partitions"]} == {broker["id"]}


# ------------------------------------------------------------------ keyed partitioning
KEYS = [f"key-{i}".encode() for i in range(24)]


def partitions_kafka_python(bootstrap: str, topic: str) -> dict[bytes, int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        futures = {key: producer.send(topic, b"v", key=key) for key in KEYS}
        return {key: f.get(timeout=10).partition for key, f in futures.items()}
    finally:
        producer.close()


def partitions_aiokafka(bootstrap: str, topic: str) -> dict[bytes, int]:
    async def run() -> dict[bytes, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            return {key: (await producer.send_and_wait(topic, b"v", key=key)).partition for key in KEYS}
        finally:
            await producer.stop()

    return asyncio.run(run())


def partitions_confluent(bootstrap: str, topic: str, partitioner: str | None = None) -> dict[bytes, int]:
    config = {"bootstrap.servers": bootstrap}
    if partitioner:
        config["partitioner"] = partitioner
    producer = confluent_kafka.Producer(config)
    chosen: dict[bytes, int] = {}

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        chosen[msg.key()] = msg.partition()

    for key in KEYS:
        producer.produce(topic, b"v", key, on_delivery=delivered)
    assert producer.flush(10) == 0
    return chosen


def partitions_kcat(bootstrap: str, topic: str) -> dict[bytes, int]:
    lines = b"".join(key + b"\tv\n" for key in KEYS)
    subprocess.run([KCAT, "-P", "-b", bootstrap, "-t", topic, "-K", "\t"], input=lines, check=True, timeout=20)
    out = subprocess.run(
        [KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J"], check=True, capture_output=True, timeout=20
    )
    return {json.loads(line)["key"].encode(): json.loads(line)["partition"] for line in out.stdout.splitlines()}


def test_keyed_partitioning_is_consistent_per_client(bootstrap: str, name: str) -> None:
    """Same key, same partition, run after run; Java-murmur2 clients agree with each other."""
    chosen: dict[str, list[dict[bytes, int]]] = {}
    runs: list[tuple[str, Callable[[str, str], dict[bytes, int]]]] = [
        ("kafka-python", partitions_kafka_python),
        ("aiokafka", partitions_aiokafka),
        ("confluent consistent_random", partitions_confluent),
        ("confluent murmur2_random", lambda b, t: partitions_confluent(b, t, "murmur2_random")),
    ]
    if KCAT:
        runs.append(("kcat", partitions_kcat))
    for label, run in runs:
        for attempt in range(2):
            topic = f"{name}-{len(chosen)}-{attempt}"
            create_topic(bootstrap, topic, 6)
            chosen.setdefault(label, []).append(run(bootstrap, topic))
    for label, (first, second) in chosen.items():
        assert first == second, label
        assert set(first) == set(KEYS), label
        assert len(set(first.values())) > 1, label  # the keys really spread
    murmur2 = chosen["kafka-python"][0]
    assert chosen["aiokafka"][0] == murmur2
    assert chosen["confluent murmur2_random"][0] == murmur2
    if KCAT:
        assert chosen["kcat"][0] == chosen["confluent consistent_random"][0]


def test_keyed_records_stay_together_when_consumed(bootstrap: str, name: str) -> None:
    create_topic(bootstrap, name, 4)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for round_ in range(5):
        for key in KEYS[:8]:
            producer.send(name, b"%d" % round_, key=key)
    producer.flush(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    consumer.assign([TopicPartition(name, p) for p in range(4)])
    consumer.seek_to_beginning()
    records: list[Any] = []
    wait_until(lambda: len(records) >= 40, lambda: [records.extend(b) for b in consumer.poll(timeout_ms=100).values()])
    consumer.close()
    seen: dict[bytes, set[int]] = {}
    order: dict[bytes, list[bytes]] = {}
    for record in records:
        seen.setdefault(record.key, set()).add(record.partition)
        order.setdefault(record.key, []).append(record.value)
    assert all(len(parts) == 1 for parts in seen.values())
    assert all(values == [b"0", b"1", b"2", b"3", b"4"] for values in order.values())
    assert set(seen) == set(KEYS[:8])


# ------------------------------------------------------------------ acks
def read_values(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        wait_until(
            lambda: len(values) >= count,
            lambda: [values.extend(r.value for r in b) for b in consumer.poll(timeout_ms=100).values()],
            timeout=10,
        )
        return values
    finally:
        consumer.close()


@pytest.mark.parametrize("acks", ["0", "1", "all"])
@pytest.mark.parametrize("client", ["kafka-python", "confluent", "aiokafka"])
def test_acks(bootstrap: str, name: str, client: str, acks: str) -> None:
    create_topic(bootstrap, name)
    values = [b"a%d" % i for i in range(20)]
    if client == "kafka-python":
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks=acks if acks == "all" else int(acks), enable_idempotence=False
        )
        metadata = [producer.send(name, v, partition=0) for v in values]
        producer.flush(timeout=10)
        offsets = [m.get(timeout=10).offset for m in metadata]
        producer.close()
    elif client == "confluent":
        producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": acks, "enable.idempotence": False})
        reports: list[int] = []
        for v in values:
            producer.produce(name, v, partition=0, on_delivery=lambda err, msg: reports.append(msg.offset()))
        assert producer.flush(10) == 0
        offsets = reports
    else:

        async def run() -> list[int]:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=acks if acks == "all" else int(acks))
            await producer.start()
            try:
                sent = [await producer.send_and_wait(name, v, partition=0) for v in values]
                return [-1 if m is None else m.offset for m in sent]  # acks=0: no metadata
            finally:
                await producer.stop()

        offsets = asyncio.run(run())
    if acks != "0":  # with acks=0 the broker answers nothing, so no offsets come back
        assert offsets == list(range(20))
    assert read_values(bootstrap, name, 20) == values


# ------------------------------------------------------------------ idempotence
@pytest.mark.parametrize("client", ["kafka-python", "confluent", "aiokafka"])
def test_idempotent_producer(server: Server, bootstrap: str, name: str, client: str) -> None:
    create_topic(bootstrap, name)
    values = [b"i%d" % i for i in range(300)]
    if client == "kafka-python":
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, batch_size=1024)  # idempotent by default
        for v in values:
            producer.send(name, v, partition=0)
        producer.flush(timeout=10)
        producer_id = producer._transaction_manager.producer_id_and_epoch.producer_id
        producer.close()
    elif client == "confluent":
        producer = confluent_kafka.Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2, "batch.size": 1024}
        )
        for v in values:
            producer.produce(name, v, partition=0)
        assert producer.flush(10) == 0
        producer_id = None
    else:

        async def run() -> int:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=2, max_batch_size=1024
            )
            await producer.start()
            try:
                futures = [await producer.send(name, v, partition=0) for v in values]
                await asyncio.gather(*futures)
                return producer._txn_manager.producer_id
            finally:
                await producer.stop()

        producer_id = asyncio.run(run())
    partition = server.broker.topics.get(name).partitions[0]
    [(state_key, entry)] = partition.producers.items()
    if producer_id is not None:
        assert producer_id >= 0
        assert producer_id in (state_key, getattr(entry, "producer_id", state_key))
    assert entry.last_seq == len(values) - 1  # sequences 0..299, several batches, none lost or doubled
    assert read_values(bootstrap, name, len(values)) == values


# ------------------------------------------------------------------ groups: split and rebalance
def kp_group_consumer(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **FAST_KP,
    )


def split_then_leave_kafka_python(bootstrap: str, topic: str, group: str) -> None:
    consumers = [kp_group_consumer(bootstrap, group, topic) for _ in range(2)]
    stop = threading.Event()

    def poll_loop(consumer: KafkaConsumer) -> None:
        while not stop.is_set():
            consumer.poll(timeout_ms=KP_POLL_MS)

    threads = [threading.Thread(target=poll_loop, args=(c,), daemon=True) for c in consumers]
    for t in threads:
        t.start()
    try:

        def split() -> bool:
            a, b = (set(c.assignment()) for c in consumers)
            return len(a) == 2 and len(b) == 2 and not (a & b)

        wait_until(split, lambda: time.sleep(0.05))
        stop.set()
        threads[1].join(5)
        consumers[1].close()
        stop.clear()
        survivor = threading.Thread(target=poll_loop, args=(consumers[0],), daemon=True)
        survivor.start()
        wait_until(lambda: len(consumers[0].assignment()) == 4, lambda: time.sleep(0.05))
        stop.set()
        survivor.join(5)
        threads[0].join(5)
    finally:
        stop.set()
        consumers[0].close()


def split_then_leave_confluent(bootstrap: str, topic: str, group: str) -> None:
    def make() -> Any:
        consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **FAST_CK,
            }
        )
        consumer.subscribe([topic])
        return consumer

    a, b = make(), make()
    try:

        def split() -> bool:
            pa = {p.partition for p in a.assignment()}
            pb = {p.partition for p in b.assignment()}
            return len(pa) == 2 and len(pb) == 2 and not (pa & pb)

        wait_until(split, lambda: (a.poll(0.05), b.poll(0.05)))
        b.close()
        wait_until(lambda: len(a.assignment()) == 4, lambda: a.poll(0.05))
    finally:
        a.close()


def split_then_leave_aiokafka(bootstrap: str, topic: str, group: str) -> None:
    async def run() -> None:
        def make() -> AIOKafkaConsumer:
            return AIOKafkaConsumer(
                topic,
                bootstrap_servers=bootstrap,
                group_id=group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                **FAST_AIO,
            )

        a, b = make(), make()
        await a.start()
        await b.start()
        try:

            async def until(condition: Callable[[], bool], *members: AIOKafkaConsumer) -> None:
                deadline = time.monotonic() + 20
                while not condition():
                    assert time.monotonic() < deadline, "condition not reached in time"
                    await asyncio.gather(*(m.getmany(timeout_ms=50) for m in members))

            def split() -> bool:
                pa, pb = a.assignment(), b.assignment()
                return len(pa) == 2 and len(pb) == 2 and not (pa & pb)

            await until(split, a, b)
            await b.stop()
            await until(lambda: len(a.assignment()) == 4, a)
        finally:
            await a.stop()

    asyncio.run(run())


@pytest.mark.parametrize("client", GROUP_CLIENTS)
def test_two_members_split_partitions_and_rebalance_on_leave(bootstrap: str, name: str, client: str) -> None:
    create_topic(bootstrap, name, 4)
    {
        "kafka-python": split_then_leave_kafka_python,
        "confluent": split_then_leave_confluent,
        "aiokafka": split_then_leave_aiokafka,
    }[client](bootstrap, name, name + "-g")


# ------------------------------------------------------------------ commit and resume, across clients
def commit_after_five(client: str, bootstrap: str, topic: str, group: str) -> None:
    """Join ``group``, consume the first five records of partition 0 and commit offset 5."""
    if client == "kafka-python":
        consumer = kp_group_consumer(bootstrap, group, topic)
        got: list[Any] = []
        wait_until(
            lambda: len(got) >= 5,
            lambda: [got.extend(b) for b in consumer.poll(timeout_ms=KP_POLL_MS, max_records=5 - len(got)).values()],
        )
        consumer.commit()
        consumer.close()
        assert [r.offset for r in got] == [0, 1, 2, 3, 4]
    elif client == "confluent":
        consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_CK}
        )
        consumer.subscribe([topic])
        got = []
        wait_until(lambda: len(got) >= 5, lambda: got.extend(m for m in [consumer.poll(0.1)] if m is not None and not m.error()))
        consumer.commit(message=got[4], asynchronous=False)
        consumer.close()
        assert [m.offset() for m in got[:5]] == [0, 1, 2, 3, 4]
    else:

        async def run() -> None:
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **FAST_AIO
            )
            await consumer.start()
            try:
                got: list[Any] = []
                while len(got) < 5:
                    for batch in (await consumer.getmany(timeout_ms=100, max_records=5 - len(got))).values():
                        got.extend(batch)
                assert [r.offset for r in got] == [0, 1, 2, 3, 4]
                await consumer.commit({AioTopicPartition(topic, 0): 5})
            finally:
                await consumer.stop()

        asyncio.run(run())


def resume(client: str, bootstrap: str, topic: str, group: str) -> tuple[int | None, list[int]]:
    """Join ``group`` again: the committed offset it reads, and the offsets it then consumes."""
    if client == "kafka-python":
        consumer = kp_group_consumer(bootstrap, group, topic)
        tp = TopicPartition(topic, 0)
        committed = consumer.committed(tp)
        got: list[Any] = []
        wait_until(lambda: len(got) >= 5, lambda: [got.extend(b) for b in consumer.poll(timeout_ms=KP_POLL_MS).values()])
        consumer.close()
        return committed, [r.offset for r in got]
    if client == "confluent":
        consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_CK}
        )
        [committed] = consumer.committed([confluent_kafka.TopicPartition(topic, 0)], timeout=10)
        consumer.subscribe([topic])
        got = []
        wait_until(lambda: len(got) >= 5, lambda: got.extend(m for m in [consumer.poll(0.1)] if m is not None and not m.error()))
        consumer.close()
        return committed.offset, [m.offset() for m in got]

    async def run() -> tuple[int | None, list[int]]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **FAST_AIO
        )
        await consumer.start()
        try:
            got: list[Any] = []
            while len(got) < 5:
                for batch in (await consumer.getmany(timeout_ms=100)).values():
                    got.extend(batch)
            return await consumer.committed(AioTopicPartition(topic, 0)), [r.offset for r in got]
        finally:
            await consumer.stop()

    return asyncio.run(run())


@pytest.mark.parametrize("resumer", GROUP_CLIENTS)
@pytest.mark.parametrize("committer", GROUP_CLIENTS)
def test_commit_then_resume_from_committed_offset(bootstrap: str, name: str, committer: str, resumer: str) -> None:
    create_topic(bootstrap, name)
    produce_values(bootstrap, name, 10)
    group = name + "-g"
    commit_after_five(committer, bootstrap, name, group)
    committed, offsets = resume(resumer, bootstrap, name, group)
    assert committed == 5
    assert offsets == [5, 6, 7, 8, 9]


# ------------------------------------------------------------------ seek and offsets_for_times
BASE_TS = 1_600_000_000_000


def poll_one_confluent(consumer: Any) -> Any:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = consumer.poll(0.1)
        if msg is not None:
            assert msg.error() is None, msg.error()
            return msg
    raise AssertionError("no record within 10 s")


@pytest.mark.parametrize("client", GROUP_CLIENTS)
def test_seek_and_offsets_for_times(bootstrap: str, name: str, client: str) -> None:
    create_topic(bootstrap, name)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for i in range(10):
        producer.send(name, b"%d" % i, partition=0, timestamp_ms=BASE_TS + i * 1000)
    producer.flush(timeout=10)
    producer.close()
    if client == "kafka-python":
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
        tp = TopicPartition(name, 0)
        consumer.assign([tp])
        found = consumer.offsets_for_times({tp: BASE_TS + 3500})[tp]
        assert (found.offset, found.timestamp) == (4, BASE_TS + 4000)
        assert consumer.offsets_for_times({tp: BASE_TS + 99_000})[tp] is None
        consumer.seek(tp, found.offset)
        first: list[Any] = []
        wait_until(lambda: bool(first), lambda: [first.extend(b) for b in consumer.poll(timeout_ms=100).values()])
        assert (first[0].offset, first[0].value) == (4, b"4")
        consumer.seek_to_end(tp)
        assert consumer.position(tp) == 10
        consumer.seek(tp, 2)
        again: list[Any] = []
        wait_until(lambda: bool(again), lambda: [again.extend(b) for b in consumer.poll(timeout_ms=100).values()])
        assert again[0].offset == 2
        consumer.close()
    elif client == "confluent":
        consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": name, "enable.auto.commit": False})
        [found] = consumer.offsets_for_times([confluent_kafka.TopicPartition(name, 0, BASE_TS + 3500)], timeout=10)
        assert found.offset == 4
        [past] = consumer.offsets_for_times([confluent_kafka.TopicPartition(name, 0, BASE_TS + 99_000)], timeout=10)
        assert past.offset == confluent_kafka.OFFSET_END
        assert consumer.get_watermark_offsets(confluent_kafka.TopicPartition(name, 0), timeout=10) == (0, 10)
        consumer.assign([found])
        first = poll_one_confluent(consumer)
        assert (first.offset(), first.value(), first.timestamp()[1]) == (4, b"4", BASE_TS + 4000)
        consumer.seek(confluent_kafka.TopicPartition(name, 0, 2))
        assert poll_one_confluent(consumer).offset() == 2
        consumer.close()
    else:

        async def run() -> None:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
            await consumer.start()
            try:
                tp = AioTopicPartition(name, 0)
                consumer.assign([tp])
                found = (await consumer.offsets_for_times({tp: BASE_TS + 3500}))[tp]
                assert (found.offset, found.timestamp) == (4, BASE_TS + 4000)
                assert (await consumer.offsets_for_times({tp: BASE_TS + 99_000}))[tp] is None
                assert await consumer.end_offsets([tp]) == {tp: 10}
                consumer.seek(tp, found.offset)
                record = await consumer.getone()
                assert (record.offset, record.value) == (4, b"4")
                await consumer.seek_to_end(tp)
                assert await consumer.position(tp) == 10
                consumer.seek(tp, 2)
                assert (await consumer.getone()).offset == 2
            finally:
                await consumer.stop()

        asyncio.run(run())


# ------------------------------------------------------------------ list and describe groups
def test_list_and_describe_groups_with_every_admin(bootstrap: str, name: str) -> None:
    create_topic(bootstrap, name, 2)
    group = name + "-g"
    consumer = kp_group_consumer(bootstrap, group, name)
    try:
        wait_until(lambda: len(consumer.assignment()) == 2, lambda: consumer.poll(timeout_ms=KP_POLL_MS))
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            listed = {g["group_id"]: g for g in admin.list_groups()}
            assert (listed[group]["protocol_type"], listed[group]["group_state"]) == ("consumer", "Stable")
            described = admin.describe_groups([group])[group]
            assert (described["group_state"], described["protocol_type"], described["error"]) == ("Stable", "consumer", None)
            [member] = described["members"]
            assert member["member_metadata"]["topics"] == [name]
            assert member["member_assignment"]["assigned_partitions"] == [{"topic": name, "partitions": [0, 1]}]
        finally:
            admin.close()

        ck = AdminClient({"bootstrap.servers": bootstrap})
        listing = ck.list_consumer_groups().result(timeout=15)
        [found] = [g for g in listing.valid if g.group_id == group]
        assert found.state == confluent_kafka.ConsumerGroupState.STABLE
        assert not found.is_simple_consumer_group
        [description] = confluent_wait(ck.describe_consumer_groups([group])).values()
        assert description.state == confluent_kafka.ConsumerGroupState.STABLE
        [member] = description.members
        assert {(tp.topic, tp.partition) for tp in member.assignment.topic_partitions} == {(name, 0), (name, 1)}

        async def aio() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            try:
                groups = await admin.list_consumer_groups()
                assert (group, "consumer") in [(g[0], g[1]) for g in groups]
                [response] = await admin.describe_consumer_groups([group])
                [entry] = response.groups
                assert entry[1] == group and entry[2] == "Stable"
            finally:
                await admin.close()

        asyncio.run(aio())
    finally:
        consumer.close()


# ------------------------------------------------------------------ one group, three libraries
def test_one_group_shared_by_three_client_libraries(bootstrap: str, name: str) -> None:
    """kafka-python, confluent-kafka and aiokafka members agree on a protocol both ways round.

    kafka-python offers range/roundrobin, librdkafka range/roundrobin, aiokafka
    roundrobin only: the coordinator must pick the one every member supports
    (Kafka's GroupMetadata.selectProtocol) and the leader, whoever it is, must
    hand each member a disjoint share.
    """
    create_topic(bootstrap, name, 6)
    produce_values(bootstrap, name, 60, partitions=6)
    group = name + "-g"
    stop = threading.Event()
    assignments: dict[str, set[int]] = {}
    errors: list[BaseException] = []
    counts: dict[str, int] = {"kafka-python": 0, "confluent": 0, "aiokafka": 0}

    def kafka_python() -> None:
        consumer = kp_group_consumer(bootstrap, group, name)
        try:
            while not stop.is_set():
                for batch in consumer.poll(timeout_ms=KP_POLL_MS).values():
                    counts["kafka-python"] += len(batch)
                assignments["kafka-python"] = {tp.partition for tp in consumer.assignment()}
        finally:
            consumer.close()

    def confluent() -> None:
        consumer = confluent_kafka.Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_CK}
        )
        consumer.subscribe([name])
        try:
            while not stop.is_set():
                msg = consumer.poll(0.05)
                if msg is not None and not msg.error():
                    counts["confluent"] += 1
                assignments["confluent"] = {tp.partition for tp in consumer.assignment()}
        finally:
            consumer.close()

    def aiokafka() -> None:
        async def run() -> None:
            consumer = AIOKafkaConsumer(
                name, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, **FAST_AIO
            )
            await consumer.start()
            try:
                while not stop.is_set():
                    for batch in (await consumer.getmany(timeout_ms=50)).values():
                        counts["aiokafka"] += len(batch)
                    assignments["aiokafka"] = {tp.partition for tp in consumer.assignment()}
            finally:
                await consumer.stop()

        asyncio.run(run())

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t), daemon=True) for t in (kafka_python, confluent, aiokafka)]
    for t in threads:
        t.start()
    try:

        def split() -> bool:
            shares = [assignments.get(c, set()) for c in counts]
            return all(len(s) == 2 for s in shares) and set().union(*shares) == set(range(6))

        wait_until(lambda: split() or bool(errors), lambda: time.sleep(0.05))
        assert not errors, errors
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors


# ------------------------------------------------------------------ cooperative rebalancing
def test_confluent_cooperative_sticky_split_and_leave(bootstrap: str, name: str) -> None:
    """Incremental (KIP-429) rebalances ride on the classic protocol: JoinGroup/SyncGroup twice."""
    create_topic(bootstrap, name, 4)
    group = name + "-g"

    def make() -> Any:
        consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "partition.assignment.strategy": "cooperative-sticky",
                "auto.offset.reset": "earliest",
                **FAST_CK,
            }
        )
        consumer.subscribe([name])
        return consumer

    a = make()
    try:
        wait_until(lambda: len(a.assignment()) == 4, lambda: a.poll(0.05))
        b = make()
        pa: set[int] = set()
        pb: set[int] = set()

        def split() -> bool:
            pa.clear()
            pa.update(p.partition for p in a.assignment())
            pb.clear()
            pb.update(p.partition for p in b.assignment())
            return len(pa) == 2 and len(pb) == 2 and not (pa & pb)

        wait_until(split, lambda: (a.poll(0.05), b.poll(0.05)))
        b.close()
        wait_until(lambda: len(a.assignment()) == 4, lambda: a.poll(0.05))
    finally:
        a.close()


# ------------------------------------------------------------------ committed offsets and their metadata, across clients
def test_commit_metadata_is_read_back_by_other_clients(bootstrap: str, name: str) -> None:
    from kafka.structs import OffsetAndMetadata

    create_topic(bootstrap, name, 2)
    produce_values(bootstrap, name, 10, partitions=2)
    group = name + "-g"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.assign([TopicPartition(name, 0), TopicPartition(name, 1)])
    consumer.commit(
        {
            TopicPartition(name, 0): OffsetAndMetadata(3, "checkpoint-é", -1),
            TopicPartition(name, 1): OffsetAndMetadata(4, "", -1),
        }
    )
    consumer.close()

    ck = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed = ck.committed([confluent_kafka.TopicPartition(name, 0), confluent_kafka.TopicPartition(name, 1)], timeout=10)
    ck.close()
    assert [(tp.offset, tp.metadata) for tp in committed] == [(3, "checkpoint-é"), (4, None)]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    from confluent_kafka import ConsumerGroupTopicPartitions

    [listed] = confluent_wait(admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])).values()
    assert sorted((tp.partition, tp.offset) for tp in listed.topic_partitions) == [(0, 3), (1, 4)]
    altered = ConsumerGroupTopicPartitions(group, [confluent_kafka.TopicPartition(name, 0, 7)])
    confluent_wait(admin.alter_consumer_group_offsets([altered]))

    async def aio() -> dict[Any, Any]:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await client.start()
        try:
            return await client.list_consumer_group_offsets(group)
        finally:
            await client.close()

    offsets = asyncio.run(aio())
    assert {tp.partition: (o.offset, o.metadata) for tp, o in offsets.items()} == {0: (7, ""), 1: (4, "")}

    confluent_wait(admin.delete_consumer_groups([group]))
    kp_admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert group not in {g["group_id"] for g in kp_admin.list_groups()}
    finally:
        kp_admin.close()


# ------------------------------------------------------------------ ListOffsets specs and DeleteRecords through every client
def test_list_offsets_specs_and_delete_records_everywhere(bootstrap: str, name: str) -> None:
    from confluent_kafka.admin import OffsetSpec

    create_topic(bootstrap, name)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    stamps = [BASE_TS + 5000, BASE_TS + 1000, BASE_TS + 9000, BASE_TS + 2000, BASE_TS + 3000, BASE_TS + 4000]
    for i, ts in enumerate(stamps):
        producer.send(name, b"%d" % i, partition=0, timestamp_ms=ts)
    producer.flush(timeout=10)
    producer.close()
    tp = confluent_kafka.TopicPartition(name, 0)
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def offset_for(spec: Any) -> tuple[int, int]:
        [info] = confluent_wait(admin.list_offsets({tp: spec})).values()
        return info.offset, info.timestamp

    assert offset_for(OffsetSpec.earliest())[0] == 0
    assert offset_for(OffsetSpec.latest())[0] == 6
    assert offset_for(OffsetSpec.max_timestamp()) == (2, BASE_TS + 9000)
    assert offset_for(OffsetSpec.for_timestamp(BASE_TS + 6000)) == (2, BASE_TS + 9000)

    [deleted] = confluent_wait(admin.delete_records([confluent_kafka.TopicPartition(name, 0, 4)])).values()
    assert deleted.low_watermark == 4
    assert offset_for(OffsetSpec.earliest())[0] == 4

    ck = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": name, "enable.auto.commit": False})
    assert ck.get_watermark_offsets(tp, timeout=10) == (4, 6)
    ck.assign([confluent_kafka.TopicPartition(name, 0, confluent_kafka.OFFSET_BEGINNING)])
    assert poll_one_confluent(ck).offset() == 4
    ck.close()

    kp = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    kp.assign([TopicPartition(name, 0)])
    assert kp.beginning_offsets([TopicPartition(name, 0)]) == {TopicPartition(name, 0): 4}
    records: list[Any] = []
    wait_until(lambda: len(records) >= 2, lambda: [records.extend(b) for b in kp.poll(timeout_ms=100).values()])
    kp.close()
    assert [r.offset for r in records] == [4, 5]

    async def aio() -> list[int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            atp = AioTopicPartition(name, 0)
            consumer.assign([atp])
            assert await consumer.beginning_offsets([atp]) == {atp: 4}
            return [(await consumer.getone()).offset, (await consumer.getone()).offset]
        finally:
            await consumer.stop()

    assert asyncio.run(aio()) == [4, 5]
    if KCAT:
        out = subprocess.run(
            [KCAT, "-C", "-b", bootstrap, "-t", name, "-p", "0", "-o", "beginning", "-e", "-f", "%o\n"],
            check=True, capture_output=True, timeout=20,
        )
        assert out.stdout.split() == [b"4", b"5"]


# ------------------------------------------------------------------ out-of-range positions reset
@pytest.mark.parametrize("client", GROUP_CLIENTS)
def test_out_of_range_position_resets(bootstrap: str, name: str, client: str) -> None:
    """Fetch at an offset past the end, or below the log start, answers OFFSET_OUT_OF_RANGE (1)
    and the client applies its reset policy."""
    create_topic(bootstrap, name)
    produce_values(bootstrap, name, 6)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_records({TopicPartition(name, 0): 2})
    finally:
        admin.close()
    if client == "kafka-python":
        for start, policy, expected in [(100, "earliest", [2, 3, 4, 5]), (0, "earliest", [2, 3, 4, 5]), (100, "latest", [])]:
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset=policy, enable_auto_commit=False, fetch_max_wait_ms=100)
            tp = TopicPartition(name, 0)
            consumer.assign([tp])
            consumer.seek(tp, start)
            got: list[int] = []
            wait_until(
                lambda: consumer.position(tp) == 6 and len(got) == len(expected),
                lambda: [got.extend(r.offset for r in b) for b in consumer.poll(timeout_ms=100).values()],
                timeout=10,
            )
            consumer.close()
            assert got == expected
    elif client == "confluent":
        for start, policy, expected in [(100, "earliest", 2), (0, "earliest", 2)]:
            consumer = confluent_kafka.Consumer(
                {"bootstrap.servers": bootstrap, "group.id": name, "auto.offset.reset": policy, "enable.auto.commit": False}
            )
            consumer.assign([confluent_kafka.TopicPartition(name, 0, start)])
            assert poll_one_confluent(consumer).offset() == expected
            consumer.close()
    else:

        async def run() -> None:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
            await consumer.start()
            try:
                tp = AioTopicPartition(name, 0)
                consumer.assign([tp])
                for start in (100, 0):
                    consumer.seek(tp, start)
                    assert (await asyncio.wait_for(consumer.getone(), 10)).offset == 2
            finally:
                await consumer.stop()

        asyncio.run(run())


# ------------------------------------------------------------------ the group follows the topic
def test_group_rebalances_when_partitions_are_added(bootstrap: str, name: str) -> None:
    create_topic(bootstrap, name, 2)
    group = name + "-g"
    stop = threading.Event()
    kp_share: set[int] = set()

    def kafka_python() -> None:
        kp = KafkaConsumer(
            name, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", metadata_max_age_ms=300, **FAST_KP
        )
        try:
            while not stop.is_set():
                kp.poll(timeout_ms=KP_POLL_MS)
                kp_share.clear()
                kp_share.update(tp.partition for tp in kp.assignment())
        finally:
            kp.close()

    thread = threading.Thread(target=kafka_python, daemon=True)
    thread.start()
    ck = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "topic.metadata.refresh.interval.ms": 300, **FAST_CK}
    )
    ck.subscribe([name])
    try:

        def split(each: int) -> bool:
            ck_share = {tp.partition for tp in ck.assignment()}
            return len(kp_share) == len(ck_share) == each and not (kp_share & ck_share)

        wait_until(lambda: split(1), lambda: ck.poll(0.05))
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_partitions({name: KpNewPartitions(6)})
        finally:
            admin.close()
        wait_until(lambda: split(3), lambda: ck.poll(0.05))
    finally:
        stop.set()
        thread.join(10)
        ck.close()


def test_pattern_subscription_picks_up_a_new_topic(bootstrap: str, name: str) -> None:
    create_topic(bootstrap, f"{name}-a")
    produce_values(bootstrap, f"{name}-a", 1)
    seen_kp: set[str] = set()
    seen_ck: set[str] = set()
    stop = threading.Event()

    def kafka_python() -> None:
        kp = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=name + "-kp", auto_offset_reset="earliest", metadata_max_age_ms=300, **FAST_KP
        )
        kp.subscribe(pattern=f"^{name}-.*")
        try:
            while not stop.is_set():
                seen_kp.update(tp.topic for tp in kp.poll(timeout_ms=KP_POLL_MS))
        finally:
            kp.close()

    thread = threading.Thread(target=kafka_python, daemon=True)
    thread.start()
    ck = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": name + "-ck",
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 300,
            **FAST_CK,
        }
    )
    ck.subscribe([f"^{name}-.*"])

    def step() -> None:
        msg = ck.poll(0.05)
        if msg is not None and not msg.error():
            seen_ck.add(msg.topic())

    try:
        wait_until(lambda: seen_kp == seen_ck == {f"{name}-a"}, step)
        create_topic(bootstrap, f"{name}-b")
        produce_values(bootstrap, f"{name}-b", 1)
        wait_until(lambda: seen_kp == seen_ck == {f"{name}-a", f"{name}-b"}, step)
    finally:
        stop.set()
        thread.join(10)
        ck.close()


# ------------------------------------------------------------------ a member that dies without leaving
@pytest.mark.skipif(KCAT is None, reason="kcat is not installed")
def test_crashed_member_is_evicted_after_its_session_timeout(bootstrap: str, name: str) -> None:
    """kcat -G joins, is SIGKILLed (no LeaveGroup): after session.timeout.ms the survivor gets everything."""
    create_topic(bootstrap, name, 4)
    group = name + "-g"
    survivor = kp_group_consumer(bootstrap, group, name)
    kcat = subprocess.Popen(
        [KCAT, "-b", bootstrap, "-G", group, "-X", "session.timeout.ms=1500", "-X", "heartbeat.interval.ms=100", "-q", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: len(survivor.assignment()) == 2, lambda: survivor.poll(timeout_ms=KP_POLL_MS))
        kcat.kill()
        kcat.wait(5)
        killed_at = time.monotonic()
        wait_until(lambda: len(survivor.assignment()) == 4, lambda: survivor.poll(timeout_ms=KP_POLL_MS))
        assert time.monotonic() - killed_at < 10
    finally:
        if kcat.poll() is None:
            kcat.kill()
            kcat.wait(5)
        survivor.close()


# ------------------------------------------------------------------ pipelining and long polls
@pytest.mark.parametrize("acks", ["all", "0"])
def test_thousands_of_pipelined_single_record_requests(server: Server, bootstrap: str, name: str, acks: str) -> None:
    """librdkafka keeps up to a million requests in flight on one connection: answers must come back in order."""
    create_topic(bootstrap, name)
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0, "acks": acks, "enable.idempotence": False}
    )
    reports: list[tuple[Any, int]] = []
    for i in range(3000):
        producer.produce(name, b"%d" % i, partition=0, on_delivery=lambda err, msg: reports.append((err, msg.offset())))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert [err for err, _ in reports if err is not None] == []
    if acks == "all":
        assert [offset for _, offset in reports] == list(range(3000))
    # with acks=0 flush() returns once the requests are written, so read first
    assert read_values(bootstrap, name, 3000) == [b"%d" % i for i in range(3000)]
    assert len(list(server.broker.topics.get(name).partitions[0].log.read(0))) == 3000  # one batch per request


def test_fetch_waits_for_min_bytes_until_max_wait(bootstrap: str, name: str) -> None:
    """fetch.min.bytes unmet: the broker holds the Fetch for fetch.max.wait.ms, then answers with what it has."""
    create_topic(bootstrap, name)
    produce_values(bootstrap, name, 1)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_min_bytes=1_000_000, fetch_max_wait_ms=800, enable_auto_commit=False)
    try:
        tp = TopicPartition(name, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        consumer.poll(timeout_ms=50)  # connects and sends the first fetch
        started = time.monotonic()
        got: list[Any] = []
        while not got and time.monotonic() - started < 5:
            for batch in consumer.poll(timeout_ms=3000).values():
                got.extend(batch)
        elapsed = time.monotonic() - started
    finally:
        consumer.close()
    assert [r.value for r in got] == [b"m0"]
    assert 0.5 <= elapsed < 3.0


def test_member_that_stops_polling_is_dropped_at_the_rebalance_timeout(bootstrap: str, name: str) -> None:
    """A member that does not rejoin within its rebalance timeout (kafka-python's
    max_poll_interval_ms) is removed and the rebalance completes without it."""
    create_topic(bootstrap, name, 4)
    group = name + "-g"
    stalled = KafkaConsumer(
        name, bootstrap_servers=bootstrap, group_id=group, max_poll_interval_ms=1500, session_timeout_ms=10000, heartbeat_interval_ms=200
    )
    newcomer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 10000, "heartbeat.interval.ms": 200}
    )
    try:
        wait_until(lambda: len(stalled.assignment()) == 4, lambda: stalled.poll(timeout_ms=KP_POLL_MS))
        newcomer.subscribe([name])
        started = time.monotonic()
        wait_until(lambda: len(newcomer.assignment()) == 4, lambda: newcomer.poll(0.05))
        assert time.monotonic() - started < 8
    finally:
        newcomer.close()
        stalled.close()


# ------------------------------------------------------------------ older request versions
@pytest.mark.parametrize("api_version", [(0, 11), (1, 0), (2, 0), (2, 4), (2, 8), (3, 0), (3, 5), (4, 0)], ids=str)
def test_kafka_python_pinned_to_older_broker_versions(bootstrap: str, name: str, api_version: tuple[int, ...]) -> None:
    """kafka-python's api_version picks each API's version from that broker release:
    the oldest that Kafka 4.0 still accepts (Produce v3, Fetch v4, JoinGroup v2, ...) up to the newest."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, api_version=api_version)
    try:
        admin.create_topics([KpNewTopic(name, 2, 1, topic_configs={"retention.ms": "100000"})])
        resource = KpConfigResource(KpConfigResourceType.TOPIC, name)
        if api_version < (1, 1):
            # such brokers have DescribeConfigs v0 only, which Kafka 4.0 removed
            # (KIP-896): like Kafka, wiregate closes the connection
            with pytest.raises(KafkaConnectionError):
                admin.describe_configs([resource], config_filter="all")
        else:
            configs = admin.describe_configs([resource], config_filter="all")
            assert configs["topic"][name]["retention.ms"]["value"] == "100000"
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=api_version, enable_idempotence=False)
    sent = [producer.send(name, b"%d" % i, key=b"k", partition=0, timestamp_ms=BASE_TS + i) for i in range(5)]
    producer.flush(timeout=10)
    assert [f.get(timeout=5).offset for f in sent] == [0, 1, 2, 3, 4]
    producer.close()
    consumer = KafkaConsumer(
        name, bootstrap_servers=bootstrap, api_version=api_version, group_id=name, auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        got: list[Any] = []
        wait_until(lambda: len(got) >= 5, lambda: [got.extend(b) for b in consumer.poll(timeout_ms=KP_POLL_MS).values()])
        assert [(r.offset, r.key, r.value, r.timestamp) for r in got] == [(i, b"k", b"%d" % i, BASE_TS + i) for i in range(5)]
        consumer.commit()
        tp = TopicPartition(name, 0)
        assert consumer.committed(tp) == 5
        assert consumer.offsets_for_times({tp: BASE_TS + 2})[tp].offset == 2
    finally:
        consumer.close()


# ------------------------------------------------------------------ topic-level checks on produce
def produce_errors_confluent(bootstrap: str, topic: str, key: bytes | None, value: bytes, **config: Any) -> list[Any]:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False, "retries": 0, **config})
    errors: list[Any] = []
    producer.produce(topic, value, key, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    return errors


def test_topic_max_message_bytes_refuses_larger_batches(bootstrap: str, name: str) -> None:
    from kafka.errors import MessageSizeTooLargeError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([KpNewTopic(name, 1, 1, topic_configs={"max.message.bytes": "1000"})])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, retries=0)
    try:
        assert producer.send(name, b"x" * 500).get(timeout=5).offset == 0
        with pytest.raises(MessageSizeTooLargeError):
            producer.send(name, b"x" * 5000).get(timeout=5)
    finally:
        producer.close()
    [error] = produce_errors_confluent(bootstrap, name, None, b"x" * 5000)
    assert error.code() == confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE


def test_compacted_topic_refuses_records_without_key(bootstrap: str, name: str) -> None:
    from kafka.errors import InvalidRecordError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([KpNewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, retries=0)
    try:
        assert producer.send(name, b"v", key=b"k").get(timeout=5).offset == 0
        with pytest.raises(InvalidRecordError):
            producer.send(name, b"v").get(timeout=5)
    finally:
        producer.close()
    [error] = produce_errors_confluent(bootstrap, name, None, b"v")
    assert error is not None and error.code() == confluent_kafka.KafkaError.INVALID_RECORD


def test_timestamp_too_far_in_the_future_is_refused(bootstrap: str, name: str) -> None:
    from kafka.errors import InvalidTimestampError

    create_topic(bootstrap, name)
    now = int(time.time() * 1000)
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, retries=0)
    try:
        assert producer.send(name, b"soon", timestamp_ms=now + 30 * 60 * 1000).get(timeout=5).offset == 0
        with pytest.raises(InvalidTimestampError):
            producer.send(name, b"later", timestamp_ms=now + 2 * 3600 * 1000).get(timeout=5)
    finally:
        producer.close()


def test_acks_all_refused_when_min_insync_replicas_cannot_be_met(bootstrap: str, name: str) -> None:
    from kafka.errors import NotEnoughReplicasError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([KpNewTopic(name, 1, 1, topic_configs={"min.insync.replicas": "2"})])
    finally:
        admin.close()
    leader_only = KafkaProducer(bootstrap_servers=bootstrap, acks=1, enable_idempotence=False, retries=0)
    assert leader_only.send(name, b"acks=1").get(timeout=5).offset == 0
    leader_only.close()
    every_replica = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, retries=0)
    try:
        with pytest.raises(NotEnoughReplicasError):
            every_replica.send(name, b"acks=all").get(timeout=5)
    finally:
        every_replica.close()


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_invalid_records_are_named_in_the_produce_answer(bootstrap: str, name: str, client: str) -> None:
    """librdkafka's own test 0011 (test_message_single_partition_record_fail): one batch,
    every fifth record without a key, on a compacted topic.  Nothing is appended."""
    from kafka.errors import InvalidRecordError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([KpNewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    keys = [None if i % 5 == 0 else b"k%d" % i for i in range(20)]
    if client == "kafka-python":
        producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, retries=0, linger_ms=200)
        futures = [producer.send(name, b"v%d" % i, key=key, partition=0) for i, key in enumerate(keys)]
        producer.flush(timeout=10)
        producer.close()
        outcomes = []
        for future in futures:
            with pytest.raises(Exception) as failed:
                future.get(timeout=5)
            outcomes.append(failed.value)
        culprits = [i for i, e in enumerate(outcomes) if isinstance(e, InvalidRecordError)]
        assert culprits == [0, 5, 10, 15]
        assert all("without key" in str(outcomes[i]) for i in culprits)
        others = [e for i, e in enumerate(outcomes) if i not in culprits]
        assert all("part of a batch which had one more more invalid records" in str(e) for e in others)
    else:
        producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 200, "enable.idempotence": False})
        errors: dict[int, int] = {}
        for i, key in enumerate(keys):
            producer.produce(
                name, b"v%d" % i, key, partition=0, on_delivery=lambda err, msg, i=i: errors.__setitem__(i, err.code())
            )
        producer.flush(10)
        assert [i for i, code in sorted(errors.items()) if code == confluent_kafka.KafkaError.INVALID_RECORD] == [0, 5, 10, 15]
        assert sorted(i for i, code in errors.items() if code == confluent_kafka.KafkaError._INVALID_DIFFERENT_RECORD) == [
            i for i in range(20) if i % 5
        ]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        assert consumer.end_offsets([TopicPartition(name, 0)]) == {TopicPartition(name, 0): 0}
    finally:
        consumer.close()


# ------------------------------------------------------------------ KIP-848 groups
@pytest.mark.xfail(
    reason="NOT IMPLEMENTED: KIP-848 groups (ConsumerGroupHeartbeat, key 68; GA in Kafka 4.0). librdkafka with "
    "group.protocol=consumer does not fall back to the classic protocol: it logs 'ConsumerGroupHeartbeatRequest "
    "not supported by broker' at debug level, re-queries the coordinator forever and delivers nothing",
    strict=True,
)
def test_confluent_kip848_consumer_group(bootstrap: str, name: str) -> None:
    create_topic(bootstrap, name, 2)
    produce_values(bootstrap, name, 4, partitions=2)
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": name, "group.protocol": "consumer", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([name])
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + 2  # a Kafka 4.0 broker forms the group well within this
        while len(values) < 4 and time.monotonic() < deadline:
            msg = consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
    finally:
        consumer.close()
    assert sorted(values) == [b"m0", b"m1", b"m2", b"m3"]
