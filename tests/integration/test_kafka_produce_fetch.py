"""Produce, Fetch, ListOffsets, DeleteRecords and idempotent producers.

Through real clients (kafka-python, aiokafka, confluent-kafka, kcat)
against the in-process server, consumers assigned to partitions (no
groups); and, for what clients cannot be made to send (a corrupt batch, a
retried idempotent batch, incremental fetch sessions, a parked fetch on a
fake clock), through the sans-IO connection with requests encoded by kio.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import struct
import subprocess
import threading
import time
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, OffsetSpec
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import MessageSizeTooLargeError
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from wiregate.core import Broker
from wiregate.core.timers import Scheduler
from wiregate.kafka_wire import KafkaConnection
from wiregate.kafka_wire.protocol import build, request_class, response_class

pytestmark = pytest.mark.timeout(60)

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


@pytest.fixture
def bootstrap(wiregate_server: Any) -> str:
    return wiregate_server.kafka_bootstrap


def _consume(bootstrap: str, topic: str, count: int, *, partition: int = 0, offset: int | None = None, timeout: float = 10.0) -> list[Any]:
    """``count`` records from one partition with kafka-python, assigned (no group)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        if offset is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                got.extend(batch)
        return got
    finally:
        consumer.close()


# ------------------------------------------------------------ kafka-python
@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_kafka_python_acks(bootstrap: str, unique: str, acks: Any) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, enable_idempotence=False)
    futures = [producer.send(unique, b"value-%d" % i, key=b"k%d" % i) for i in range(10)]
    producer.flush()
    producer.close()
    offsets = [f.get(timeout=5).offset for f in futures]
    if acks != 0:
        assert offsets == list(range(10))
    records = _consume(bootstrap, unique, 10)
    assert [(r.offset, r.key, r.value) for r in records] == [(i, b"k%d" % i, b"value-%d" % i) for i in range(10)]


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_compression(bootstrap: str, unique: str, codec: str | None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=20)
    for i in range(50):
        producer.send(unique, b"payload %d " % i * 20)
    producer.flush()
    producer.close()
    records = _consume(bootstrap, unique, 40, offset=10)
    assert [r.offset for r in records] == list(range(10, 50))
    assert records[0].value == b"payload 10 " * 20


def test_kafka_python_idempotent_producer_state(bootstrap: str, unique: str, wiregate_server: Any) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)  # idempotence is kafka-python 3's default
    for i in range(5):
        producer.send(unique, b"%d" % i).get(timeout=5)
    producer.close()
    partition = wiregate_server.broker.topics.get(unique).partitions[0]
    [entry] = partition.producers.values()
    assert entry.epoch == 0
    assert entry.last_seq == 4
    assert [r.value for r in _consume(bootstrap, unique, 5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_long_poll_wakes_when_data_arrives(bootstrap: str, unique: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(unique, b"first").get(timeout=5)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=5000, enable_auto_commit=False)
    tp = TopicPartition(unique, 0)
    consumer.assign([tp])
    consumer.seek(tp, 1)
    consumer.poll(timeout_ms=100)  # connects; its fetch is now parked on the partition

    def later() -> None:
        time.sleep(0.3)
        started = time.monotonic()
        producer.send(unique, b"second").get(timeout=5)
        # the parked fetch on another connection did not hold this produce up
        assert time.monotonic() - started < 1.0

    thread = threading.Thread(target=later)
    started = time.monotonic()
    thread.start()
    got: list[Any] = []
    while not got and time.monotonic() - started < 10:
        for batch in consumer.poll(timeout_ms=4000).values():
            got.extend(batch)
    elapsed = time.monotonic() - started
    thread.join()
    consumer.close()
    producer.close()
    assert [r.value for r in got] == [b"second"]
    assert elapsed < 3.0


def test_list_offsets_by_time_and_ends(bootstrap: str, unique: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    for i in range(10):
        producer.send(unique, b"%d" % i, timestamp_ms=1_000_000 + i * 1000)
    producer.flush()
    producer.send(unique, b"late", timestamp_ms=1_050_000).get(timeout=5)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    tp = TopicPartition(unique, 0)
    try:
        assert consumer.beginning_offsets([tp]) == {tp: 0}
        assert consumer.end_offsets([tp]) == {tp: 11}
        found = consumer.offsets_for_times({tp: 1_003_500})[tp]
        assert (found.offset, found.timestamp) == (4, 1_004_000)
        found = consumer.offsets_for_times({tp: 1_000_000})[tp]
        assert (found.offset, found.timestamp) == (0, 1_000_000)
        found = consumer.offsets_for_times({tp: 1_020_000})[tp]
        assert (found.offset, found.timestamp) == (10, 1_050_000)
        assert consumer.offsets_for_times({tp: 2_000_000})[tp] is None
    finally:
        consumer.close()


def test_delete_records(bootstrap: str, unique: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(10):
        producer.send(unique, b"%d" % i).get(timeout=5)
    producer.close()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    tp = TopicPartition(unique, 0)
    try:
        result = admin.delete_records({tp: 6})
        assert result[tp]["low_watermark"] == 6
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        assert consumer.beginning_offsets([tp]) == {tp: 6}
    finally:
        consumer.close()
    assert [r.offset for r in _consume(bootstrap, unique, 4)] == [6, 7, 8, 9]


def test_large_message_near_one_mib(bootstrap: str, unique: str) -> None:
    value = bytes(range(256)) * 4000  # 1,024,000 bytes
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_100_000)
    assert producer.send(unique, value).get(timeout=10).offset == 0
    producer.send(unique, b"small").get(timeout=5)
    producer.close()
    records = _consume(bootstrap, unique, 2)
    assert [len(r.value) for r in records] == [len(value), 5]
    assert records[0].value == value


def test_message_too_large(bootstrap: str, unique: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=3_000_000, retries=0)
    with pytest.raises(MessageSizeTooLargeError):
        producer.send(unique, b"x" * 1_100_000).get(timeout=10)
    assert producer.send(unique, b"fits").get(timeout=5).offset == 0
    producer.close()


def test_log_append_time_topic(bootstrap: str, unique: str, wiregate_server: Any) -> None:
    wiregate_server.call(wiregate_server.broker.topics.create, unique, 1, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    metadata = producer.send(unique, b"v", timestamp_ms=1_000).get(timeout=5)
    producer.close()
    assert metadata.timestamp >= before
    [record] = _consume(bootstrap, unique, 1)
    assert record.timestamp_type == 1
    assert record.timestamp == metadata.timestamp


# ------------------------------------------------------------ aiokafka
@pytest.mark.parametrize("codec", CODECS)
def test_aiokafka_round_trip(bootstrap: str, unique: str, codec: str | None) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    async def run() -> list[Any]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, enable_idempotence=True, linger_ms=10)
        await producer.start()
        try:
            sent = [await producer.send(unique, b"aio-%d" % i) for i in range(20)]
            offsets = [(await f).offset for f in sent]
        finally:
            await producer.stop()
        assert offsets == list(range(20))
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
        await consumer.start()
        try:
            tp = AioTopicPartition(unique, 0)
            consumer.assign([tp])
            consumer.seek(tp, 5)
            got: list[Any] = []
            deadline = time.monotonic() + 10
            while len(got) < 15 and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    got.extend(batch)
            end = await consumer.end_offsets([tp])
            assert end == {tp: 20}
            return got
        finally:
            await consumer.stop()

    got = asyncio.run(run())
    assert [(m.offset, m.value) for m in got] == [(i, b"aio-%d" % i) for i in range(5, 20)]


# ------------------------------------------------------------ confluent-kafka
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_round_trip(bootstrap: str, unique: str, codec: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "enable.idempotence": True, "linger.ms": 5})
    delivered: list[int] = []

    def on_delivery(error: Any, message: Any) -> None:
        assert error is None, error
        delivered.append(message.offset())

    for i in range(30):
        producer.produce(unique, b"ck-%d" % i, key=b"%d" % i, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    assert sorted(delivered) == list(range(30))
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": unique, "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        consumer.assign([confluent_kafka.TopicPartition(unique, 0, 10)])
        got: list[Any] = []
        deadline = time.monotonic() + 10
        while len(got) < 20 and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                got.append(message)
    finally:
        consumer.close()
    assert [(m.offset(), m.value()) for m in got] == [(i, b"ck-%d" % i) for i in range(10, 30)]


def test_confluent_list_offsets(bootstrap: str, unique: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i, stamp in enumerate([5_000, 9_000, 7_000, 8_000]):
        producer.produce(unique, b"%d" % i, timestamp=stamp)
        producer.flush(5)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = confluent_kafka.TopicPartition(unique, 0)
    specs = {
        "earliest": OffsetSpec.earliest(),
        "latest": OffsetSpec.latest(),
        "max": OffsetSpec.max_timestamp(),
        "time": OffsetSpec.for_timestamp(7_500),
    }
    answers = {}
    for name, spec in specs.items():
        result = admin.list_offsets({tp: spec})[tp].result(timeout=10)
        answers[name] = (result.offset, result.timestamp)
    assert answers["earliest"][0] == 0
    assert answers["latest"][0] == 4
    assert answers["max"] == (1, 9_000)
    assert answers["time"] == (1, 9_000)


# ------------------------------------------------------------ kcat
@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")
def test_kcat_round_trip(bootstrap: str, unique: str) -> None:
    lines = [f"line {i}" for i in range(20)]
    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", unique, "-z", "lz4"], input="\n".join(lines) + "\n", text=True, check=True, timeout=20)
    out = subprocess.run(
        ["kcat", "-b", bootstrap, "-C", "-t", unique, "-o", "beginning", "-e", "-q", "-f", "%o %s\n"],
        capture_output=True, text=True, check=True, timeout=20,
    )
    assert out.stdout.splitlines() == [f"{i} line {i}" for i in range(20)]


# ------------------------------------------------------------ sans-IO
def _request(api_key: int, version: int, correlation_id: int = 1, **fields: Any) -> bytes:
    cls = request_class(api_key, version)
    header_cls = cls.__header_schema__
    buffer = io.BytesIO()
    header = dict(request_api_key=api_key, request_api_version=version, correlation_id=correlation_id)
    if "client_id" in header_cls.__dataclass_fields__:
        header["client_id"] = "test"
    entity_writer(header_cls)(buffer, header_cls(**header))
    entity_writer(cls)(buffer, build(cls, **fields))
    body = buffer.getvalue()
    return struct.pack(">i", len(body)) + body


def _responses(api_key: int, version: int, data: bytes) -> list[Any]:
    cls = response_class(api_key, version)
    out = []
    while data:
        size = struct.unpack_from(">i", data)[0]
        frame, data = data[4 : 4 + size], data[4 + size :]
        out.append(entity_reader(cls)(frame, 4 + (1 if cls.__flexible__ else 0))[0])
    return out


class Wire:
    """A KafkaConnection on a broker with a fake clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.broker = Broker(Scheduler(clock=lambda: self.now, wall=lambda: 1_700_000_000.0))
        self.conn = KafkaConnection(self.broker, peer="test")

    def call(self, api_key: int, version: int, **fields: Any) -> list[Any]:
        self.conn.receive_data(_request(api_key, version, **fields))
        return _responses(api_key, version, self.conn.data_to_send())

    def produce(self, topic: str, batch: bytes, *, version: int = 9, partition: int = 0, acks: int = -1) -> Any:
        [response] = self.call(0, version, acks=acks, timeout=1000, topic_data=[dict(name=topic, partition_data=[dict(index=partition, records=batch)])])
        return response.responses[0].partition_responses[0]

    def fetch(self, topic: str, offset: int, *, version: int = 11, max_wait: int = 0, min_bytes: int = 1, **fields: Any) -> list[Any]:
        return self.call(
            1, version, max_wait=max_wait, min_bytes=min_bytes, max_bytes=fields.pop("max_bytes", 1 << 20),
            topics=[dict(topic=topic, partitions=[dict(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)])],
            **fields,
        )


def _batch(
    values: list[bytes] | None = None,
    *,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    codec: int = 0,
    transactional: bool = False,
    base_timestamp: int = 1_000,
    timestamp_step: int = 10,
) -> bytes:
    """A record batch encoded by kafka-python's own builder."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=transactional, producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=base_sequence, batch_size=1 << 30,
    )
    for i, value in enumerate([b"a", b"b", b"c"] if values is None else values):
        builder.append(i, timestamp=base_timestamp + i * timestamp_step, key=None, value=value, headers=[])
    return bytes(builder.build())


@pytest.fixture
def wire() -> Wire:
    return Wire()


def test_wire_idempotent_retry_returns_original_offset(wire: Wire) -> None:
    first = _batch(producer_id=9, producer_epoch=0, base_sequence=0)
    second = _batch(producer_id=9, producer_epoch=0, base_sequence=3)
    assert wire.produce("t", first).base_offset == 0
    assert wire.produce("t", second).base_offset == 3
    retried = wire.produce("t", first)
    assert (retried.error_code, retried.base_offset) == (ErrorCode.none, 0)
    assert wire.broker.topics.get("t").partitions[0].high_watermark == 6
    gap = wire.produce("t", _batch(producer_id=9, producer_epoch=0, base_sequence=10))
    assert gap.error_code == ErrorCode.out_of_order_sequence_number
    stale = wire.produce("t", _batch(producer_id=9, producer_epoch=0, base_sequence=6))
    assert stale.error_code == ErrorCode.none
    wire.produce("t", _batch(producer_id=9, producer_epoch=1, base_sequence=0))
    fenced = wire.produce("t", _batch(producer_id=9, producer_epoch=0, base_sequence=9))
    assert fenced.error_code == ErrorCode.invalid_producer_epoch


def test_wire_produce_errors(wire: Wire) -> None:
    corrupt = bytearray(_batch())
    corrupt[-1] ^= 1
    assert wire.produce("t", bytes(corrupt)).error_code == ErrorCode.corrupt_message
    assert wire.produce("t", _batch(), partition=3).error_code == ErrorCode.unknown_topic_or_partition
    assert wire.produce("bad name!", _batch()).error_code == ErrorCode.invalid_topic_exception
    assert wire.produce("t", _batch([b"x" * 1000], codec=4), version=6).error_code == ErrorCode.unsupported_compression_type
    transactional = wire.produce("t", _batch(producer_id=1, producer_epoch=0, base_sequence=0, transactional=True))
    assert transactional.error_code == ErrorCode.transactional_id_authorization_failed
    [response] = wire.call(0, 9, acks=2, timeout=1000, topic_data=[dict(name="t", partition_data=[dict(index=0, records=_batch())])])
    assert response.responses[0].partition_responses[0].error_code == ErrorCode.invalid_required_acks
    wire.broker.kafka_configs["auto.create.topics.enable"] = "false"
    assert wire.produce("missing", _batch()).error_code == ErrorCode.unknown_topic_or_partition
    assert wire.broker.topics.get("t").partitions[0].high_watermark == 0


def test_wire_acks_zero_sends_nothing_and_closes_on_error(wire: Wire) -> None:
    assert wire.call(0, 9, acks=0, timeout=1000, topic_data=[dict(name="t", partition_data=[dict(index=0, records=_batch())])]) == []
    assert wire.broker.topics.get("t").partitions[0].high_watermark == 3
    assert not wire.conn.closed
    wire.call(0, 9, acks=0, timeout=1000, topic_data=[dict(name="t", partition_data=[dict(index=7, records=_batch())])])
    assert wire.conn.closed


def test_wire_produce_every_version(wire: Wire) -> None:
    for version in range(3, 13):
        response = wire.produce("t", _batch(), version=version)
        assert (response.error_code, response.base_offset) == (ErrorCode.none, (version - 3) * 3)


def test_wire_stored_batch_has_offset_and_epoch_patched(wire: Wire) -> None:
    wire.produce("t", _batch())
    wire.produce("t", _batch([b"x"]))
    [response] = wire.fetch("t", 3)
    records = response.responses[0].partitions[0].records
    assert struct.unpack_from(">qii", records) == (3, len(records) - 12, 0)


def test_wire_fetch_errors_and_watermarks(wire: Wire) -> None:
    wire.produce("t", _batch())
    wire.broker.topics.get("t").partitions[0].delete_records(2)
    [response] = wire.fetch("t", 1)
    data = response.responses[0].partitions[0]
    assert (data.error_code, data.high_watermark, data.log_start_offset) == (ErrorCode.offset_out_of_range, -1, -1)
    [response] = wire.fetch("t", 2)
    data = response.responses[0].partitions[0]
    assert (data.error_code, data.high_watermark, data.last_stable_offset, data.log_start_offset) == (ErrorCode.none, 3, 3, 2)
    assert len(data.records) == len(_batch())  # the whole batch, from before the start offset too
    [response] = wire.fetch("t", 4)
    assert response.responses[0].partitions[0].error_code == ErrorCode.offset_out_of_range
    [response] = wire.fetch("nope", 0)
    assert response.responses[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


def test_wire_fetch_by_topic_id(wire: Wire) -> None:
    import uuid

    wire.produce("t", _batch())
    topic_id = wire.broker.topics.get("t").id
    for key, expected in ((topic_id, ErrorCode.none), (uuid.uuid4(), ErrorCode.unknown_topic_id)):
        [response] = wire.call(
            1, 13, max_wait=0, min_bytes=1, max_bytes=1 << 20,
            topics=[dict(topic_id=key, partitions=[dict(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
        )
        assert response.responses[0].topic_id == key
        assert response.responses[0].partitions[0].error_code == expected


def test_wire_fetch_limits_return_whole_batches(wire: Wire) -> None:
    for _ in range(3):
        wire.produce("t", _batch([b"y" * 100]))
    size = len(_batch([b"y" * 100]))
    [response] = wire.fetch("t", 0, max_bytes=10)
    assert len(response.responses[0].partitions[0].records) == size  # at least one whole batch
    [response] = wire.fetch("t", 0, max_bytes=2 * size + 5)
    assert len(response.responses[0].partitions[0].records) == 2 * size


def test_wire_fetch_sessions(wire: Wire) -> None:
    wire.produce("t", _batch())
    for epoch in (-1, 0):
        [response] = wire.fetch("t", 0, version=12, session_id=0, session_epoch=epoch)
        assert (response.error_code, response.session_id) == (ErrorCode.none, 0)
    [response] = wire.fetch("t", 0, version=12, session_id=5, session_epoch=1)
    assert response.error_code == ErrorCode.fetch_session_id_not_found
    assert response.responses == ()


def test_wire_long_poll_on_fake_clock(wire: Wire) -> None:
    wire.produce("t", _batch())
    assert wire.fetch("t", 3, max_wait=500) == []  # parked
    assert wire.broker.topics.get("t").partitions[0].waiters
    other = KafkaConnection(wire.broker, peer="other")
    other.receive_data(_request(0, 9, acks=1, timeout=1000, topic_data=[dict(name="t", partition_data=[dict(index=0, records=_batch([b"z"]))])]))
    assert other.data_to_send()
    [response] = _responses(1, 11, wire.conn.data_to_send())
    assert len(response.responses[0].partitions[0].records) == len(_batch([b"z"]))
    assert not wire.broker.topics.get("t").partitions[0].waiters
    # min_bytes not reached: the timer answers with what there is
    assert wire.fetch("t", 4, max_wait=500, min_bytes=10_000) == []
    other.receive_data(_request(0, 9, acks=1, timeout=1000, topic_data=[dict(name="t", partition_data=[dict(index=0, records=_batch([b"w"]))])]))
    assert other.data_to_send()
    assert wire.conn.data_to_send() == b""
    wire.now = 0.6
    wire.broker.scheduler.run_due()
    [response] = _responses(1, 11, wire.conn.data_to_send())
    assert response.responses[0].partitions[0].high_watermark == 5
    # a parked fetch is dropped with its connection
    wire.fetch("t", 5, max_wait=500)
    wire.conn.connection_lost()
    assert not wire.broker.topics.get("t").partitions[0].waiters


def test_wire_list_offsets_and_epochs(wire: Wire) -> None:
    [response] = wire.call(2, 10, replica_id=-1, isolation_level=0, timeout=1000, topics=[dict(name="t", partitions=[dict(partition_index=0, timestamp=-1)])])
    assert response.topics[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition
    wire.produce("t", _batch(base_timestamp=100, timestamp_step=10))
    wire.produce("t", _batch(base_timestamp=50, timestamp_step=100))
    queries = {-2: (0, -1), -1: (6, -1), -3: (5, 250), 115: (2, 120), 121: (4, 150), 300: (-1, -1)}
    for stamp, expected in queries.items():
        [response] = wire.call(2, 10, replica_id=-1, isolation_level=0, timeout=1000, topics=[dict(name="t", partitions=[dict(partition_index=0, timestamp=stamp)])])
        data = response.topics[0].partitions[0]
        assert (data.offset, data.timestamp) == expected, stamp
    [response] = wire.call(23, 4, topics=[dict(topic="t", partitions=[dict(partition=0, leader_epoch=0, current_leader_epoch=0)])])
    data = response.topics[0].partitions[0]
    assert (data.error_code, data.leader_epoch, data.end_offset) == (ErrorCode.none, 0, 6)
    [response] = wire.call(23, 4, topics=[dict(topic="t", partitions=[dict(partition=0, leader_epoch=0, current_leader_epoch=3)])])
    assert response.topics[0].partitions[0].error_code == ErrorCode.unknown_leader_epoch


def test_wire_delete_records(wire: Wire) -> None:
    wire.produce("t", _batch())
    wire.produce("t", _batch())

    def delete(offset: int) -> Any:
        [response] = wire.call(21, 2, timeout=1000, topics=[dict(name="t", partitions=[dict(partition_index=0, offset=offset)])])
        return response.topics[0].partitions[0]

    assert (delete(4).error_code, delete(4).low_watermark) == (ErrorCode.none, 4)
    assert delete(2).low_watermark == 4
    assert delete(7).error_code == ErrorCode.offset_out_of_range
    assert delete(-1).low_watermark == 6
    assert wire.broker.topics.get("t").partitions[0].log.bytes == 0


def test_wire_init_producer_id(wire: Wire) -> None:
    [first] = wire.call(22, 4, transactional_id=None, transaction_timeout=60000, producer_id=-1, producer_epoch=-1)
    [second] = wire.call(22, 0, transactional_id=None, transaction_timeout=60000)
    assert (first.error_code, first.producer_epoch) == (ErrorCode.none, 0)
    assert second.producer_id == first.producer_id + 1
    [refused] = wire.call(22, 5, transactional_id="tx", transaction_timeout=60000, producer_id=-1, producer_epoch=-1)
    assert refused.error_code == ErrorCode.transactional_id_authorization_failed


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_wire_list_offsets_decodes_compressed_batches(wire: Wire, codec: int) -> None:
    batch = _batch([b"v" * 200] * 5, codec=codec, base_timestamp=1_000, timestamp_step=100)
    assert batch[22] & 0x07 == codec
    wire.produce("t", _batch())
    wire.produce("t", batch)
    for stamp, expected in {1_150: (5, 1_200), 1_400: (7, 1_400), -3: (7, 1_400)}.items():
        [response] = wire.call(2, 10, replica_id=-1, isolation_level=0, timeout=1000, topics=[dict(name="t", partitions=[dict(partition_index=0, timestamp=stamp)])])
        data = response.topics[0].partitions[0]
        assert (data.offset, data.timestamp) == expected, stamp
