"""The gateway end to end: the ``wiregate`` command, the embedded Server, HTTP, real pika clients."""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
import trio
from pamqp import commands, frame, heartbeat

import wiregate
import wiregate.kafka_wire
import wiregate.testing
from wiregate.gateway import Config, serve
from wiregate.gateway.server import kafka_connection_class

READY_LINE = re.compile(rb"^wiregate (\S+) ready (.+)\n$")
ENDPOINT = re.compile(r"^\[?([^\[\]]+?)\]?:(\d+)$")
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


# --- helpers -----------------------------------------------------------------


@dataclasses.dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    version: str
    endpoints: dict[str, list[tuple[str, int]]]
    stderr: Path

    def port(self, protocol: str) -> int:
        return self.endpoints[protocol][0][1]


def start_serve(tmp_path: Path, *args: str) -> ServeProcess:
    """Run ``wiregate serve`` and return once it printed its ready line."""
    stderr = tmp_path / "wiregate.stderr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiregate", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=stderr.open("wb"),
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = read_line(proc, stderr, timeout=15)
    match = READY_LINE.match(line)
    assert match, f"unexpected first line: {line!r}"
    endpoints: dict[str, list[tuple[str, int]]] = {}
    for item in match.group(2).decode().split(" "):
        protocol, _, listed = item.partition("=")
        endpoints[protocol] = []
        for endpoint in listed.split(","):
            parsed = ENDPOINT.match(endpoint)
            assert parsed, f"bad endpoint {endpoint!r} in {line!r}"
            endpoints[protocol].append((parsed.group(1), int(parsed.group(2))))
    return ServeProcess(proc, match.group(1).decode(), endpoints, stderr)


def read_line(proc: subprocess.Popen[bytes], stderr: Path, *, timeout: float) -> bytes:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"no line within {timeout} s; stderr:\n{stderr.read_text()}")
            # One byte at a time: nothing after the line is consumed.
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                pytest.fail(f"exited with {proc.wait()} before a full line; stderr:\n{stderr.read_text()}")
            data += chunk
    return data


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[ServeProcess]:
    """``wiregate serve`` on kernel-picked ports on both loopback addresses."""
    server = start_serve(tmp_path, "--amqp-port", "0", "--http-port", "0", "--kafka-port", "0")
    yield server
    stop_process(server.proc)


@pytest.fixture
def server() -> Iterator[wiregate.testing.Server]:
    with wiregate.testing.Server(handshake_timeout=1.0) as srv:
        yield srv


def http_get(host: str, port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], object]:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(body) if body else None
    finally:
        connection.close()


def pika_connect(host: str, port: int, **kwargs: object) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port, **kwargs))


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Read until the server closes the socket; fail if it does not within ``timeout``."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # Closing with unread input makes the kernel send a reset.
    except TimeoutError:
        pytest.fail(f"server kept the connection open for {timeout} s")
    return received


def assert_round_trip(connection: pika.BlockingConnection, queue: str) -> None:
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"round trip")
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    assert method is not None and body == b"round trip"
    channel.close()


# --- the wiregate command ----------------------------------------------------------


def test_version_prints_package_version() -> None:
    result = subprocess.run([sys.executable, "-m", "wiregate", "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout == f"wiregate {wiregate.__version__}\n"


def test_ready_line_lists_both_loopbacks_on_one_port_per_protocol(serve_process: ServeProcess) -> None:
    assert serve_process.version == wiregate.__version__
    expected = ["amqp", "http"] if kafka_connection_class() is None else ["amqp", "kafka", "http"]
    assert list(serve_process.endpoints) == expected
    for protocol, endpoints in serve_process.endpoints.items():
        hosts = [host for host, _port in endpoints]
        ports = {port for _host, port in endpoints}
        assert hosts == ["127.0.0.1", "::1"], protocol
        assert len(ports) == 1 and 0 not in ports, protocol


def test_health_answers_on_both_loopbacks(serve_process: ServeProcess) -> None:
    for host in ("127.0.0.1", "::1"):
        status, headers, body = http_get(host, serve_process.port("http"), "/api/health")
        assert (status, body) == (200, {"status": "ok"})
        assert headers["content-type"] == "application/json"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_clients_with_320_and_exits_0(serve_process: ServeProcess, signum: int) -> None:
    clients = [pika_connect(host, serve_process.port("amqp")) for host in ("127.0.0.1", "::1")]
    for client in clients:
        client.channel()
    signalled = time.monotonic()
    serve_process.proc.send_signal(signum)
    for client in clients:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            client.process_data_events(time_limit=5)
        assert closed.value.reply_code == 320
        assert closed.value.reply_text.startswith("CONNECTION_FORCED")
    assert serve_process.proc.wait(timeout=5) == 0
    assert time.monotonic() - signalled < 3
    assert serve_process.proc.stdout is not None and serve_process.proc.stdout.read() == b""


def test_host_option_listens_on_that_address_only(tmp_path: Path) -> None:
    server = start_serve(tmp_path, "--host", "127.0.0.1", "--amqp-port", "0", "--http-port", "0")
    try:
        assert [host for host, _ in server.endpoints["amqp"]] == ["127.0.0.1"]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("::1", server.port("amqp")), timeout=5)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=5) == 0
        stop_process(server.proc)


def test_port_in_use_exits_1_with_one_error_line(tmp_path: Path, server: wiregate.testing.Server) -> None:
    stderr = tmp_path / "stderr"
    result = subprocess.run(
        [sys.executable, "-m", "wiregate", "serve", "--host", "127.0.0.1", "--amqp-port", str(server.amqp_port)],
        stdout=subprocess.PIPE,
        stderr=stderr.open("wb"),
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stdout == b""
    errors = [line for line in stderr.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"cannot listen on 127.0.0.1:{server.amqp_port}" in errors[0]


def test_data_dir_is_recovered_and_logged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_serve(tmp_path, "--host", "127.0.0.1", "--amqp-port", "0", "--http-port", "0", "--data-dir", str(data), "--fsync", "always")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=5) == 0
    stop_process(server.proc)
    assert f"data dir {data} (fsync always): recovered 0 journal entries, 0 messages, 0 batches" in server.stderr.read_text()
    assert data.is_dir()


# --- the embedded server --------------------------------------------------------


def test_embedded_server_starts_and_stops_in_milliseconds() -> None:
    srv = wiregate.testing.Server()
    began = time.perf_counter()
    srv.start()
    started = time.perf_counter()
    srv.stop()
    stopped = time.perf_counter()
    assert started - began < 0.5
    assert stopped - started < 0.5


def test_embedded_server_serves_pika_through_amqp_url(server: wiregate.testing.Server) -> None:
    assert server.amqp_url == f"amqp://guest:guest@127.0.0.1:{server.amqp_port}/%2F"
    assert server.host == "127.0.0.1"
    assert server.kafka_bootstrap is None or server.kafka_bootstrap.startswith("127.0.0.1:")
    connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    try:
        assert_round_trip(connection, "embedded")
        assert "embedded" in server.broker.vhosts["/"].queues
    finally:
        connection.close()


def test_embedded_server_stop_sends_320_to_open_clients() -> None:
    srv = wiregate.testing.server(shutdown_grace=0.2)
    connection = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
    srv.stop()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        connection.process_data_events(time_limit=5)
    assert closed.value.reply_code == 320


def test_embedded_server_restarts_with_its_broker() -> None:
    srv = wiregate.testing.server()
    with srv:
        connection = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
        connection.channel().queue_declare("kept")
        connection.close()
    with srv:
        connection = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
        connection.channel().queue_declare("kept", passive=True)
        connection.close()


def test_embedded_server_reports_port_in_use(server: wiregate.testing.Server) -> None:
    with pytest.raises(OSError, match="cannot listen"):
        wiregate.testing.Server(amqp_port=server.amqp_port).start()


def test_both_loopbacks_share_one_port() -> None:
    with wiregate.testing.Server(host=None) as srv:
        assert srv.addresses.bound["amqp"] == (("127.0.0.1", srv.amqp_port), ("::1", srv.amqp_port))
        for host in ("127.0.0.1", "::1"):
            connection = pika_connect(host, srv.amqp_port)
            assert_round_trip(connection, f"via-{host}")
            connection.close()


def test_serve_reports_ready_addresses_to_nursery_start() -> None:
    async def main() -> bytes:
        async with trio.open_nursery() as nursery:
            config = Config(host="127.0.0.1", amqp_port=0, kafka_port=0, http_port=0)
            addresses = await nursery.start(serve, config)
            assert addresses.amqp[1] != 0 and addresses.bound["amqp"] == (addresses.amqp,)
            stream = await trio.open_tcp_stream(*addresses.http)
            await stream.send_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            response = b""
            while chunk := await stream.receive_some():
                response += chunk
            await stream.aclose()
            nursery.cancel_scope.cancel()
        return response

    response = trio.run(main)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b'{"status": "ok"}\n')


def test_core_timers_fire_at_their_deadline(server: wiregate.testing.Server) -> None:
    scheduler = server.broker.scheduler
    fired = threading.Event()

    def schedule() -> None:
        scheduler.call_at(scheduler.now() + 60, lambda: None)
        # Earlier than the one the gateway is sleeping for: it must wake up.
        scheduler.call_at(scheduler.now() + 0.2, fired.set)

    scheduled = time.monotonic()
    server.call(schedule)
    assert fired.wait(timeout=5)
    assert 0.2 <= time.monotonic() - scheduled < 1.5


# --- misbehaving clients ----------------------------------------------------------


def test_garbage_client_does_not_disturb_a_healthy_connection(server: wiregate.testing.Server) -> None:
    healthy = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    garbage = socket.create_connection((server.host, server.amqp_port), timeout=5)
    try:
        garbage.sendall(random.Random(20240501).randbytes(65536))
        read_until_closed(garbage, timeout=5)
        assert_round_trip(healthy, "healthy")
        assert healthy.is_open
    finally:
        garbage.close()
        healthy.close()
    fresh = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    assert_round_trip(fresh, "fresh")
    fresh.close()


def test_garbage_after_protocol_header_closes_that_connection(server: wiregate.testing.Server) -> None:
    healthy = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    with socket.create_connection((server.host, server.amqp_port), timeout=5) as garbage:
        garbage.sendall(AMQP_HEADER + random.Random(7).randbytes(4096))
        read_until_closed(garbage, timeout=5)
    assert_round_trip(healthy, "still-healthy")
    healthy.close()


def test_silent_client_is_closed_at_the_handshake_deadline(server: wiregate.testing.Server) -> None:
    with socket.create_connection((server.host, server.amqp_port), timeout=5) as silent:
        connected = time.monotonic()
        assert read_until_closed(silent, timeout=5) == b""
        assert 0.9 <= time.monotonic() - connected < 3


def test_heartbeats_keep_an_idle_client_alive(server: wiregate.testing.Server) -> None:
    connection = pika_connect(server.host, server.amqp_port, heartbeat=1)
    # Past two heartbeat intervals: the server must count pika's heartbeats
    # as traffic (the raw-socket test below checks the server's own).
    connection.sleep(2.5)
    assert_round_trip(connection, "heartbeat")
    connection.close()


def test_client_missing_heartbeats_is_dropped(server: wiregate.testing.Server) -> None:
    with socket.create_connection((server.host, server.amqp_port), timeout=5) as client:
        handshake(client, heartbeat_seconds=1)
        went_silent = time.monotonic()
        received = read_until_closed(client, timeout=5)
        assert 1.5 <= time.monotonic() - went_silent < 4
    # The server sent heartbeat frames while waiting for the client's.
    assert frame.marshal(heartbeat.Heartbeat(), 0) in received


def handshake(sock: socket.socket, *, heartbeat_seconds: int) -> None:
    """Open an AMQP connection by hand, so that the client can then stay silent."""
    sock.sendall(AMQP_HEADER)
    buffer = b""

    def expect(method: type) -> None:
        nonlocal buffer
        while True:
            if len(buffer) >= 7 and len(buffer) >= 8 + int.from_bytes(buffer[3:7], "big"):
                consumed, _channel, received = frame.unmarshal(buffer)
                buffer = buffer[consumed:]
                if isinstance(received, method):
                    return
                continue
            chunk = sock.recv(65536)
            assert chunk, f"closed while waiting for {method.__name__}"
            buffer += chunk

    expect(commands.Connection.Start)
    sock.sendall(frame.marshal(commands.Connection.StartOk(response="\0guest\0guest", mechanism="PLAIN"), 0))
    expect(commands.Connection.Tune)
    sock.sendall(frame.marshal(commands.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=heartbeat_seconds), 0))
    sock.sendall(frame.marshal(commands.Connection.Open(virtual_host="/"), 0))
    expect(commands.Connection.OpenOk)


# --- HTTP ------------------------------------------------------------------------


def test_unknown_path_is_a_json_404(server: wiregate.testing.Server) -> None:
    status, headers, body = http_get(*server.addresses.http, "/api/nope")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert isinstance(body, dict) and body["error"] == "not_found"


def test_overview_counts_connections_and_queues(server: wiregate.testing.Server) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    try:
        connection.channel().queue_declare("counted")
        status, _headers, body = http_get(*server.addresses.http, "/api/overview")
    finally:
        connection.close()
    assert status == 200 and isinstance(body, dict)
    assert body["version"] == wiregate.__version__
    assert {"protocol": "amqp", "ip_address": "127.0.0.1", "port": server.amqp_port} in body["listeners"]
    assert body["object_totals"]["connections"] == 1
    assert body["object_totals"]["queues"] == 1
    assert body["object_totals"]["exchanges"] == len(server.broker.vhosts["/"].exchanges)


def test_http_rejects_other_methods_and_malformed_requests(server: wiregate.testing.Server) -> None:
    status, _headers, _body = http_get(*server.addresses.http, "/api/health", method="POST")
    assert status == 405
    with socket.create_connection(server.addresses.http, timeout=5) as raw:
        raw.sendall(b"GET /api/health HTTP/1.1\r\nno colon here\r\n\r\n")
        response = read_until_closed(raw, timeout=5)
    assert response.startswith(b"HTTP/1.1 400 ")


def test_http_keep_alive_serves_several_requests(server: wiregate.testing.Server) -> None:
    connection = http.client.HTTPConnection(*server.addresses.http, timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/api/health")
            response = connection.getresponse()
            assert (response.status, json.loads(response.read())) == (200, {"status": "ok"})
    finally:
        connection.close()


# --- the contract for other protocols ------------------------------------------------


class EchoConnection:
    """A stand-in sans-IO connection with no handshake, heartbeats or polite close.

    It checks that the gateway drives any protocol object of that shape, as
    Kafka connections will be; ``b"boom"`` makes it fail like a bug would.
    """

    def __init__(self, broker: object, *, peer: str, on_wake: object, advertised: tuple[str, int]) -> None:
        self.closed = False
        self.lost = 0
        self._output = b""

    def receive_data(self, data: bytes) -> None:
        if data == b"boom":
            raise ValueError("boom")
        self._output += data
        self.closed = data == b""

    def data_to_send(self) -> bytes:
        output, self._output = self._output, b""
        return output

    def connection_lost(self) -> None:
        self.lost += 1


def test_a_failing_connection_is_logged_and_closed_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(wiregate.kafka_wire, "KafkaConnection", EchoConnection, raising=False)
    caplog.set_level(logging.INFO, logger="wiregate.gateway")
    with wiregate.testing.Server() as srv:
        assert srv.kafka_bootstrap == f"127.0.0.1:{srv.addresses.kafka[1]}"
        healthy = socket.create_connection(srv.addresses.kafka, timeout=5)
        healthy.sendall(b"ping")
        assert healthy.recv(4) == b"ping"
        with socket.create_connection(srv.addresses.kafka, timeout=5) as failing:
            failing.sendall(b"boom")
            read_until_closed(failing, timeout=5)
        healthy.sendall(b"pong")
        assert healthy.recv(4) == b"pong"
        pika_client = pika.BlockingConnection(pika.URLParameters(srv.amqp_url))
        assert_round_trip(pika_client, "beside-kafka")
        pika_client.close()
    healthy.close()
    failures = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "kafka connection from 127.0.0.1:" in failures[0].getMessage()
    assert "ValueError: boom" in failures[0].getMessage()
