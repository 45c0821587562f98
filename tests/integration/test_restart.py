"""A restart on the same data directory, seen by clients that stay connected through it."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import kafka
import pika
import pytest

from wiregate.testing import Server

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_consumer_group_carries_on_across_a_restart(tmp_path: Path) -> None:
    kafka_port = _free_port()
    first = Server(data_dir=tmp_path, kafka_port=kafka_port).start()
    first.create_topic("jobs", 2)
    for n in range(4):
        first.produce("jobs", f"before-{n}".encode(), partition=n % 2)
    consumer = kafka.KafkaConsumer(
        "jobs", bootstrap_servers=first.kafka_bootstrap, group_id="workers", enable_auto_commit=False,
        auto_offset_reset="earliest", reconnect_backoff_ms=50, retry_backoff_ms=50,
    )
    try:
        seen = []
        deadline = time.monotonic() + 20
        while len(seen) < 4 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                seen += [r.value for r in records]
        consumer.commit()
        before = first.group("workers")
        assert before.state == "Stable" and sorted(seen) == sorted(f"before-{n}".encode() for n in range(4))
        first.stop()

        second = Server(data_dir=tmp_path, kafka_port=kafka_port).start()
        try:
            after = second.group("workers")
            assert (after.state, after.generation_id) == ("Stable", before.generation_id)
            assert [m.member_id for m in after.members] == [m.member_id for m in before.members]
            assert second.committed_offsets("workers") == {("jobs", 0): 2, ("jobs", 1): 2}
            for n in range(2):
                second.produce("jobs", f"after-{n}".encode(), partition=n % 2)
            more = []
            deadline = time.monotonic() + 30
            while len(more) < 2 and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    more += [r.value for r in records]
            # from the committed offsets, by the same member of the same generation: no rebalance
            assert sorted(more) == [b"after-0", b"after-1"]
            assert second.group("workers").generation_id == before.generation_id
        finally:
            second.stop()
    finally:
        consumer.close(autocommit=False)


def test_durable_topology_and_persistent_messages_survive_transient_ones_do_not(tmp_path: Path) -> None:
    with Server(data_dir=tmp_path) as first:
        connection = pika.BlockingConnection(pika.URLParameters(first.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare("events", "topic", durable=True)
        channel.queue_declare("audit", durable=True)
        channel.queue_bind("audit", "events", "#")
        channel.queue_declare("scratch")
        channel.queue_declare("stream", durable=True, arguments={"x-queue-type": "stream"})
        channel.basic_publish("events", "a", b"kept", pika.BasicProperties(delivery_mode=2))
        channel.basic_publish("events", "a", b"transient")
        channel.basic_publish("", "stream", b"s1")
        connection.close()
    with Server(data_dir=tmp_path) as second:
        assert set(second.queues()) == {"audit", "stream"}
        assert second.queue_bodies("audit") == [b"kept"]
        assert second.queue_bodies("stream") == [b"s1"]
        assert second.exchanges()["events"] == "topic"
