"""kill -9 while clients publish, consume and commit: nothing acknowledged is lost.

``wiregate serve --data-dir`` runs as a subprocess. pika publishes
persistent messages with confirms to a durable queue while another pika
connection consumes and acks; confluent-kafka produces with acks=all and
idempotence while kafka-python consumes and commits. At a random moment
the server gets SIGKILL; it is started again on the same directory and:

- every confirmed message is either acked by the consumer before the kill
  or in the queue, exactly once; a message the consumer had acked can come
  back only flagged redelivered (its ack may have been in flight);
- every record whose produce was acknowledged is in the topic exactly once,
  and offsets are contiguous from 0;
- the committed offset is at least the last commit that was acknowledged;
- durable topology is there, transient topology is not.

``WIREGATE_CRASH_ROUNDS=N`` repeats the kill at N random points (default 2).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import confluent_kafka
import confluent_kafka.admin
import kafka
import pika
import pika.exceptions
import pytest

pytestmark = pytest.mark.timeout(300)

ROUNDS = int(os.environ.get("WIREGATE_CRASH_ROUNDS", "2"))
_READY = re.compile(r"ready amqp=(\S+?):(\d+)\S* .*?kafka=(\S+?):(\d+)")


class Serve:
    """One ``wiregate serve`` process on a data directory."""

    def __init__(self, data: Path, fsync: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wiregate", "serve", "--host", "127.0.0.1", "--amqp-port", "0", "--kafka-port", "0",
             "--http-port", "0", "--data-dir", str(data), "--fsync", fsync, "--log-level", "warning"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        match = _READY.search(line)
        assert match, f"no ready line: {line!r}"
        self.amqp_url = f"amqp://guest:guest@127.0.0.1:{match.group(2)}/%2F"
        self.kafka = f"127.0.0.1:{match.group(4)}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


def _declare(server: Serve) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    channel = connection.channel()
    channel.exchange_declare("durable-x", "topic", durable=True)
    channel.queue_declare("work", durable=True)
    channel.queue_bind("work", "durable-x", "job.#")
    channel.exchange_declare("transient-x", "fanout")
    channel.queue_declare("transient-q")
    connection.close()
    admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": server.kafka})
    admin.create_topics([confluent_kafka.admin.NewTopic("events", 1, 1)])["events"].result(10)


class Load:
    """The clients of one round; each records what the broker acknowledged."""

    def __init__(self, server: Serve, round_number: int) -> None:
        self.server = server
        self.prefix = f"r{round_number}-"
        self.stop = threading.Event()
        self.confirmed: list[bytes] = []
        self.acked: set[bytes] = set()
        self.produced: list[bytes] = []
        self.committed = -1
        self.threads = [
            threading.Thread(target=self._guard, args=(fn,), daemon=True)
            for fn in (self._publish, self._consume, self._produce, self._commit)
        ]

    def _guard(self, fn) -> None:
        try:
            fn()
        except Exception:
            # the kill breaks every connection; what was acknowledged is recorded
            pass

    def _publish(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.server.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        n = 0
        while not self.stop.is_set():
            body = f"{self.prefix}{n}".encode()
            channel.basic_publish("durable-x", "job.new", body, pika.BasicProperties(delivery_mode=2))
            self.confirmed.append(body)  # basic_publish returned: the confirm arrived
            n += 1

    def _consume(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.server.amqp_url))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=20)
        for method, _properties, body in channel.consume("work", inactivity_timeout=0.05):
            if self.stop.is_set():
                break
            if method is None:
                continue
            if random.random() < 0.5:  # leave some unacked when the kill comes
                channel.basic_ack(method.delivery_tag)
                # after basic_ack returns the frame is sent, not necessarily processed
                self.acked.add(body)

    def _produce(self) -> None:
        producer = confluent_kafka.Producer(
            {"bootstrap.servers": self.server.kafka, "acks": "all", "enable.idempotence": True, "linger.ms": 2, "log_level": 0}
        )

        def delivered(error, message) -> None:
            if error is None:
                self.produced.append(message.value())

        n = 0
        while not self.stop.is_set():
            producer.produce("events", f"{self.prefix}{n}".encode(), on_delivery=delivered)
            producer.poll(0.001)
            n += 1
            if n % 200 == 0:
                producer.flush(1)
        producer.flush(1)

    def _commit(self) -> None:
        consumer = kafka.KafkaConsumer(
            bootstrap_servers=self.server.kafka,
            group_id="auditors",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=3000,
        )
        consumer.assign([kafka.TopicPartition("events", 0)])
        while not self.stop.is_set():
            batch = consumer.poll(timeout_ms=50)
            if batch:
                position = consumer.position(kafka.TopicPartition("events", 0))
                consumer.commit({kafka.TopicPartition("events", 0): kafka.OffsetAndMetadata(position, None, -1)})
                self.committed = position

    def run(self, seconds: float) -> None:
        """Start the clients; return ``seconds`` after both protocols had something acknowledged."""
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 30
        while not (self.confirmed and self.produced) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(seconds)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


def _drain(server: Serve) -> list[tuple[bytes, bool]]:
    connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    channel = connection.channel()
    drained = []
    while True:
        method, _properties, body = channel.basic_get("work", auto_ack=True)
        if method is None:
            break
        drained.append((body, method.redelivered))
    connection.close()
    return drained


def _records(server: Serve) -> list[tuple[int, bytes]]:
    consumer = kafka.KafkaConsumer(bootstrap_servers=server.kafka, auto_offset_reset="earliest", consumer_timeout_ms=2000)
    consumer.assign([kafka.TopicPartition("events", 0)])
    records = [(message.offset, message.value) for message in consumer]
    consumer.close()
    return records


@pytest.mark.parametrize("fsync", ["batch", "never"])
def test_kill_9_loses_nothing_acknowledged(tmp_path: Path, fsync: str) -> None:
    data = tmp_path / "data"
    server = Serve(data, fsync)
    _declare(server)
    confirmed: list[bytes] = []
    acked: set[bytes] = set()
    produced: list[bytes] = []
    committed = -1
    try:
        for round_number in range(ROUNDS):
            load = Load(server, round_number)
            load.run(random.uniform(0.1, 1.0))
            server.kill()  # at a random moment of the load
            load.finish()
            confirmed += load.confirmed
            acked |= load.acked
            produced += load.produced
            committed = max(committed, load.committed)
            server = Serve(data, fsync)
            assert load.confirmed and load.produced, "the load ran before the kill"

        drained = _drain(server)
        bodies = [body for body, _ in drained]
        assert len(bodies) == len(set(bodies)), "a message came back twice"
        missing = [body for body in confirmed if body not in acked and body not in set(bodies)]
        assert not missing, f"{len(missing)} confirmed messages lost, e.g. {missing[:3]}"
        unflagged = [body for body, redelivered in drained if body in acked and not redelivered]
        assert not unflagged, f"acked messages back without the redelivered flag: {unflagged[:3]}"

        records = _records(server)
        assert [offset for offset, _ in records] == list(range(len(records))), "offsets are not contiguous"
        values = [value for _, value in records]
        assert len(values) == len(set(values)), "a record is stored twice"
        lost = set(produced) - set(values)
        assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:3]}"

        print(
            f"fsync={fsync}: {len(confirmed)} confirmed, {len(acked)} acked, {len(drained)} recovered "
            f"({sum(r for _, r in drained)} redelivered); {len(produced)} records acknowledged, {len(records)} stored; "
            f"committed {committed}"
        )
        consumer = kafka.KafkaConsumer(bootstrap_servers=server.kafka, group_id="auditors", enable_auto_commit=False)
        partition = kafka.TopicPartition("events", 0)
        assert (consumer.committed(partition) or 0) >= committed
        consumer.close()

        connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
        channel = connection.channel()
        channel.exchange_declare("durable-x", passive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as gone:
            channel.queue_declare("transient-q", passive=True)
        assert gone.value.reply_code == 404
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().exchange_declare("transient-x", passive=True)
        connection.close()
    finally:
        server.stop()
