"""Hostile AMQP input against the sans-IO connection: property-based and
mutation fuzzing (tests/fuzz/amqp.py), plus a regression test for every
crash the fuzzers found.

The invariants (tests/fuzz/amqp.py ``check``): nothing escapes
``receive_data``, no "internal error" is logged, the output is well-formed
frames pamqp decodes, a connection.close carries a protocol code (never 541)
and nothing follows it, a connection past its handshake never ends silently
unless the client closed it, and after ``connection_lost`` nothing of the
connection stays in the broker.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import amqp
from tests.fuzz.amqp import HEADER, frame, longstr, method_frame, shortstr
from tests.fuzz.common import crash_log
from wiregate.amqp import AMQPConnection
from wiregate.amqp import codec
from wiregate.core import Broker


def opened(broker: Broker | None = None) -> AMQPConnection:
    conn = AMQPConnection(broker or Broker(), peer="test")
    conn.receive_data(
        HEADER
        + method_frame(0, (10 << 16) | 11, struct.pack(">I", 0) + shortstr("PLAIN") + longstr(b"\x00guest\x00guest") + shortstr("en_US"))
        + method_frame(0, (10 << 16) | 31, struct.pack(">HIH", 2047, 131072, 0))
        + method_frame(0, (10 << 16) | 40, shortstr("/") + b"\x00\x00")
        + method_frame(1, (20 << 16) | 10, b"\x00")
    )
    conn.data_to_send()
    return conn


def methods(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(channel, class, method, arguments) of every method frame in ``data``."""
    frames, error = amqp.parse_output(data)
    assert error is None
    out = []
    for frame_type, channel, payload in frames:
        if frame_type == 1:
            index = struct.unpack_from(">I", payload)[0]
            out.append((channel, index >> 16, index & 0xFFFF, payload[4:]))
    return out


# ------------------------------------------------------------------ property-based
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.randoms(use_true_random=False))
def test_generated_sessions_keep_every_invariant(rng: random.Random) -> None:
    broker = Broker()
    with crash_log() as log:
        _sent, failures, _elapsed = amqp.run_case(rng, broker, 0, log)
    assert not failures, "\n".join(f.describe() for f in failures)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300), st.integers(0, 3))
def test_random_bytes_after_a_handshake(data: bytes, channels: int) -> None:
    conn = opened()
    with crash_log() as log:
        conn.receive_data(data)
        out = conn.data_to_send()
        problems = amqp.check(conn, out, data)
        conn.connection_lost()
        assert not log.take()
    assert not problems


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(codec._FIELDS)), st.binary(max_size=64), st.integers(0, 2))
def test_any_method_with_random_arguments(index: int, arguments: bytes, channel: int) -> None:
    conn = opened()
    data = method_frame(channel, index, arguments)
    with crash_log() as log:
        conn.receive_data(data)
        out = conn.data_to_send()
        assert not log.take()
    assert not amqp.check(conn, out, data)


def test_short_mutation_campaign() -> None:
    result = amqp.campaign(20000, seed=20240601, bystander_every=50, fresh_broker_every=200)
    assert result["counts"]["frames"] >= 20000
    assert not result["failures"], "\n".join(f.describe() for f in result["failures"][:10])


# ------------------------------------------------------------------ regressions
@pytest.mark.parametrize("seconds", [2**63, 2**64 - 1, 253402300800])
def test_timestamp_past_year_9999_is_kept(seconds: int) -> None:
    # Found by the fuzzer: datetime.fromtimestamp overflowed inside the
    # decoder, so a header table with such a 'T' value was an INTERNAL_ERROR.
    entry = b"\x01tT" + struct.pack(">Q", seconds)
    table = struct.pack(">I", len(entry)) + entry
    value, end = codec.decode_table(table, 0)
    assert end == len(table)
    assert value["t"] == seconds
    assert codec.encode_table(value) == table


def test_huge_timestamp_in_queue_arguments_is_not_an_internal_error() -> None:
    conn = opened()
    entry = b"\x01tT" + struct.pack(">Q", 2**64 - 1)
    arguments = struct.pack(">I", len(entry)) + entry
    with crash_log() as log:
        conn.receive_data(method_frame(1, (50 << 16) | 10, b"\x00\x00" + shortstr("q") + b"\x00" + arguments))
        assert not log.take()
    assert [(c, m) for _ch, c, m, _a in methods(conn.data_to_send())] == [(50, 11)]


def test_frame_error_while_closing_sends_no_second_close() -> None:
    # Found by the fuzzer: after connection.close, an oversized frame made the
    # connection send another connection.close; nothing may follow the first.
    conn = opened()
    conn.receive_data(method_frame(9, (50 << 16) | 10, b"\x00\x00\x01q\x00\x00\x00\x00\x00"))
    first = methods(conn.data_to_send())
    assert [(c, m) for _ch, c, m, _a in first] == [(10, 50)]
    assert conn.closing
    conn.receive_data(struct.pack(">BHI", 1, 0, 0x7FFFFFFF))
    assert conn.data_to_send() == b""
    assert conn.closed


def test_alternate_exchange_that_is_not_utf8_routes_nowhere() -> None:
    # Found by the fuzzer: an alternate-exchange argument given as a longstr
    # that is not UTF-8 crashed routing (UnicodeDecodeError) on publish.
    conn = opened()
    arguments = b"\x12alternate-exchangeS" + longstr(b"\xde\xad")
    table = struct.pack(">I", len(arguments)) + arguments
    body = b"x"
    with crash_log() as log:
        conn.receive_data(
            method_frame(1, (40 << 16) | 10, b"\x00\x00" + shortstr("ae-src") + shortstr("direct") + b"\x00" + table)
            + method_frame(1, (60 << 16) | 40, b"\x00\x00" + shortstr("ae-src") + shortstr("k") + b"\x00")
            + frame(2, 1, struct.pack(">HHQH", 60, 0, len(body), 0))
            + frame(3, 1, body)
            + method_frame(1, (60 << 16) | 70, b"\x00\x00" + shortstr("nowhere") + b"\x01")
        )
        assert not log.take()
    replies = [(c, m) for _ch, c, m, _a in methods(conn.data_to_send())]
    assert replies == [(40, 11), (20, 40)]  # declare-ok, then 404 for basic.get on a missing queue


# ------------------------------------------------------------------ limits
def test_negotiated_channel_max_is_enforced() -> None:
    conn = AMQPConnection(Broker(), peer="test")
    conn.receive_data(
        HEADER
        + method_frame(0, (10 << 16) | 11, struct.pack(">I", 0) + shortstr("PLAIN") + longstr(b"\x00guest\x00guest") + shortstr("en_US"))
        + method_frame(0, (10 << 16) | 31, struct.pack(">HIH", 2, 131072, 0))
        + method_frame(0, (10 << 16) | 40, shortstr("/") + b"\x00\x00")
        + method_frame(1, (20 << 16) | 10, b"\x00")
        + method_frame(7, (20 << 16) | 10, b"\x00")
        + method_frame(9, (20 << 16) | 10, b"\x00")
    )
    replies = methods(conn.data_to_send())
    assert [(c, m) for _ch, c, m, _a in replies][-3:] == [(20, 11), (20, 11), (10, 50)]
    code, length = struct.unpack_from(">HB", replies[-1][3])
    assert code == 530
    assert replies[-1][3][3 : 3 + length] == b"NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"


def test_connection_max_refuses_connection_open_with_rabbitmqs_text() -> None:
    broker = Broker()
    first = AMQPConnection(broker, peer="a", connection_max=1)
    first.receive_data(opened_bytes())
    assert first.handshake_done
    second = AMQPConnection(broker, peer="b", connection_max=1)
    second.receive_data(opened_bytes())
    replies = methods(second.data_to_send())
    assert [(c, m) for _ch, c, m, _a in replies][-1] == (10, 50)
    code, length = struct.unpack_from(">HB", replies[-1][3])
    assert (code, replies[-1][3][3 : 3 + length]) == (530, b"NOT_ALLOWED - connection refused: node connection limit (1) is reached")
    assert replies[-1][3][-4:] == struct.pack(">HH", 10, 40)
    first.connection_lost()
    third = AMQPConnection(broker, peer="c", connection_max=1)
    third.receive_data(opened_bytes())
    assert third.handshake_done


def opened_bytes() -> bytes:
    return (
        HEADER
        + method_frame(0, (10 << 16) | 11, struct.pack(">I", 0) + shortstr("PLAIN") + longstr(b"\x00guest\x00guest") + shortstr("en_US"))
        + method_frame(0, (10 << 16) | 31, struct.pack(">HIH", 2047, 131072, 0))
        + method_frame(0, (10 << 16) | 40, shortstr("/") + b"\x00\x00")
    )
