"""The hand-written Produce request reader reads what kio reads, and the
connection's reused receive buffer hands every request over intact however
the bytes are split into reads."""

from __future__ import annotations

import random
import struct
import time

import pytest
from kio.schema.errors import ErrorCode

from wiregate.core import Broker
from wiregate.kafka_wire import KafkaConnection, records
from wiregate.kafka_wire.protocol import decode_produce, decode_request

from .test_kafka_connection import decode_response, request_bytes, responses


def _batch(rng: random.Random, count: int, size: int) -> bytes:
    now = int(time.time() * 1000)
    return bytes(records.encode_batch([(b"k%d" % i, bytes(rng.randrange(256) for _ in range(size)), [], now) for i in range(count)]))


def _random_produce(version: int, rng: random.Random) -> dict:
    topics = []
    for t in range(rng.randint(0, 3)):
        partitions = []
        for p in range(rng.randint(0, 3)):
            data = rng.choice([None, b"", _batch(rng, rng.randint(1, 3), rng.randint(0, 40)), bytes(rng.randint(1, 30))])
            partitions.append(dict(index=rng.randint(-1, 2**31 - 1), records=data))
        topics.append(dict(name=rng.choice(["t", "orders", "ü-topic", "x" * 200, ""]) + str(t), partition_data=partitions))
    return dict(
        transactional_id=rng.choice([None, "", "tx-ü"]),
        acks=rng.choice([-1, 0, 1, 2]),
        timeout=rng.choice([0, 30000, 2**31 - 1]),
        topic_data=topics,
    )


def _fields(client_id, request) -> tuple:
    return (
        client_id,
        request.transactional_id,
        request.acks,
        request.timeout,
        [
            (t.name, [(p.index, None if p.records is None else bytes(p.records)) for p in t.partition_data])
            for t in request.topic_data
        ],
    )


@pytest.mark.parametrize("version", range(3, 13))
def test_hand_read_produce_requests_equal_kio(version: int) -> None:
    rng = random.Random(version)
    for n in range(150):
        client_id = rng.choice([None, "", "rdkafka", "ü" * 3])
        payload = request_bytes(0, version, correlation_id=n, client_id=client_id, **_random_produce(version, rng))[4:]
        header, expected = decode_request(0, version, payload)
        decoded = decode_produce(memoryview(payload), version)
        assert decoded is not None
        assert _fields(*decoded) == _fields(header.client_id, expected)
        for topic in decoded[1].topic_data:  # records are views of the payload, not copies
            assert all(p.records is None or isinstance(p.records, memoryview) for p in topic.partition_data)


@pytest.mark.parametrize("version", [3, 8, 9, 12])
def test_hand_reader_leaves_odd_requests_to_kio(version: int) -> None:
    rng = random.Random(version)
    payload = request_bytes(0, version, **_random_produce(version, rng))[4:]
    for cut in range(len(payload)):  # truncated anywhere: never raises, never half-reads
        assert decode_produce(memoryview(payload[:cut]), version) is None
    assert decode_produce(memoryview(payload + b"\x00"), version) is None  # trailing bytes
    assert decode_produce(memoryview(payload), 2) is None  # versions it does not know
    if version >= 9:
        # a tagged field at the end of the body: kio reads those
        tagged = payload[:-1] + b"\x01\x05\x01\x00"
        assert decode_produce(memoryview(tagged), version) is None


def _produce(conn_id: int, batch: bytes, partition: int = 0, version: int = 9) -> bytes:
    return request_bytes(
        0, version, correlation_id=conn_id, acks=-1, timeout=1000,
        topic_data=[dict(name="t", partition_data=[dict(index=partition, records=batch)])],
    )


def _fetch(correlation_id: int, offset: int, partition: int = 0) -> bytes:
    return request_bytes(
        1, 11, correlation_id=correlation_id, max_wait=0, min_bytes=1, max_bytes=1 << 30, isolation_level=0,
        topics=[dict(topic="t", partitions=[dict(partition=partition, fetch_offset=offset, partition_max_bytes=1 << 30)])],
    )


@pytest.mark.parametrize("seed", range(6))
def test_requests_split_into_any_reads_are_stored_intact(seed: int) -> None:
    rng = random.Random(seed)
    broker = Broker()
    broker.topics.create("t", 2)
    conn = KafkaConnection(broker, peer="test")
    batches = [_batch(rng, rng.randint(1, 50), rng.choice([10, 100, 3000])) for _ in range(12)]
    stream = b"".join(_produce(i, b, partition=i % 2) for i, b in enumerate(batches))
    out = b""
    pos = 0
    while pos < len(stream):  # reads of 1 byte up to several requests
        step = rng.choice([1, 3, 7, 100, 4096, 65536, 300_000])
        conn.receive_data(stream[pos : pos + step])
        out += conn.data_to_send()
        pos += step
    frames = responses(out)
    assert [decode_response(0, 9, f)[0] for f in frames] == list(range(12))
    for frame in frames:
        body = decode_response(0, 9, frame)[1]
        assert body.responses[0].partition_responses[0].error_code == ErrorCode.none
    for partition in (0, 1):
        conn.receive_data(_fetch(100 + partition, 0, partition))
        [frame] = responses(conn.data_to_send())
        data = decode_response(1, 11, frame)[1].responses[0].partitions[0]
        sent = [b for i, b in enumerate(batches) if i % 2 == partition]
        got = bytes(data.records)
        offset = 0
        for batch in sent:  # the client's bytes, base offset patched in
            assert records.base_offset(got) == offset
            assert got[8:12] == batch[8:12] and got[16 : len(batch)] == batch[16:]
            offset += records.record_count(batch)
            got = got[len(batch) :]
        assert got == b""


def test_a_large_request_is_received_into_one_buffer_sized_for_it() -> None:
    rng = random.Random(1)
    broker = Broker()
    broker.topics.create("t", 1)
    conn = KafkaConnection(broker, peer="test")
    batch = _batch(rng, 300, 3000)  # ~900 KB, as librdkafka's largest requests
    request = _produce(1, batch)
    for start in range(0, len(request), 65536):
        conn.receive_data(request[start : start + 65536])
    [frame] = responses(conn.data_to_send())
    assert decode_response(0, 9, frame)[1].responses[0].partition_responses[0].error_code == ErrorCode.none
    assert len(conn._buf) == len(request)  # allocated once, for the whole request
    buffer = conn._buf
    conn.receive_data(request[:10])
    conn.receive_data(request[10:])
    conn.data_to_send()
    assert conn._buf is buffer  # and reused for the next one


@pytest.mark.parametrize("announced", [3_000_000, 100_000_000])
def test_a_request_announcing_more_than_it_sends_allocates_only_what_arrives(announced: int) -> None:
    conn = KafkaConnection(Broker(), peer="test")
    conn.receive_data(struct.pack(">i", announced) + b"\x00" * 10)
    assert len(conn._buf) < 1 << 20
    assert not conn.closed


@pytest.mark.parametrize("version", [4, 11, 12, 13, 16, 17])
@pytest.mark.parametrize("unusual", [False, True])
def test_fetch_answers_with_unjoined_batches_equal_joined_ones(version: int, unusual: bool) -> None:
    import dataclasses

    from wiregate.kafka_wire.protocol import RecordParts, encode_response

    from .test_kafka_produce_encoding import _random_fetch

    rng = random.Random(version)
    for n in range(100):
        try:
            response = _random_fetch(version, rng, unusual=unusual)
        except (TypeError, ValueError):
            continue
        split = []
        for topic in response.responses:
            partitions = []
            for p in topic.partitions:
                if p.records and len(p.records) > 2:
                    cut = rng.randint(1, len(p.records) - 1)
                    p = dataclasses.replace(p, records=RecordParts([p.records[:cut], p.records[cut:]]))
                partitions.append(p)
            split.append(dataclasses.replace(topic, partitions=tuple(partitions)))
        parted = dataclasses.replace(response, responses=tuple(split))
        assert encode_response(parted, n) == encode_response(response, n)


def test_a_request_larger_than_the_preallocation_grows_as_it_arrives() -> None:
    rng = random.Random(2)
    broker = Broker()
    broker.topics.create("t", 1, {"max.message.bytes": str(8 << 20)})
    conn = KafkaConnection(broker, peer="test")
    batch = _batch(rng, 100, 50_000)  # ~5 MB
    request = _produce(1, batch) + _fetch(2, 0)
    for start in range(0, len(request), 65536):
        conn.receive_data(request[start : start + 65536])
    produced, fetched = responses(conn.data_to_send())
    assert decode_response(0, 9, produced)[1].responses[0].partition_responses[0].error_code == ErrorCode.none
    got = bytes(decode_response(1, 11, fetched)[1].responses[0].partitions[0].records)
    assert got[8:] == batch[8:] and records.base_offset(got) == 0


def test_wants_more_while_a_request_is_partly_received() -> None:
    broker = Broker()
    broker.topics.create("t", 1)
    conn = KafkaConnection(broker, peer="test")
    request = _produce(1, _batch(random.Random(3), 5, 100))
    assert not conn.wants_more
    conn.receive_data(request[:3])
    assert conn.wants_more  # not even the size yet
    conn.receive_data(request[3:-1])
    assert conn.wants_more
    conn.receive_data(request[-1:])
    assert not conn.wants_more and conn.data_to_send()
    conn.receive_data(request + request[:50])  # one whole, one begun
    assert conn.wants_more
    conn.reading_paused = True
    assert not conn.wants_more  # the gateway must not read past a pause


@pytest.mark.parametrize("seed", range(6))
def test_requests_read_straight_into_the_receive_buffer_are_stored_intact(seed: int) -> None:
    # the gateway's recv_into path: whenever the connection offers a view for
    # the rest of a large request, bytes are written there (in reads of any
    # size), otherwise they come through receive_data
    rng = random.Random(seed)
    broker = Broker()
    broker.topics.create("t", 1)
    conn = KafkaConnection(broker, peer="test")
    # small requests and ones of 150-900 KB
    batches = [_batch(rng, rng.randint(1, 300), 100) if i % 3 == 0 else _batch(rng, rng.randint(50, 300), 3000) for i in range(8)]
    stream = b"".join(_produce(i, b) for i, b in enumerate(batches))
    out = b""
    pos = direct = 0
    while pos < len(stream):
        view = conn.receive_buffer()
        step = rng.choice([1, 7, 4096, 65536, 300_000])
        if view is not None:
            with view:
                chunk = stream[pos : pos + min(step, len(view))]
                view[: len(chunk)] = chunk
            conn.received_into(len(chunk))
            direct += 1
        else:
            chunk = stream[pos : pos + step]
            conn.receive_data(chunk)
        pos += len(chunk)
        out += conn.data_to_send()
    assert direct  # the path was taken
    frames = responses(out)
    assert [decode_response(0, 9, f)[0] for f in frames] == list(range(8))
    conn.receive_data(_fetch(100, 0))
    [frame] = responses(conn.data_to_send())
    got = bytes(decode_response(1, 11, frame)[1].responses[0].partitions[0].records)
    offset = 0
    for batch in batches:
        assert records.base_offset(got) == offset
        assert got[16 : len(batch)] == batch[16:]
        offset += records.record_count(batch)
        got = got[len(batch) :]
    assert got == b""


def test_no_receive_buffer_for_small_or_oversized_requests() -> None:
    conn = KafkaConnection(Broker(), peer="test")
    assert conn.receive_buffer() is None  # nothing begun
    conn.receive_data(struct.pack(">i", 1000) + b"\x00" * 10)
    assert conn.receive_buffer() is None  # the rest is small: a normal read
    conn = KafkaConnection(Broker(), peer="test")
    conn.receive_data(struct.pack(">i", 50_000_000) + b"\x00" * 10)
    assert conn.receive_buffer() is None  # beyond the preallocation: it grows as bytes arrive
    conn = KafkaConnection(Broker(), peer="test")
    conn.receive_data(struct.pack(">i", 1_000_000) + b"\x00" * 10)
    view = conn.receive_buffer()
    assert view is not None and len(view) == 1_000_000 - 10
    view.release()
