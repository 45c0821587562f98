"""Fuzzing a running server over real sockets, with healthy clients beside it.

Hostile connections send generated sessions (tests/fuzz/amqp.py) and request
streams (tests/fuzz/kafka.py) to a :class:`wiregate.testing.Server` from a
pool of threads, read whatever comes back (briefly) and hang up; what the
server sent must be well-formed, and a connection.close must carry a
protocol code.  Meanwhile a pika client and a kafka-python producer keep
doing round trips; after the campaign both must still work, a fresh client
of each protocol must work, ``/api/health`` must answer 200, and the
server's log must hold no crash record.
"""

from __future__ import annotations

import concurrent.futures
import random
import socket
import struct
import threading
import time
import urllib.request
from typing import Any

from wiregate.testing import Server

from . import amqp, kafka
from .common import Failure, crash_log

READ_TIMEOUT = 0.3


def _exchange(host: str, port: int, data: bytes, *, linger: float = READ_TIMEOUT) -> bytes:
    """Send ``data`` and read until the server closes or is silent for ``linger`` seconds."""
    received = bytearray()
    with socket.create_connection((host, port), timeout=5) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may already have closed: what it said is still readable
        sock.settimeout(linger)
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, socket.timeout):
                break
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    return bytes(received)


def hostile_amqp(host: str, port: int, seed: int, linger: float = READ_TIMEOUT) -> tuple[int, list[str]]:
    rng = random.Random(seed)
    session = amqp.generate(rng)
    out = _exchange(host, port, session.data(), linger=linger)
    problems = []
    frames, error = amqp.parse_output(out)
    if error and not error.startswith("truncated"):
        problems.append(f"malformed output: {error}")
    for frame_type, _channel, payload in frames:
        if frame_type == 1 and len(payload) >= 6:
            index = struct.unpack_from(">I", payload)[0]
            code = struct.unpack_from(">H", payload, 4)[0]
            if index == amqp.CONNECTION_CLOSE and code not in amqp.CONNECTION_CODES | {320}:
                problems.append(f"connection.close {code}")
            if index == amqp.CHANNEL_CLOSE and code not in amqp.CHANNEL_CODES:
                problems.append(f"channel.close {code}")
    return len(session.frames), problems


def hostile_kafka(host: str, port: int, seed: int, generator: kafka.Generator, linger: float = READ_TIMEOUT) -> tuple[int, list[str]]:
    rng = random.Random(seed)
    pools = kafka.Pools()
    stream = bytearray()
    count = rng.randint(1, 30)
    for _ in range(count):
        _api, _version, payload = generator.request(rng, rng.getrandbits(31), pools)
        stream += kafka.frame(rng, payload)
    out = _exchange(host, port, bytes(stream), linger=linger)
    frames, error = kafka.split_responses(out)
    problems = [f"malformed output: {error}"] if error and not error.startswith("truncated") and "bad response size" not in error else []
    return count, problems


class Bystanders:
    """A pika connection and a kafka-python producer/consumer doing round trips in a thread."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.rounds = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bystanders", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        import pika
        from kafka import KafkaProducer

        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.server.amqp_url))
            channel = connection.channel()
            queue = channel.queue_declare("", exclusive=True).method.queue
            producer = KafkaProducer(bootstrap_servers=self.server.kafka_bootstrap, acks="all")
            while not self._stop.is_set():
                self.rounds += 1
                body = f"round {self.rounds}".encode()
                channel.basic_publish("", queue, body)
                _method, _props, got = channel.basic_get(queue, auto_ack=True)
                if got != body:
                    self.errors.append(f"pika round {self.rounds}: got {got!r}")
                producer.send("bystander", body).get(timeout=10)
                time.sleep(0.02)
            producer.close()
            connection.close()
        except Exception as exc:  # noqa: BLE001 - reported to the campaign
            self.errors.append(f"bystander failed after {self.rounds} rounds: {type(exc).__name__}: {exc}")


def fresh_clients_work(server: Server) -> list[str]:
    """A new pika connection and new kafka-python clients do a round trip each."""
    import pika
    from kafka import KafkaConsumer, KafkaProducer

    problems = []
    try:
        connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_publish("", queue, b"after")
        _m, _p, body = channel.basic_get(queue, auto_ack=True)
        connection.close()
        if body != b"after":
            problems.append(f"fresh pika client got {body!r}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"fresh pika client: {type(exc).__name__}: {exc}")
    try:
        topic = f"after-{random.getrandbits(32)}"
        producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap)
        producer.send(topic, b"after").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(topic, bootstrap_servers=server.kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000)
        values = []
        for message in consumer:  # the first one is enough: do not wait out the timeout
            values.append(message.value)
            break
        consumer.close()
        if values != [b"after"]:
            problems.append(f"fresh kafka consumer got {values!r}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"fresh kafka clients: {type(exc).__name__}: {exc}")
    try:
        with urllib.request.urlopen(server.http_url + "/api/health", timeout=5) as response:
            if response.status != 200:
                problems.append(f"/api/health answered {response.status}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"/api/health: {type(exc).__name__}: {exc}")
    return problems


def campaign(connections: int, seed: int, *, workers: int = 8, linger: float = READ_TIMEOUT, report: Any = None) -> dict[str, Any]:
    """``connections`` hostile connections per protocol against one live server."""
    counts = {"amqp_connections": 0, "amqp_frames": 0, "kafka_connections": 0, "kafka_requests": 0, "failures": 0, "bystander_rounds": 0}
    failures: list[Failure] = []
    generator = kafka.Generator()
    started = time.monotonic()
    with crash_log(quiet=True) as log, Server() as server:
        bystanders = Bystanders(server)
        bystanders.start()
        host = server.host
        jobs = []
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for n in range(connections):
                jobs.append(("amqp", n, pool.submit(hostile_amqp, host, server.amqp_port, seed * 7919 + n, linger)))
                jobs.append(("kafka", n, pool.submit(hostile_kafka, host, int(server.kafka_bootstrap.rsplit(":", 1)[1]), seed * 7919 + n, generator, linger)))
            for protocol, n, job in jobs:
                try:
                    sent, problems = job.result(timeout=60)
                except Exception as exc:  # noqa: BLE001 - the client side failed: report it
                    failures.append(Failure(protocol, n, "exception", f"client: {type(exc).__name__}: {exc}"))
                    continue
                if protocol == "amqp":
                    counts["amqp_connections"] += 1
                    counts["amqp_frames"] += sent
                else:
                    counts["kafka_connections"] += 1
                    counts["kafka_requests"] += sent
                failures.extend(Failure(protocol, n, "invariant", p) for p in problems)
                if report is not None and (counts["amqp_connections"] + counts["kafka_connections"]) % 1000 == 0:
                    report(f"live: {counts['amqp_connections']} amqp, {counts['kafka_connections']} kafka connections")
        # the bystanders must also work after the last hostile connection
        after = bystanders.rounds
        deadline = time.monotonic() + 15
        while bystanders.rounds < after + 2 and not bystanders.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        bystanders.stop()
        counts["bystander_rounds"] = bystanders.rounds
        failures.extend(Failure("live", 0, "invariant", e) for e in bystanders.errors)
        if bystanders.rounds < 2:
            failures.append(Failure("live", 0, "invariant", f"bystanders made only {bystanders.rounds} rounds"))
        failures.extend(Failure("live", 0, "invariant", p) for p in fresh_clients_work(server))
        time.sleep(0.2)
        failures.extend(Failure("live", 0, "internal-error", record) for record in log.take())
    counts["failures"] = len(failures)
    counts["seconds"] = round(time.monotonic() - started, 1)
    return {"counts": counts, "failures": failures}
