"""Declare and inspect broker state from Python, for tests.

Every function here runs in the server's thread (``Server`` calls them
through :meth:`~wiregate.testing.Server.call`) and returns plain, frozen
values, so a test can assert on them without racing the server.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

from wiregate.core import Broker
from wiregate.kafka_wire import records as kafka_records
from wiregate.kafka_wire.apis.metadata import topic_name_problem

__all__ = ["GroupInfo", "MemberInfo", "QueueInfo", "Record"]


@dataclasses.dataclass(frozen=True)
class QueueInfo:
    """A queue as RabbitMQ's management API describes it (the fields tests check)."""

    name: str
    vhost: str
    type: str
    durable: bool
    auto_delete: bool
    exclusive: bool
    arguments: dict[str, Any]
    #: messages waiting to be delivered
    messages_ready: int
    #: delivered, not yet acknowledged
    messages_unacknowledged: int
    consumers: int

    @property
    def messages(self) -> int:
        """Ready plus unacknowledged, as RabbitMQ counts ``messages``."""
        return self.messages_ready + self.messages_unacknowledged


@dataclasses.dataclass(frozen=True)
class Record:
    """One stored Kafka record."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclasses.dataclass(frozen=True)
class MemberInfo:
    """One member of a consumer group."""

    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None
    #: topic -> partitions assigned (decoded from the consumer protocol; empty before sync)
    assignment: dict[str, list[int]]


@dataclasses.dataclass(frozen=True)
class GroupInfo:
    """A consumer group: its state and members."""

    group_id: str
    state: str
    generation_id: int
    protocol_type: str | None
    protocol: str | None
    leader_id: str | None
    members: list[MemberInfo]


# ------------------------------------------------------------------ AMQP
def _vhost(broker: Broker, name: str) -> Any:
    vhost = broker.vhosts.get(name)
    if vhost is None:
        raise KeyError(f"no vhost {name!r}")
    return vhost


def declare_exchange(broker: Broker, name: str, type: str, durable: bool, auto_delete: bool, internal: bool, arguments: dict[str, Any] | None, vhost: str) -> None:
    broker.add_vhost(vhost).declare_exchange(name, type, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments)


def declare_queue(broker: Broker, name: str, durable: bool, auto_delete: bool, arguments: dict[str, Any] | None, vhost: str) -> str:
    return broker.add_vhost(vhost).declare_queue(name, durable=durable, auto_delete=auto_delete, arguments=arguments).name


def bind_queue(broker: Broker, queue: str, exchange: str, routing_key: str, arguments: dict[str, Any] | None, vhost: str) -> None:
    _vhost(broker, vhost).bind_queue(queue, exchange, routing_key, arguments)


def queue_info(broker: Broker, name: str, vhost: str) -> QueueInfo:
    queue = _vhost(broker, vhost).queues.get(name)
    if queue is None:
        raise KeyError(f"no queue {name!r} in vhost {vhost!r}")
    return _queue_info(queue, vhost)


def _queue_info(queue: Any, vhost: str) -> QueueInfo:
    return QueueInfo(
        name=queue.name,
        vhost=vhost,
        type=queue.queue_type,
        durable=queue.durable,
        auto_delete=queue.auto_delete,
        exclusive=queue.exclusive,
        arguments=dict(queue.arguments),
        messages_ready=queue.message_count,
        messages_unacknowledged=queue.unacked,
        consumers=queue.consumer_count,
    )


def queues(broker: Broker, vhost: str) -> dict[str, QueueInfo]:
    return {name: _queue_info(queue, vhost) for name, queue in _vhost(broker, vhost).queues.items()}


def queue_bodies(broker: Broker, name: str, vhost: str) -> list[bytes]:
    queue = _vhost(broker, vhost).queues.get(name)
    if queue is None:
        raise KeyError(f"no queue {name!r} in vhost {vhost!r}")
    log = getattr(queue, "log", None)
    if log is not None:  # a stream queue: its log holds the messages
        return [batch.payload.body for batch in log.read(log.start_offset)]
    queue.expire_head()
    return [entry.message.body for entry in queue.ready]


def exchanges(broker: Broker, vhost: str) -> dict[str, str]:
    return {name: exchange.type for name, exchange in _vhost(broker, vhost).exchanges.items()}


# ------------------------------------------------------------------ Kafka
def create_topic(broker: Broker, name: str, partitions: int, configs: dict[str, str] | None) -> None:
    problem = topic_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    if partitions < 1:
        raise ValueError("a topic needs at least one partition")
    if name in broker.topics:
        raise ValueError(f"topic {name!r} already exists")
    broker.topics.create(name, partitions, dict(configs or {}))


def produce(
    broker: Broker,
    topic_name: str,
    partition_index: int,
    items: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int | None]],
) -> int:
    topic = broker.topics.get(topic_name)
    if topic is None:
        raise KeyError(f"no topic {topic_name!r}")
    if not 0 <= partition_index < len(topic.partitions):
        raise KeyError(f"topic {topic_name!r} has no partition {partition_index}")
    partition = topic.partitions[partition_index]
    now_ms = int(broker.scheduler.wall() * 1000)
    batch = kafka_records.encode_batch([(key, value, headers, now_ms if ts is None else ts) for key, value, headers, ts in items])
    base = partition.high_watermark
    kafka_records.assign(batch, base, partition.leader_epoch)
    partition.append_batch(bytes(batch), len(items), timestamp=broker.scheduler.wall())
    return base


def read_records(broker: Broker, topic_name: str, partition_index: int | None) -> list[Record]:
    topic = broker.topics.get(topic_name)
    if topic is None:
        raise KeyError(f"no topic {topic_name!r}")
    indexes = range(len(topic.partitions)) if partition_index is None else [partition_index]
    out = []
    for index in indexes:
        log = topic.partitions[index].log
        start = log.start_offset
        for batch in log.read(start):
            for offset, timestamp, key, value, headers in kafka_records.decode_records(batch.payload):
                if offset >= start:
                    out.append(Record(topic_name, index, offset, timestamp, key, value, headers))
    return out


def topics(broker: Broker) -> dict[str, int]:
    return {name: len(topic.partitions) for name, topic in broker.topics.by_name.items()}


def committed_offsets(broker: Broker, group_id: str) -> dict[tuple[str, int], int]:
    return {key: value.offset for key, value in broker.groups.committed(group_id).items()}


def group_info(broker: Broker, group_id: str) -> GroupInfo:
    group = broker.groups.get(group_id)
    if group is None:
        raise KeyError(f"no group {group_id!r}")
    members = [
        MemberInfo(
            member_id=member.member_id,
            client_id=member.client_id,
            client_host=member.client_host,
            group_instance_id=member.group_instance_id,
            assignment=_consumer_assignment(member.assignment),
        )
        for member in group.members.values()
    ]
    return GroupInfo(
        group_id=group.group_id,
        state=group.state.value,
        generation_id=group.generation_id,
        protocol_type=group.protocol_type,
        protocol=group.protocol_name,
        leader_id=group.leader_id,
        members=members,
    )


def _consumer_assignment(data: bytes) -> dict[str, list[int]]:
    # Kafka's ConsumerProtocolAssignment: version, [topic, [partition]], user data.
    if len(data) < 6:
        return {}
    try:
        pos = 2
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out: dict[str, list[int]] = {}
        for _ in range(max(count, 0)):
            (length,) = struct.unpack_from(">h", data, pos)
            pos += 2
            name = data[pos : pos + length].decode()
            pos += length
            (partitions,) = struct.unpack_from(">i", data, pos)
            pos += 4
            out[name] = list(struct.unpack_from(f">{max(partitions, 0)}i", data, pos))
            pos += 4 * max(partitions, 0)
        return out
    except (struct.error, UnicodeDecodeError):
        return {}
