"""Consumer groups through real clients: kafka-python, aiokafka, confluent-kafka.

The server runs with ``group.initial.rebalance.delay.ms`` = 0 (Kafka's
default is 3000 ms, which only delays the first rebalance of an empty
group) and the clients heartbeat every 100 ms, so rebalances take
milliseconds instead of seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from wiregate.core import Broker
from wiregate.testing import Server

kafka = pytest.importorskip("kafka")
confluent_kafka = pytest.importorskip("confluent_kafka")
aiokafka = pytest.importorskip("aiokafka")

from confluent_kafka import Consumer as ConfluentConsumer  # noqa: E402
from confluent_kafka.admin import AdminClient as ConfluentAdmin  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

pytestmark = pytest.mark.timeout(60)

FAST = dict(heartbeat_interval_ms=100, session_timeout_ms=6000, request_timeout_ms=10000)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    broker = Broker()
    broker.kafka_configs["group.initial.rebalance.delay.ms"] = "0"
    with Server(broker=broker) as srv:
        yield srv


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def create_topic(server: Server, topic: str, partitions: int) -> None:
    server.call(server.broker.topics.create, topic, partitions)


def produce(server: Server, topic: str, count: int, partitions: int = 1) -> None:
    producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap)
    try:
        for i in range(count):
            producer.send(topic, value=f"m{i}".encode(), partition=i % partitions)
        producer.flush(timeout=10)
    finally:
        producer.close()


def wait_for(condition: Callable[[], bool], step: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        step()


def kp_consumer(server: Server, group: str, **kwargs: object) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=server.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **{**FAST, **kwargs},
    )


def drain(consumer: KafkaConsumer, expected: int, timeout: float = 20.0) -> list[bytes]:
    # Long polls: kafka-python 3.0.12 sends a second JoinGroup when a poll
    # times out while its JoinGroup is in flight and the join completes
    # before the next poll, which restarts the rebalance over and over.
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(values) < expected and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            values.extend(r.value for r in records)
    return values


class PollingThread(threading.Thread):
    """A kafka-python consumer polled in its own thread (it is not thread-safe), as apps run them."""

    def __init__(self, consumer: KafkaConsumer, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = consumer
        self.topic = topic
        self.assigned: frozenset[int] = frozenset()
        self.stopping = threading.Event()

    def run(self) -> None:
        owner = self

        class Listener(kafka.ConsumerRebalanceListener):  # eager protocol: the whole assignment each time
            def on_partitions_revoked(self, revoked: object) -> None:
                owner.assigned = frozenset()

            def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
                owner.assigned = frozenset(tp.partition for tp in assigned)

        self.consumer.subscribe([self.topic], listener=Listener())
        try:
            while not self.stopping.is_set():
                self.consumer.poll(timeout_ms=1000)
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=15)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    wait_for(condition, lambda: time.sleep(0.01), timeout)


# ------------------------------------------------------------ kafka-python
def test_kafka_python_commit_and_resume_from_committed_offsets(server: Server, name: str) -> None:
    create_topic(server, name, 1)
    produce(server, name, 10)
    group = f"g-{name}"
    first = kp_consumer(server, group)
    first.subscribe([name])
    assert drain(first, 6)[:6] == [f"m{i}".encode() for i in range(6)]
    tp = TopicPartition(name, 0)
    first.commit({tp: kafka.OffsetAndMetadata(6, "checkpoint", -1)})
    assert first.committed(tp) == 6
    first.close()

    produce(server, name, 2)  # m0, m1 again, at offsets 10 and 11
    second = kp_consumer(server, group)
    second.subscribe([name])
    try:
        values = drain(second, 6)
        assert values == [b"m6", b"m7", b"m8", b"m9", b"m0", b"m1"]
        second.commit()
        assert second.committed(tp, metadata=True).offset == 12
    finally:
        second.close()


def test_kafka_python_two_members_split_partitions_and_rebalance_on_leave(server: Server, name: str) -> None:
    create_topic(server, name, 4)
    group = f"g-{name}"
    one = PollingThread(kp_consumer(server, group), name)
    two = PollingThread(kp_consumer(server, group), name)
    one.start()
    try:
        wait_until(lambda: one.assigned == {0, 1, 2, 3})
        two.start()
        try:
            wait_until(lambda: len(one.assigned) == 2 and len(two.assigned) == 2)
            assert one.assigned | two.assigned == {0, 1, 2, 3}
        finally:
            two.stop()  # close() sends LeaveGroup
        wait_until(lambda: one.assigned == {0, 1, 2, 3})
    finally:
        one.stop()


def test_kafka_python_admin_lists_describes_and_deletes_groups(server: Server, name: str) -> None:
    create_topic(server, name, 2)
    group = f"g-{name}"
    consumer = kp_consumer(server, group, client_id="kp-admin-test")
    consumer.subscribe([name])
    wait_for(lambda: len(consumer.assignment()) == 2, lambda: consumer.poll(timeout_ms=1000))
    consumer.commit({TopicPartition(name, 0): kafka.OffsetAndMetadata(3, "meta", -1)})
    admin = KafkaAdminClient(bootstrap_servers=server.kafka_bootstrap)
    try:
        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed[group]["group_state"] == "Stable"
        assert listed[group]["protocol_type"] == "consumer"
        described = admin.describe_groups([group])[group]
        assert described["group_state"] == "Stable"
        assert described["protocol_data"] == "range"
        [member] = described["members"]
        assert member["client_id"] == "kp-admin-test"
        assert member["client_host"] == "/127.0.0.1"
        assert member["member_metadata"]["topics"] == [name]
        assigned = member["member_assignment"]["assigned_partitions"]
        assert assigned == [{"topic": name, "partitions": [0, 1]}]
        offsets = admin.list_group_offsets({group: None})[group]
        assert offsets == {TopicPartition(name, 0): kafka.OffsetAndMetadata(3, "meta", -1)}
        assert admin.delete_groups([group]) == {group: "NonEmptyGroupError"}
        consumer.close()
        assert admin.describe_groups([group])[group]["group_state"] == "Empty"
        assert {g["group_id"] for g in admin.list_groups(states_filter=["Empty"])} >= {group}
        assert group not in {g["group_id"] for g in admin.list_groups(states_filter=["Stable"])}
        assert admin.delete_groups([group]) == {group: "OK"}
        assert group not in {g["group_id"] for g in admin.list_groups()}
        assert admin.list_group_offsets({group: None})[group] == {}
    finally:
        consumer.close()  # a second close does nothing
        admin.close()


# ------------------------------------------------------------------ aiokafka
def test_aiokafka_group_consumer_commits(server: Server, name: str) -> None:
    create_topic(server, name, 2)
    produce(server, name, 6, partitions=2)
    group = f"g-{name}"

    async def consume() -> tuple[list[bytes], dict[int, int | None]]:
        consumer = aiokafka.AIOKafkaConsumer(
            name,
            bootstrap_servers=server.kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=100,
            session_timeout_ms=6000,
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            async with asyncio.timeout(20):
                while len(values) < 6:
                    batch = await consumer.getmany(timeout_ms=100)
                    values.extend(r.value for records in batch.values() for r in records)
            await consumer.commit()
            committed = {p: await consumer.committed(aiokafka.TopicPartition(name, p)) for p in range(2)}
            return values, committed
        finally:
            await consumer.stop()

    values, committed = asyncio.run(consume())
    assert sorted(values) == sorted(f"m{i}".encode() for i in range(6))
    assert committed == {0: 3, 1: 3}


# ---------------------------------------------------------- confluent-kafka
def confluent_consumer(server: Server, group: str, **extra: str) -> ConfluentConsumer:
    return ConfluentConsumer(
        {
            "bootstrap.servers": server.kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "heartbeat.interval.ms": 100,
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
            **extra,
        }
    )


def test_confluent_two_members_split_partitions_and_rebalance_on_leave(server: Server, name: str) -> None:
    create_topic(server, name, 4)
    group = f"g-{name}"
    assignments: dict[str, set[int]] = {"one": set(), "two": set()}

    def tracker(who: str) -> dict[str, Callable[..., None]]:
        def assigned(consumer: ConfluentConsumer, partitions: list) -> None:
            assignments[who] = {p.partition for p in partitions}

        def revoked(consumer: ConfluentConsumer, partitions: list) -> None:
            assignments[who] = set()

        return dict(on_assign=assigned, on_revoke=revoked)

    one = confluent_consumer(server, group)
    two = confluent_consumer(server, group)
    one.subscribe([name], **tracker("one"))
    wait_for(lambda: len(assignments["one"]) == 4, lambda: one.poll(0.05))
    two.subscribe([name], **tracker("two"))
    try:
        wait_for(
            lambda: len(assignments["one"]) == 2 and len(assignments["two"]) == 2,
            lambda: (one.poll(0.02), two.poll(0.02)),
        )
        assert assignments["one"] | assignments["two"] == {0, 1, 2, 3}
    finally:
        two.close()
    try:
        wait_for(lambda: len(assignments["one"]) == 4, lambda: one.poll(0.05))
    finally:
        one.close()


def test_confluent_commit_and_committed(server: Server, name: str) -> None:
    create_topic(server, name, 1)
    produce(server, name, 5)
    group = f"g-{name}"
    consumer = confluent_consumer(server, group)
    consumer.subscribe([name])
    try:
        seen: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(seen) < 5 and time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                seen.append(message.value())
        assert seen == [f"m{i}".encode() for i in range(5)]
        consumer.commit(asynchronous=False)
        [committed] = consumer.committed([confluent_kafka.TopicPartition(name, 0)], timeout=10)
        assert committed.offset == 5
    finally:
        consumer.close()


def test_confluent_admin_lists_and_describes_groups(server: Server, name: str) -> None:
    create_topic(server, name, 2)
    group = f"g-{name}"
    consumer = confluent_consumer(server, group, **{"client.id": "ck-admin-test"})
    assigned: list[int] = []
    consumer.subscribe([name], on_assign=lambda c, ps: assigned.extend(p.partition for p in ps))
    admin = ConfluentAdmin({"bootstrap.servers": server.kafka_bootstrap})
    try:
        wait_for(lambda: len(assigned) == 2, lambda: consumer.poll(0.05))
        wait_for(lambda: _confluent_state(admin, group) == "STABLE", lambda: consumer.poll(0.05))
        listing = admin.list_consumer_groups().result(timeout=10)
        [listed] = [g for g in listing.valid if g.group_id == group]
        assert listed.is_simple_consumer_group is False
        described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        assert described.group_id == group
        assert described.partition_assignor == "range"
        assert described.state.name == "STABLE"
        [member] = described.members
        assert member.client_id == "ck-admin-test"
        assert member.host == "/127.0.0.1"
        assert sorted(tp.partition for tp in member.assignment.topic_partitions) == [0, 1]
        empty = admin.list_consumer_groups(states={confluent_kafka.ConsumerGroupState.EMPTY}).result(timeout=10)
        assert group not in {g.group_id for g in empty.valid}
    finally:
        consumer.close()
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    assert described.state.name == "EMPTY" and described.members == []


def _confluent_state(admin: ConfluentAdmin, group: str) -> str:
    listing = admin.list_consumer_groups().result(timeout=10)
    states = {g.group_id: g.state.name for g in listing.valid}
    return states.get(group, "")


def test_confluent_static_member_restart_keeps_assignment_without_rebalance(server: Server, name: str) -> None:
    create_topic(server, name, 2)
    group = f"g-{name}"
    extra = {"group.instance.id": "instance-1"}
    first = confluent_consumer(server, group, **extra)
    assigned: list[int] = []
    first.subscribe([name], on_assign=lambda c, ps: assigned.extend(p.partition for p in ps))
    wait_for(lambda: len(assigned) == 2, lambda: first.poll(0.05))
    generation = server.call(lambda: server.broker.groups.get(group).generation_id)
    # a static member's close does not leave the group (KIP-345)
    first.close()
    assert server.call(lambda: server.broker.groups.get(group).state.value) == "Stable"
    second = confluent_consumer(server, group, **extra)
    again: list[int] = []
    second.subscribe([name], on_assign=lambda c, ps: again.extend(p.partition for p in ps))
    try:
        wait_for(lambda: len(again) == 2, lambda: second.poll(0.05))
        group_state = server.call(lambda: (server.broker.groups.get(group).generation_id, server.broker.groups.get(group).state.value))
        assert group_state == (generation, "Stable")
    finally:
        second.close()
