"""Memory backpressure: the high watermark raises the resource alarm by itself.

A publisher that outpaces its consumers must end blocked (AMQP:
``connection.blocked``, then not read) or throttled (Kafka:
``throttle_time_ms`` and a muted connection), never with the server killed;
once consumers drain the queues the alarm clears.
"""

from __future__ import annotations

import io
import struct
import threading
import time
from pathlib import Path

import pika
import pytest
from kafka import KafkaProducer
from kio.serial import entity_reader, entity_writer
from pamqp import commands, frame

from bench import amqp_pipelined
from tests.integration.test_gateway import start_serve, stop_process
from wiregate.core import Broker
from wiregate.core.timers import Scheduler
from wiregate.gateway import Config
from wiregate.gateway.cli import main as cli_main
from wiregate.gateway.memory import ALARM_REASON, DEFAULT_WATERMARK, MESSAGE_OVERHEAD, Watermark, held_bytes, parse_watermark
from wiregate.kafka_wire import KafkaConnection
from wiregate.kafka_wire import records as kafka_records
from wiregate.kafka_wire.apis.produce import ALARM_THROTTLE_MS
from wiregate.kafka_wire.protocol import build, request_class, response_class
from wiregate.testing import Server

MiB = 1 << 20


def _wait_for(condition, timeout: float = 20.0, poll=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached")
        if poll is not None:
            poll()
        else:
            time.sleep(0.02)


def _publisher(url: str) -> tuple[pika.BlockingConnection, list[tuple[str, str | None]]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    events: list[tuple[str, str | None]] = []
    connection.add_on_connection_blocked_callback(lambda _c, frame: events.append(("blocked", frame.method.reason)))
    connection.add_on_connection_unblocked_callback(lambda _c, _frame: events.append(("unblocked", None)))
    return connection, events


class PublisherThread(threading.Thread):
    """A pika publisher sending as fast as it can to one queue, in its own thread.

    Once the server stops reading it, ``basic_publish`` itself blocks (the
    socket buffers are full): that is where a real publisher ends.
    ``halt()`` ends the loop after the publish in progress; the thread then
    collects the blocked/unblocked notifications and closes.
    """

    def __init__(self, url: str, queue: str, body: bytes, *, limit: int) -> None:
        super().__init__(daemon=True)
        self.url, self.queue, self.body, self.limit = url, queue, body, limit
        self.published = 0
        self.events: list[tuple[str, str | None]] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            connection, self.events = _publisher(self.url)
            channel = connection.channel()
            channel.queue_declare(self.queue)
            while not self._halt.is_set() and self.published < self.limit:
                channel.basic_publish("", self.queue, self.body)
                self.published += 1
                if self.published % 16 == 0:
                    connection.process_data_events(time_limit=0)
            deadline = time.monotonic() + 10
            while (not self.events or self.events[-1][0] != "unblocked") and time.monotonic() < deadline:
                connection.process_data_events(time_limit=0.05)
            connection.close()
        except BaseException as exc:
            self.error = exc

    def stalled(self) -> bool:
        """True when no publish completed for half a second (blocked in basic_publish)."""
        before = self.published
        time.sleep(0.5)
        return self.published == before and self.is_alive()

    def halt(self) -> None:
        """Publish nothing after the publish in progress (which waits while blocked)."""
        self._halt.set()

    def finish(self) -> None:
        self.join(timeout=30)
        assert not self.is_alive() and self.error is None


class Drainer(threading.Thread):
    """Takes messages off a queue (basic_get, auto-ack) until stopped and the queue is empty."""

    def __init__(self, url: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.url, self.queue = url, queue
        self.received = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self.url))
            channel = connection.channel()
            while True:
                method, _props, _body = channel.basic_get(self.queue, auto_ack=True)
                if method is not None:
                    self.received += 1
                elif self._halt.is_set():
                    break
            connection.close()
        except BaseException as exc:
            self.error = exc

    def finish(self) -> int:
        self._halt.set()
        self.join(timeout=60)
        assert not self.is_alive() and self.error is None
        return self.received


def _blocked_then_unblocked(events: list[tuple[str, str | None]]) -> bool:
    """Blocked by the memory alarm, then unblocked; messages that were still in
    the socket buffers may block it once more before the end, never for good."""
    expected = [("blocked", ALARM_REASON), ("unblocked", None)] * (len(events) // 2)
    return len(events) >= 2 and events == expected


def _drain(url: str, queue: str, until: int | None = None) -> int:
    """basic_get with auto-ack until the queue is empty (or ``until`` messages were taken)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    taken = 0
    deadline = time.monotonic() + 30
    while until is None or taken < until:
        method, _props, _body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            taken += 1
        elif until is None:
            break
        elif time.monotonic() > deadline:
            pytest.fail(f"only {taken} of {until} messages arrived")
        else:
            time.sleep(0.01)
    connection.close()
    return taken



# --- the watermark setting ---------------------------------------------------------


def test_watermark_is_a_fraction_of_ram_or_a_size() -> None:
    assert parse_watermark("0.4") == Watermark(fraction=0.4)
    assert parse_watermark(0.4) == Watermark(fraction=0.4)
    assert parse_watermark("512MiB") == Watermark(absolute=512 * MiB)
    assert parse_watermark("512M") == Watermark(absolute=512 * MiB)
    assert parse_watermark("2GB") == Watermark(absolute=2 * 10**9)
    assert parse_watermark("1073741824") == Watermark(absolute=1 << 30)
    assert parse_watermark(64 * MiB) == Watermark(absolute=64 * MiB)
    assert parse_watermark("off") is None and parse_watermark(None) is None
    assert parse_watermark("0") == Watermark(fraction=0.0)  # RabbitMQ: 0 blocks every publisher
    for bad in ("lots", "12XB", "-1", "0.4.1", True):
        with pytest.raises(ValueError):
            parse_watermark(bad)
    assert Config().memory_high_watermark == DEFAULT_WATERMARK
    assert 0 < Watermark(fraction=0.5).limit() < Watermark(fraction=1.0).limit()


def test_serve_refuses_a_bad_watermark(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--memory-high-watermark", "a lot"]) == 2
    assert "--memory-high-watermark" in capsys.readouterr().err


def test_held_bytes_counts_ready_and_unacked_messages() -> None:
    with Server(memory_high_watermark=None) as srv:
        srv.declare_queue("q")
        connection = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
        channel = connection.channel()
        for _ in range(10):
            channel.basic_publish("", "q", b"x" * 1000)
        _wait_for(lambda: srv.queue("q").messages_ready == 10)
        ready = srv.call(held_bytes, srv.broker)
        assert ready == 10 * (1000 + MESSAGE_OVERHEAD)
        for _ in range(4):
            channel.basic_get("q")  # unacked, still held
        assert srv.call(held_bytes, srv.broker) == ready
        channel.basic_recover(requeue=True)
        channel.queue_purge("q")
        assert srv.call(held_bytes, srv.broker) == 0
        connection.close()


# --- AMQP ------------------------------------------------------------------------


def test_pika_publisher_outpacing_a_queue_nobody_consumes_ends_blocked() -> None:
    body = b"x" * 8192
    with Server(memory_high_watermark="8MiB") as srv:
        publisher = PublisherThread(srv.amqp_url, "backlog", body, limit=20_000)  # 20 times the watermark
        publisher.start()
        _wait_for(lambda: srv.broker.blocked_reason is not None)
        assert srv.broker.blocked_reason == ALARM_REASON
        _wait_for(publisher.stalled, poll=lambda: None)
        # bounded: past the watermark by what arrives between two samples
        held = srv.queue("backlog").messages_ready * len(body)
        assert 8 * MiB * 0.5 < held < 8 * MiB * 8
        assert publisher.published < publisher.limit / 2

        # the server still serves everyone else; consuming is never blocked,
        # and once a consumer drains the queue the alarm clears
        publisher.halt()
        drainer = Drainer(srv.amqp_url, "backlog")
        drainer.start()
        _wait_for(lambda: srv.broker.blocked_reason is None)
        publisher.finish()
        assert _blocked_then_unblocked(publisher.events), publisher.events
        received = drainer.finish()
        received += _drain(srv.amqp_url, "backlog", until=publisher.published - received)  # nothing lost
        assert received == publisher.published



def test_a_consumer_that_stops_reading_does_not_let_memory_grow() -> None:
    # A no-ack consumer on a stalled socket: deliveries leave the queue for
    # the connection's output backlog, which counts too.
    with Server(memory_high_watermark="8MiB") as srv:
        srv.declare_queue("slow")
        sock, _buf = amqp_pipelined.connect("127.0.0.1", srv.amqp_port)
        sock.sendall(frame.marshal(commands.Basic.Consume(queue="slow", no_ack=True), 1))
        _wait_for(lambda: srv.queue("slow").consumers == 1)
        publisher = PublisherThread(srv.amqp_url, "slow", b"x" * 8192, limit=20_000)
        publisher.start()
        _wait_for(lambda: srv.broker.blocked_reason is not None)
        _wait_for(publisher.stalled, poll=lambda: None)
        assert publisher.published < publisher.limit / 2  # far from the 160 MiB it would have sent
        assert srv.queue("slow").messages_ready * 8192 < 8 * MiB  # the backlog is in the connection
        publisher.halt()
        sock.close()  # the consumer goes: its backlog with it, and the alarm clears
        _wait_for(lambda: srv.broker.blocked_reason is None)
        drainer = Drainer(srv.amqp_url, "slow")  # what was still in the socket buffers
        drainer.start()
        publisher.finish()
        drainer.finish()
        assert _blocked_then_unblocked(publisher.events), publisher.events


def test_watermark_set_at_run_time_blocks_and_unblocks() -> None:
    with Server() as srv:
        srv.declare_queue("q")
        publisher, events = _publisher(srv.amqp_url)
        channel = publisher.channel()
        channel.basic_publish("", "q", b"x" * 1000)
        _wait_for(lambda: srv.queue("q").messages_ready == 1)
        srv.set_memory_high_watermark(1000)  # bytes: already past it
        assert srv.broker.blocked_reason == ALARM_REASON
        channel.basic_publish("", "q", b"held back")
        publisher.process_data_events(time_limit=0.2)
        assert events == [("blocked", ALARM_REASON)]
        assert srv.queue("q").messages_ready == 1
        srv.set_memory_high_watermark("64MiB")
        assert srv.broker.blocked_reason is None
        _wait_for(
            lambda: srv.queue("q").messages_ready == 2 and len(events) == 2,
            poll=lambda: publisher.process_data_events(time_limit=0.02),
        )
        assert events == [("blocked", ALARM_REASON), ("unblocked", None)]
        publisher.close()


def test_memory_alarm_leaves_an_alarm_set_by_a_test_alone() -> None:
    with Server(memory_high_watermark="64MiB") as srv:
        srv.call(srv.broker.block, "disk alarm")
        srv.set_memory_high_watermark("128MiB")
        assert srv.broker.blocked_reason == "disk alarm"
        srv.call(srv.broker.unblock)


def test_serve_with_a_low_watermark_blocks_a_fast_publisher_and_stays_up(tmp_path: Path) -> None:
    server = start_serve(
        tmp_path, "--host", "127.0.0.1", "--amqp-port", "0", "--kafka-port", "0", "--http-port", "0",
        "--memory-high-watermark", "16MiB",
    )
    try:
        url = f"amqp://guest:guest@127.0.0.1:{server.port('amqp')}/%2F"
        publisher = PublisherThread(url, "firehose", b"x" * 65536, limit=5_000)  # 320 MiB at most
        publisher.start()
        _wait_for(lambda: "memory alarm raised" in server.stderr.read_text(), timeout=60)
        _wait_for(publisher.stalled, timeout=60, poll=lambda: None)
        assert server.proc.poll() is None
        with open(f"/proc/{server.proc.pid}/status") as status:
            rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        assert rss_kib < 200 * 1024  # 16 MiB of messages on an interpreter of ~40 MiB; never the 320 MiB
        publisher.halt()
        drainer = Drainer(url, "firehose")
        drainer.start()
        _wait_for(lambda: "memory alarm cleared" in server.stderr.read_text(), timeout=60)
        publisher.finish()
        assert _blocked_then_unblocked(publisher.events), publisher.events
        received = drainer.finish()
        assert received + _drain(url, "firehose", until=publisher.published - received) == publisher.published
    finally:
        stop_process(server.proc)



# --- Kafka -----------------------------------------------------------------------


def test_kafka_producer_is_throttled_past_the_watermark() -> None:
    value = b"v" * 16384
    with Server(memory_high_watermark="2MiB") as srv:
        srv.create_topic("firehose")
        # one request per flush: each request after the alarm is throttled for a second
        producer = KafkaProducer(bootstrap_servers=srv.kafka_bootstrap, acks=1, linger_ms=1000, batch_size=1 << 20)
        sent = 0
        while srv.broker.blocked_reason is None and sent < 2_000:  # 32 MiB at most
            producer.send("firehose", value)
            sent += 1
            if sent % 32 == 0:
                producer.flush(timeout=30)
        assert srv.broker.blocked_reason == ALARM_REASON
        for _ in range(2):  # answered, and throttled
            producer.send("firehose", value)
            sent += 1
            producer.flush(timeout=30)
        throttle = max(
            metric.value()
            for name, metric in producer._metrics.metrics.items()  # noqa: SLF001 (kafka-python's own metrics)
            if name.name == "throttle-time-max"
        )
        assert throttle == ALARM_THROTTLE_MS
        assert len(srv.records("firehose")) == sent  # throttled, not refused: nothing lost
        srv.set_memory_high_watermark("1GiB")  # Kafka logs do not shrink by consuming
        assert srv.broker.blocked_reason is None
        producer.send("firehose", b"after").get(timeout=30)
        producer.close()


# --- Kafka, sans-IO: what goes over the wire while throttled ------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _request(api_key: int, version: int, correlation_id: int, **fields) -> bytes:
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


def _produce(version: int, correlation_id: int, acks: int = 1) -> bytes:
    batch = bytes(kafka_records.encode_batch([(None, b"value", [], 1_000)]))
    topic_data = [dict(name="t", partition_data=[dict(index=0, records=batch)])]
    return _request(0, version, correlation_id, acks=acks, timeout=1000, topic_data=topic_data)


def _answers(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        size = struct.unpack_from(">i", data)[0]
        out.append((struct.unpack_from(">i", data, 4)[0], data[4 : 4 + size]))
        data = data[4 + size :]
    return out


def _throttle_ms(version: int, frame: bytes) -> int:
    cls = response_class(0, version)
    body, _ = entity_reader(cls)(frame, 5 if cls.__flexible__ else 4)
    return int(body.throttle_time.total_seconds() * 1000)


@pytest.fixture
def throttled() -> tuple[KafkaConnection, _Clock]:
    clock = _Clock()
    broker = Broker(Scheduler(clock=clock))
    broker.block(ALARM_REASON)
    return KafkaConnection(broker, peer="test"), clock


def test_throttled_produce_is_answered_at_once_then_the_connection_is_muted(throttled) -> None:
    conn, clock = throttled
    conn.receive_data(_produce(9, 1) + _request(18, 3, 2, client_software_name="t", client_software_version="1"))
    [(correlation_id, frame)] = _answers(conn.data_to_send())
    assert correlation_id == 1 and _throttle_ms(9, frame) == ALARM_THROTTLE_MS
    assert conn.reading_paused  # the gateway stops reading: TCP pushes back
    clock.now += ALARM_THROTTLE_MS / 1000 - 0.001
    conn.broker.scheduler.run_due()
    assert conn.reading_paused and conn.data_to_send() == b""
    clock.now += 0.001
    conn.broker.scheduler.run_due()
    assert not conn.reading_paused
    assert [c for c, _ in _answers(conn.data_to_send())] == [2]  # the next request, after the throttle
    assert len(conn.broker.topics.get("t").partitions[0].log) == 1  # throttled, not refused


def test_throttled_produce_before_v6_is_answered_after_the_throttle(throttled) -> None:
    conn, clock = throttled
    conn.receive_data(_produce(5, 1))
    assert conn.data_to_send() == b""  # old clients do not back off: the answer waits (pre-KIP-219 Kafka)
    clock.now += ALARM_THROTTLE_MS / 1000
    conn.broker.scheduler.run_due()
    [(correlation_id, frame)] = _answers(conn.data_to_send())
    assert correlation_id == 1 and _throttle_ms(5, frame) == ALARM_THROTTLE_MS


def test_acks_zero_produce_mutes_too(throttled) -> None:
    conn, clock = throttled
    conn.receive_data(_produce(9, 1, acks=0))
    assert conn.data_to_send() == b"" and conn.reading_paused
    clock.now += ALARM_THROTTLE_MS / 1000
    conn.broker.scheduler.run_due()
    assert not conn.reading_paused


def test_no_throttle_without_the_alarm() -> None:
    conn = KafkaConnection(Broker(), peer="test")
    conn.receive_data(_produce(9, 1))
    [(_, frame)] = _answers(conn.data_to_send())
    assert _throttle_ms(9, frame) == 0 and not conn.reading_paused
