"""Hostile Kafka input against the sans-IO connection: property-based and
mutation fuzzing (tests/fuzz/kafka.py), plus a regression test for every
crash the fuzzers found.

The invariants (tests/fuzz/kafka.py ``check``): nothing escapes
``receive_data`` or a timer, no "internal error" is logged, responses come
in request order and each decodes with kio for its API and version, and a
stream that breaks the framing or names an unknown API or version ends
with the connection closed.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from tests.fuzz import kafka
from tests.fuzz.common import crash_log
from wiregate.core import Broker
from wiregate.core.timers import Scheduler
from wiregate.kafka_wire import KafkaConnection, guard
from wiregate.kafka_wire.protocol import build, request_class
from wiregate.kafka_wire.registry import APIS


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def framed(api_key: int, version: int, body: bytes, correlation_id: int = 1) -> bytes:
    cls = request_class(api_key, version)
    buffer = io.BytesIO()
    header_cls = cls.__header_schema__
    fields = dict(request_api_key=api_key, request_api_version=version, correlation_id=correlation_id)
    if "client_id" in header_cls.__dataclass_fields__:
        fields["client_id"] = "t"
    entity_writer(header_cls)(buffer, header_cls(**fields))
    payload = buffer.getvalue() + body
    return struct.pack(">i", len(payload)) + payload


def request(api_key: int, version: int, correlation_id: int = 1, **fields) -> bytes:
    cls = request_class(api_key, version)
    buffer = io.BytesIO()
    entity_writer(cls)(buffer, build(cls, **fields))
    return framed(api_key, version, buffer.getvalue(), correlation_id)


def feed(data: bytes) -> tuple[KafkaConnection, bytes, list[str]]:
    conn = KafkaConnection(Broker(), peer="test")
    with crash_log() as log:
        conn.receive_data(data)
        out = conn.data_to_send()
        errors = log.take()
    return conn, out, errors


# ------------------------------------------------------------------ property-based
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.randoms(use_true_random=False))
def test_generated_connections_keep_every_invariant(rng: random.Random) -> None:
    clock = kafka.Clock()
    broker = Broker(Scheduler(clock=clock))
    with crash_log() as log:
        _sent, failures, _elapsed = kafka.run_case(rng, broker, clock, kafka.Generator(), 0, log)
    assert not failures, "\n".join(f.describe() for f in failures)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted((k, v) for k, a in APIS.items() for v in range(a.min_version, a.max_version + 1))), st.binary(max_size=80))
def test_every_api_and_version_with_a_random_body(api: tuple[int, int], body: bytes) -> None:
    data = framed(*api, body)
    conn, out, errors = feed(data)
    assert not errors
    assert not kafka.check(conn, data, out)


def test_valid_requests_of_every_api_and_version_pass_the_guard() -> None:
    rng = random.Random(1)
    pools = kafka.Pools()
    for key, api in APIS.items():
        for version in range(api.min_version, api.max_version + 1):
            cls = request_class(key, version)
            for _ in range(5):
                value = kafka.entity(rng, cls, pools)
                buffer = io.BytesIO()
                try:
                    entity_writer(cls)(buffer, value)
                except Exception:  # noqa: BLE001 - a value kio cannot write is not a request
                    continue
                guard.check(cls, buffer.getvalue(), 0)


def test_short_mutation_campaign() -> None:
    result = kafka.campaign(4000, seed=20240601, bystander_every=100, fresh_broker_every=150)
    assert result["counts"]["requests"] >= 4000
    assert not result["failures"], "\n".join(f.describe() for f in result["failures"][:10])


# ------------------------------------------------------------------ regressions
def test_lying_compact_array_count_does_not_abort_the_process() -> None:
    # Found by the fuzzer: kio reserves memory for an array from its count
    # before reading it; a Metadata v12 request claiming ~4 billion topics in
    # 5 bytes asked for 32 GB and the Rust allocator aborted the process.
    # Run in a child: without the guard it dies instead of failing.
    code = (
        "import struct\n"
        "from tests.unit.test_fuzz_kafka import framed, feed, uvarint\n"
        "conn, out, errors = feed(framed(3, 12, uvarint(4_000_000_000)))\n"
        "assert conn.closed and out == b'' and not errors, (conn.closed, out, errors)\n"
        "print('survived')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(uvarint(2**35 - 1), id="compact-array-max"),
        pytest.param(struct.pack(">i", 2**31 - 1), id="legacy-array-max"),
        pytest.param(uvarint(2) + uvarint(2**34) + b"t", id="compact-string-over-the-end"),
        pytest.param(uvarint(1) + uvarint(0) + uvarint(2**20), id="tagged-fields-count-over-the-end"),
    ],
)
def test_counts_and_lengths_past_the_end_are_refused_before_kio(body: bytes) -> None:
    cls = request_class(3, 0 if body.startswith(b"\x7f") else 12)
    with pytest.raises(guard.BadLengths):
        guard.check(cls, body, 0)


@pytest.mark.parametrize(
    ("api_key", "version", "body"),
    [
        pytest.param(15, 0, struct.pack(">i", -1), id="DescribeGroups-null-groups"),
        pytest.param(0, 3, struct.pack(">hhii", -1, 1, 1000, -1), id="Produce-null-topic-data"),
        pytest.param(10, 4, b"\x00" + uvarint(0) + b"\x00", id="FindCoordinator-null-keys"),
    ],
)
def test_null_where_the_schema_has_none_closes_the_connection(api_key: int, version: int, body: bytes) -> None:
    # Found by the fuzzer: kio decodes a null non-nullable array or string as
    # None and the handlers raised TypeError (an internal error); Kafka's
    # parser refuses such a request and closes the connection.
    conn, out, errors = feed(framed(api_key, version, body))
    assert not errors
    assert conn.closed and out == b""


def test_metadata_v11_topic_without_a_name_closes_the_connection() -> None:
    # Found by the fuzzer: v10-11 requests may carry a null topic name but the
    # response cannot; the name was echoed and the encoder failed (internal
    # error).  Kafka refuses the request ("Topic name can not be null").
    data = request(3, 11, topics=[dict(name=None)], allow_auto_topic_creation=True)
    conn, out, errors = feed(data)
    assert not errors
    assert conn.closed and out == b""


def test_create_topics_over_ten_thousand_partitions_is_a_policy_violation() -> None:
    # Found by the fuzzer: num_partitions=2**31-1 made the broker build two
    # billion partitions.  Kafka 4.0 refuses more than 10000 per request.
    data = request(19, 7, topics=[dict(name="big", num_partitions=2**31 - 1, replication_factor=1, assignments=[], configs=[])], timeout_ms=1000)
    conn, out, errors = feed(data)
    assert not errors and not conn.closed
    [frame] = kafka.split_responses(out)[0]
    response = kafka.decode_response(19, 7, frame)
    assert [(t.name, t.error_code, t.error_message) for t in response.topics] == [
        ("big", ErrorCode.policy_violation, "Excessively large number of partitions per request.")
    ]
    assert "big" not in conn.broker.topics


def test_create_partitions_over_ten_thousand_is_a_policy_violation() -> None:
    conn = KafkaConnection(Broker(), peer="test")
    conn.broker.topics.create("small", 1)
    conn.receive_data(request(37, 3, topics=[dict(name="small", count=2**31 - 1, assignments=None)], timeout_ms=1000, validate_only=False))
    [frame] = kafka.split_responses(conn.data_to_send())[0]
    response = kafka.decode_response(37, 3, frame)
    assert [(r.name, r.error_code) for r in response.results] == [("small", ErrorCode.policy_violation)]
    assert len(conn.broker.topics.get("small").partitions) == 1
