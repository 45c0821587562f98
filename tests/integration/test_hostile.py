"""Hostile input against a live server, and the limits that bound what a client can take.

The fuzz burst (tests/fuzz/live.py) sends generated AMQP sessions and Kafka
request streams over raw sockets while a pika client and a kafka-python
producer keep doing round trips; afterwards fresh clients of both protocols
work, ``/api/health`` answers and nothing was logged as a crash.

The limits follow RabbitMQ's and Kafka's names and texts: ``connection_max``
(530 at connection.open), the vhost ``max-queues`` limit (406), the
negotiated ``channel_max`` (530), the 10 s handshake deadline, Kafka's
``max.connections`` and ``connections.max.idle.ms``.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import time
import urllib.request
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from tests.fuzz import live
from tests.fuzz.common import crash_log
from wiregate.testing import Server


def test_fuzz_burst_leaves_the_server_and_its_other_clients_working() -> None:
    result = live.campaign(40, seed=20240607, workers=8, linger=0.1)
    counts = result["counts"]
    assert counts["amqp_connections"] == 40 and counts["kafka_connections"] == 40
    assert counts["bystander_rounds"] >= 2
    assert not result["failures"], "\n".join(f.describe() for f in result["failures"])


@pytest.fixture(scope="module")
def limited() -> Iterator[Server]:
    server = Server(handshake_timeout=0.5)
    server.config = dataclasses.replace(
        server.config,
        max_connections=2,
        max_queues=3,
        kafka_configs=(("connections.max.idle.ms", "700"),),
    )
    with crash_log(quiet=False) as log, server:
        yield server
        assert not log.take()


def kafka_address(server: Server) -> tuple[str, int]:
    host, port = server.kafka_bootstrap.rsplit(":", 1)
    return host, int(port)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except (TimeoutError, socket.timeout):
        return False
    except ConnectionResetError:
        pass
    return True


def test_connection_max_refuses_the_next_amqp_connection_at_open(limited: Server) -> None:
    first = pika.BlockingConnection(pika.URLParameters(limited.amqp_url))
    second = pika.BlockingConnection(pika.URLParameters(limited.amqp_url))
    try:
        # pika reports a close during connection.open as a probable access denial
        with pytest.raises(pika.exceptions.AMQPConnectionError) as refused:
            pika.BlockingConnection(pika.URLParameters(limited.amqp_url))
        assert "(530) 'NOT_ALLOWED - connection refused: node connection limit (2) is reached'" in str(refused.value)
        assert first.is_open and second.is_open
        second.close()
        third = pika.BlockingConnection(pika.URLParameters(limited.amqp_url))
        third.close()
    finally:
        first.close()
        if second.is_open:
            second.close()


def test_max_connections_closes_the_next_kafka_connection(limited: Server) -> None:
    address = kafka_address(limited)
    held = [socket.create_connection(address) for _ in range(2)]
    try:
        time.sleep(0.1)
        extra = socket.create_connection(address)
        try:
            assert closed_within(extra, 2)
        finally:
            extra.close()
        for sock in held:
            sock.settimeout(0.2)
            with pytest.raises((TimeoutError, socket.timeout)):
                sock.recv(1)  # still open
    finally:
        for sock in held:
            sock.close()


def test_max_queues_refuses_a_new_queue_with_rabbitmqs_text(limited: Server) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(limited.amqp_url))
    try:
        channel = connection.channel()
        for name in ("lim-1", "lim-2", "lim-3"):
            channel.queue_declare(name, exclusive=True)
        channel.queue_declare("lim-2", exclusive=True)  # an existing one is still declared
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("lim-4", exclusive=True)
        assert refused.value.reply_code == 406
        assert refused.value.reply_text == "PRECONDITION_FAILED - cannot declare queue 'lim-4': queue limit in vhost '/' (3) is reached"
    finally:
        connection.close()


def test_silent_amqp_socket_is_closed_after_the_handshake_timeout(limited: Server) -> None:
    with socket.create_connection((limited.host, limited.amqp_port)) as sock:
        started = time.monotonic()
        assert closed_within(sock, 3)
        assert 0.4 < time.monotonic() - started < 2.5


def kafka_connections_settle(server: Server, at_most: int, seconds: float = 5.0) -> None:
    """Wait until the server has let go of connections closed by an earlier test."""
    deadline = time.monotonic() + seconds
    while True:
        with urllib.request.urlopen(f"{server.http_url}/api/overview", timeout=2) as answer:
            open_now = json.load(answer)["connections"].get("kafka", 0)
        if open_now <= at_most or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def test_idle_kafka_connection_is_closed_after_connections_max_idle_ms(limited: Server) -> None:
    # the limit is 2: sockets an earlier test closed must be gone first, or
    # these are refused at once instead of timing out idle
    kafka_connections_settle(limited, 0)
    address = kafka_address(limited)
    with socket.create_connection(address) as silent, socket.create_connection(address) as halfway:
        halfway.sendall(struct.pack(">i", 100) + b"\x00\x03")  # a request that stops arriving
        started = time.monotonic()
        assert closed_within(silent, 3)
        assert closed_within(halfway, 3)
        assert 0.5 < time.monotonic() - started < 2.5
