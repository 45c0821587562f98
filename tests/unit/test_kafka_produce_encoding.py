"""The hand-written Produce answer encoder writes exactly what kio writes, in every version."""

from __future__ import annotations

import random

import pytest

from wiregate.kafka_wire import protocol
from wiregate.kafka_wire.apis.produce import append_time
from wiregate.kafka_wire.protocol import build, response_class


def _kio_bytes(response, correlation_id: int) -> bytes:
    parts = protocol._Parts()
    parts.append(b"")
    parts.append(protocol._size.pack(correlation_id))
    cls = type(response)
    if cls.__flexible__:
        parts.append(b"\x00")
    protocol._writer(cls)(parts, response)
    parts[0] = protocol._size.pack(sum(map(len, parts)))
    return b"".join(parts)


def _random_response(version: int, rng: random.Random, *, unusual: bool = False):
    topics = []
    for t in range(rng.randint(0, 3)):
        partitions = []
        for p in range(rng.randint(0, 4)):
            entry = dict(
                index=rng.randint(0, 2**31 - 1),
                error_code=rng.choice([0, 6, 10, 87]),
                base_offset=rng.choice([-1, 0, rng.randint(0, 2**62)]),
                log_append_time=append_time(rng.choice([-1, 1_700_000_000_000 + rng.randint(0, 10**9)])),
                log_start_offset=rng.choice([-1, rng.randint(0, 2**40)]),
            )
            if unusual and rng.random() < 0.5:
                entry["record_errors"] = [dict(batch_index=1, batch_index_error_message="bad")]
                entry["error_message"] = "refused"
            if unusual and version >= 10 and rng.random() < 0.5:
                entry["current_leader"] = dict(leader_id=0, leader_epoch=3)
            partitions.append(entry)
        topics.append(dict(name=rng.choice(["t", "orders", "ü-topic", "x" * 200]) + str(t), partition_responses=partitions))
    fields = dict(responses=topics, throttle_time=rng.choice([0, 1000, 12345]))
    if unusual and version >= 10 and rng.random() < 0.5:
        fields["node_endpoints"] = [dict(node_id=0, host="h", port=9092, rack=None)]
    return build(response_class(0, version), **fields)


@pytest.mark.parametrize("version", range(3, 13))
@pytest.mark.parametrize("unusual", [False, True])
def test_fast_produce_answers_equal_kio(version: int, unusual: bool) -> None:
    rng = random.Random(version * 7 + unusual)
    fast_used = 0
    for n in range(200):
        response = _random_response(version, rng, unusual=unusual)
        parts = protocol._Parts()
        fast_used += protocol._write_produce_response(parts, response, type(response).__flexible__)
        assert protocol.encode_response(response, n) == _kio_bytes(response, n)
    if not unusual:
        assert fast_used == 200  # the common answer never falls back


def _random_fetch(version: int, rng: random.Random, *, unusual: bool = False):
    import uuid

    topics = []
    for t in range(rng.randint(0, 3)):
        partitions = []
        for p in range(rng.randint(0, 3)):
            entry = dict(
                partition_index=rng.randint(0, 2**31 - 1),
                error_code=rng.choice([0, 1, 6]),
                high_watermark=rng.randint(-1, 2**40),
                last_stable_offset=rng.randint(-1, 2**40),
                log_start_offset=rng.randint(-1, 2**40),
                aborted_transactions=rng.choice([None, [], [dict(producer_id=7, first_offset=3)] * rng.randint(1, 3)]),
                preferred_read_replica=rng.choice([-1, 0]),
                records=rng.choice([None, b"", bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))]),
            )
            if unusual and version >= 12 and rng.random() < 0.5:
                entry[rng.choice(["diverging_epoch", "current_leader", "snapshot_id"])] = (
                    dict(epoch=1, end_offset=5) if rng.random() < 0.34 else dict(leader_id=0, leader_epoch=1) if rng.random() < 0.5 else dict(end_offset=4, epoch=2)
                )
            partitions.append(entry)
        topics.append(dict(topic=f"topic-{t}", topic_id=uuid.UUID(int=rng.getrandbits(128)), partitions=partitions))
    fields = dict(responses=topics, throttle_time=rng.choice([0, 1000]), error_code=rng.choice([0, 70]), session_id=rng.choice([0, 123]))
    if unusual and version >= 16 and rng.random() < 0.5:
        fields["node_endpoints"] = [dict(node_id=0, host="h", port=9092, rack=None)]
    return build(response_class(1, version), **fields)


@pytest.mark.parametrize("version", range(4, 18))
@pytest.mark.parametrize("unusual", [False, True])
def test_fast_fetch_answers_equal_kio(version: int, unusual: bool) -> None:
    rng = random.Random(version * 11 + unusual)
    fast_used = 0
    for n in range(200):
        try:
            response = _random_fetch(version, rng, unusual=unusual)
        except (TypeError, ValueError):
            continue  # a combination the version's schema does not have
        parts = protocol._Parts()
        fast_used += protocol._write_fetch_response(parts, response, type(response).__flexible__)
        assert protocol.encode_response(response, n) == _kio_bytes(response, n)
    if not unusual:
        assert fast_used == 200
