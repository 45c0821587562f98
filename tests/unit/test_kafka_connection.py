"""The Kafka connection's framing, without sockets: size prefixes, request
headers, ApiVersions and its v0 fallback, in-order deferred responses, and
the inputs that close a connection (as Kafka closes it)."""

from __future__ import annotations

import io
import struct

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from wiregate.core import Broker
from wiregate.kafka_wire import KafkaConnection
from wiregate.kafka_wire.protocol import MAX_REQUEST_SIZE, request_class, response_class
from wiregate.kafka_wire.registry import KAFKA_4_0_RANGES, advertised


def request_bytes(api_key: int, version: int, correlation_id: int = 1, client_id: str | None = "test", **fields) -> bytes:
    cls = request_class(api_key, version)
    header_cls = cls.__header_schema__
    buffer = io.BytesIO()
    header_fields = dict(request_api_key=api_key, request_api_version=version, correlation_id=correlation_id)
    if "client_id" in header_cls.__dataclass_fields__:
        header_fields["client_id"] = client_id
    entity_writer(header_cls)(buffer, header_cls(**header_fields))
    from wiregate.kafka_wire.protocol import build

    entity_writer(cls)(buffer, build(cls, **fields))
    body = buffer.getvalue()
    return struct.pack(">i", len(body)) + body


def responses(data: bytes) -> list[bytes]:
    out = []
    while data:
        size = struct.unpack_from(">i", data)[0]
        out.append(data[4 : 4 + size])
        data = data[4 + size :]
    return out


def decode_response(api_key: int, version: int, frame: bytes, *, flexible_header: bool | None = None):
    cls = response_class(api_key, version)
    correlation_id = struct.unpack_from(">i", frame)[0]
    offset = 4
    flexible = cls.__flexible__ and api_key != 18 if flexible_header is None else flexible_header
    if flexible:
        offset += 1
    body, _ = entity_reader(cls)(frame, offset)
    return correlation_id, body


def connection() -> KafkaConnection:
    return KafkaConnection(Broker(), peer="test", advertised=("127.0.0.1", 9092))


@pytest.mark.parametrize("version", range(0, 5))
def test_api_versions_every_version(version: int) -> None:
    conn = connection()
    conn.receive_data(request_bytes(18, version, correlation_id=7, client_software_name="t", client_software_version="1"))
    [frame] = responses(conn.data_to_send())
    correlation_id, body = decode_response(18, version, frame)
    assert correlation_id == 7
    assert body.error_code == ErrorCode.none
    listed = {(a.api_key, a.min_version, a.max_version) for a in body.api_keys}
    assert listed == set(advertised())
    for key, lo, hi in listed:
        assert KAFKA_4_0_RANGES[key][0] <= lo <= hi <= KAFKA_4_0_RANGES[key][1]


def test_unsupported_api_versions_version_answers_in_v0_layout() -> None:
    conn = connection()
    # kafka-python 3 first sends the newest version it knows; v0-layout fallback
    payload = struct.pack(">hhih", 18, 99, 3, -1)
    conn.receive_data(struct.pack(">i", len(payload)) + payload)
    [frame] = responses(conn.data_to_send())
    correlation_id, body = decode_response(18, 0, frame, flexible_header=False)
    assert correlation_id == 3
    assert body.error_code == ErrorCode.unsupported_version
    assert {(a.api_key, a.min_version, a.max_version) for a in body.api_keys} == set(advertised())
    assert not conn.closed


def test_feeding_one_byte_at_a_time_gives_the_same_output() -> None:
    stream = request_bytes(18, 3, correlation_id=1, client_software_name="a", client_software_version="1") + request_bytes(
        3, 12, correlation_id=2, topics=None
    )
    whole = connection()
    whole.receive_data(stream)
    expected = whole.data_to_send()
    piecewise = connection()
    out = b""
    for i in range(len(stream)):
        piecewise.receive_data(stream[i : i + 1])
        out += piecewise.data_to_send()
    # cluster ids differ per broker: compare the frame layout up to them
    assert [len(f) for f in responses(out)] == [len(f) for f in responses(expected)]
    assert responses(out)[0] == responses(expected)[0]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(struct.pack(">i", MAX_REQUEST_SIZE + 1), id="over-socket.request.max.bytes"),
        pytest.param(struct.pack(">i", -5), id="negative-size"),
        pytest.param(struct.pack(">i", 4) + b"\x00\x12\x00\x00", id="shorter-than-a-header"),
        pytest.param(struct.pack(">i", 8) + struct.pack(">hhi", 9999, 0, 1), id="unknown-api-key"),
        pytest.param(struct.pack(">i", 8) + struct.pack(">hhi", 3, 99, 1), id="unsupported-metadata-version"),
        pytest.param(struct.pack(">i", 9) + struct.pack(">hhi", 3, 12, 1) + b"\xff", id="undecodable-body"),
    ],
)
def test_bad_input_closes_the_connection(data: bytes) -> None:
    conn = connection()
    conn.receive_data(data)
    assert conn.closed
    assert conn.data_to_send() == b""


def test_responses_stay_in_request_order_behind_a_deferred_one() -> None:
    from wiregate.kafka_wire import registry

    parked = []

    def slow(ctx, request):
        deferred = ctx.defer()
        parked.append((ctx, deferred))
        return deferred

    original = registry.APIS[18]
    registry.APIS[18] = registry.Api(18, "ApiVersions", 0, 4, slow)
    try:
        conn = connection()
        woken = []
        conn.on_wake = lambda: woken.append(True)
        conn.receive_data(request_bytes(18, 3, correlation_id=1, client_software_name="a", client_software_version="1"))
        conn.receive_data(request_bytes(3, 12, correlation_id=2, topics=None))
        assert conn.data_to_send() == b""
        ctx, deferred = parked[0]
        deferred.resolve(original.handler(ctx, None))
        frames = responses(conn.data_to_send())
        assert [struct.unpack_from(">i", f)[0] for f in frames] == [1, 2]
        assert woken == [True]
    finally:
        registry.APIS[18] = original


def test_connection_lost_cancels_parked_requests() -> None:
    from wiregate.kafka_wire import registry

    cancelled = []

    def slow(ctx, request):
        deferred = ctx.defer()
        deferred.on_cancel(lambda: cancelled.append(True))
        return deferred

    original = registry.APIS[18]
    registry.APIS[18] = registry.Api(18, "ApiVersions", 0, 4, slow)
    try:
        conn = connection()
        conn.receive_data(request_bytes(18, 3, client_software_name="a", client_software_version="1"))
        conn.receive_data(b"")
        assert conn.closed and cancelled == [True]
    finally:
        registry.APIS[18] = original
