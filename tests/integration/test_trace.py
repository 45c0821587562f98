"""The decoded-frame trace end to end: real clients, ``serve --trace``, ``--trace-file``, ``/api/trace``, faults."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pamqp import commands, frame, header

import wiregate.testing
from tests.integration.test_gateway import read_line, start_serve, stop_process

Event = dict[str, Any]


@pytest.fixture
def server() -> Iterator[wiregate.testing.Server]:
    with wiregate.testing.Server() as srv:
        yield srv


def tracer_of(server: wiregate.testing.Server) -> Any:
    return server._gateway.tracer  # type: ignore[union-attr]


@contextlib.contextmanager
def recording(server: wiregate.testing.Server) -> Iterator[list[Event]]:
    """Every trace event while the block runs (a sink in the server's thread)."""
    events: list[Event] = []
    tracer = tracer_of(server)
    server.call(tracer.add_sink, events.append)
    try:
        yield events
    finally:
        server.call(tracer.remove_sink, events.append)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.01)


def names(events: list[Event], **match: Any) -> list[str]:
    return [event["name"] for event in events if all(event.get(k) == v for k, v in match.items())]


def pika_publish_and_consume(url: str, queue: str, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.basic_publish("", queue, body, pika.BasicProperties(content_type="text/plain", headers={"n": 1}))
    for method, _properties, received in channel.consume(queue, inactivity_timeout=5):
        assert received == body
        channel.basic_ack(method.delivery_tag)
        break
    channel.cancel()
    connection.close()


def kafka_produce_and_fetch(bootstrap: str, topic: str, values: list[bytes], **producer_options: Any) -> list[bytes]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **producer_options)
    for value in values:
        producer.send(topic, value)
    producer.flush(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(topic, 0)])
    received = []
    for message in consumer:
        received.append(message.value)
        if len(received) == len(values):
            break
    consumer.close()
    return received


# --- in-process, real clients ---------------------------------------------------------


def test_pika_publish_and_consume_are_traced_in_order(server: wiregate.testing.Server) -> None:
    with recording(server) as events:
        pika_publish_and_consume(server.amqp_url, "traced", b"hello trace")
        wait_for(lambda: any(event["kind"] == "close" for event in events))
    amqp = [event for event in events if event["proto"] == "amqp"]
    conn = amqp[0]["conn"]
    assert conn.startswith("amqp#") and all(event["conn"] == conn for event in amqp)
    assert amqp[0]["kind"] == "open" and amqp[-1]["kind"] == "close"
    inbound = names(amqp, dir="in", kind="frame")
    assert inbound[:4] == ["protocol-header", "connection.start-ok", "connection.tune-ok", "connection.open"]
    start = inbound.index("basic.publish")
    assert inbound[start : start + 3] == ["basic.publish", "content-header", "content-body"]
    assert "basic.ack" in inbound[start:] and inbound[-1] == "connection.close"
    outbound = names(amqp, dir="out", kind="frame")
    start = outbound.index("basic.deliver")
    assert outbound[start : start + 3] == ["basic.deliver", "content-header", "content-body"]
    assert outbound.index("basic.consume-ok") < start
    publish = next(event for event in amqp if event["name"] == "basic.publish")
    assert publish["channel"] == 1 and publish["fields"]["routing_key"] == "traced"
    content = next(event for event in amqp if event["name"] == "content-header" and event["dir"] == "in")
    assert content["fields"]["body_size"] == 11
    assert content["fields"]["properties"] == {"content_type": "text/plain", "headers": {"n": 1}}
    body = next(event for event in amqp if event["name"] == "content-body" and event["dir"] == "out")
    assert body["fields"]["preview"] == "hello trace"
    deliver = next(event for event in amqp if event["name"] == "basic.deliver")
    assert deliver["fields"]["delivery_tag"] == 1 and deliver["fields"]["redelivered"] is False
    # in (client to server) events precede the answers they cause
    positions = {(event["name"], event["dir"]): i for i, event in reversed(list(enumerate(amqp)))}
    assert positions[("queue.declare", "in")] < positions[("queue.declare-ok", "out")]
    json.dumps(events)


def test_kafka_produce_and_fetch_are_traced(server: wiregate.testing.Server) -> None:
    with recording(server) as events:
        received = kafka_produce_and_fetch(server.kafka_bootstrap, "traced", [b"one", b"two", b"three"])
        wait_for(lambda: sum(event["kind"] == "close" for event in events) >= 2)
    assert received == [b"one", b"two", b"three"]
    kafka = [event for event in events if event["proto"] == "kafka"]
    produce = [event for event in kafka if event["name"] == "Produce"]
    request, response = produce[0], produce[1]
    assert (request["kind"], request["dir"], response["kind"], response["dir"]) == ("request", "in", "response", "out")
    assert response["correlation_id"] == request["correlation_id"] and response["conn"] == request["conn"]
    assert response["version"] == request["version"]
    assert request["fields"]["client_id"].startswith("kafka-python-producer")
    (topic,) = request["fields"]["topic_data"]
    assert topic["name"] == "traced"
    sent = [p["records"]["records"] for e in produce if e["kind"] == "request" for t in e["fields"]["topic_data"] for p in t["partition_data"]]
    assert sum(sent) == 3
    partition = response["fields"]["responses"][0]["partition_responses"][0]
    assert partition["error_code"] == 0 and partition["error_name"] == "NONE"
    fetches = [event for event in kafka if event["name"] == "Fetch" and event["kind"] == "response"]
    assert fetches
    records = [
        p["records"]["records"]
        for event in fetches
        for t in event["fields"]["responses"]
        for p in t["partitions"]
        if p["records"]
    ]
    assert sum(records) == 3
    api_versions = [event["kind"] for event in kafka if event["name"] == "ApiVersions"]
    assert api_versions[:2] == ["request", "response"]
    assert not [event for event in events if event["kind"] == "malformed"]


def test_tracing_on_and_off_with_running_connections(server: wiregate.testing.Server) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
    channel = connection.channel()
    assert not tracer_of(server).active
    with recording(server) as events:
        channel.queue_declare("late")
        wait_for(lambda: "queue.declare-ok" in names(events))
    channel.queue_declare("after")
    connection.close()
    assert names(events, kind="frame") == ["queue.declare", "queue.declare-ok"]
    assert not tracer_of(server).active


def test_garbage_client_gives_a_malformed_event(server: wiregate.testing.Server) -> None:
    with recording(server) as events:
        with socket.create_connection(server.addresses.amqp, timeout=5) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01" + b"\x09garbage-garbage")
            data = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    data += chunk
        wait_for(lambda: any(event["kind"] == "close" for event in events))
    assert any(event["kind"] == "malformed" and event["dir"] == "in" for event in events)
    assert names(events, dir="out")[-1] == "close"  # the connection ends as it would untraced


# --- wiregate serve --trace / --trace-file --------------------------------------------------


def read_lines_until(proc: Any, stderr: Path, predicate: Callable[[list[str]], bool], timeout: float = 15) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not predicate(lines):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail("trace lines missing; got:\n" + "\n".join(lines))
        lines.append(read_line(proc, stderr, timeout=remaining).decode().rstrip("\n"))
    return lines


def test_serve_trace_prints_readable_lines_after_the_ready_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    trace_file = tmp_path / "trace.jsonl"
    serve = start_serve(
        tmp_path,
        "--host", "127.0.0.1", "--amqp-port", "0", "--http-port", "0", "--kafka-port", "0",
        "--trace", "--trace-file", str(trace_file),
    )  # fmt: skip
    try:
        amqp_url = f"amqp://guest:guest@127.0.0.1:{serve.port('amqp')}/%2F"
        pika_publish_and_consume(amqp_url, "q", b"hello")
        lines = read_lines_until(serve.proc, serve.stderr, lambda lines: any("connection.close-ok" in line for line in lines))
        text = "\n".join(lines)
        assert "\x1b[" not in text  # stdout is a pipe
        assert " → protocol-header AMQP 0-9-1 (8 B)" in text
        assert ' → basic.publish ch=1 exchange="" routing_key=q (' in text
        assert " → content-header ch=1 body_size=5 content_type=text/plain headers={\"n\":1}" in text
        assert ' → content-body ch=1 5 B "hello" (13 B)' in text
        assert " ← basic.deliver ch=1 ctag=" in text and "dtag=1" in text
        assert ' ← content-body ch=1 5 B "hello"' in text
        assert " → basic.ack ch=1 dtag=1" in text
        first = lines[0].split()
        assert first[1].startswith("amqp#") and first[2] == "+"
        received = kafka_produce_and_fetch(f"127.0.0.1:{serve.port('kafka')}", "t", [b"a", b"b", b"c"], linger_ms=50)
        assert received == [b"a", b"b", b"c"]
        lines = read_lines_until(
            serve.proc,
            serve.stderr,
            lambda lines: any("← Fetch" in line and "topics=t[0]:" in line and ":0 " not in line for line in lines),
        )
        text = "\n".join(lines)
        assert " → Produce v" in text and "topics=t[0]:3 records " in text
        produce_response = next(line for line in lines if "← Produce" in line)
        assert "topics=t[0]@0 error=NONE" in produce_response
        assert " → Fetch v" in text and "topics=t[0]@0" in text
    finally:
        serve.proc.send_signal(signal.SIGTERM)
        serve.proc.wait(timeout=10)
        stop_process(serve.proc)
    events = [json.loads(line) for line in trace_file.read_text().splitlines()]
    assert {"amqp", "kafka"} <= {event["proto"] for event in events}
    publish = next(event for event in events if event["name"] == "basic.publish")
    assert publish["fields"]["routing_key"] == "q" and publish["dir"] == "in" and publish["channel"] == 1
    produce = [event for event in events if event["name"] == "Produce"]
    assert [event["kind"] for event in produce[:2]] == ["request", "response"]


def test_serve_trace_colours_with_force_color(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    serve = start_serve(tmp_path, "--host", "127.0.0.1", "--amqp-port", "0", "--http-port", "0", "--kafka-port", "0", "--trace")
    try:
        with socket.create_connection(("127.0.0.1", serve.port("amqp")), timeout=5) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            sock.recv(4096)
        lines = read_lines_until(serve.proc, serve.stderr, lambda lines: any("connection.start" in line for line in lines))
        assert any("\x1b[" in line and "protocol-header" in line for line in lines)
    finally:
        stop_process(serve.proc)


def test_serve_reports_an_unwritable_trace_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "wiregate", "serve", "--amqp-port", "0", "--http-port", "0", "--kafka-port", "0",
         "--trace-file", str(tmp_path / "missing" / "trace.jsonl")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert "trace file" in result.stderr


def test_help_lists_the_trace_options() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "wiregate", "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert "--trace " in result.stdout and "--trace-file PATH" in result.stdout


# --- GET /api/trace -------------------------------------------------------------------------


def open_sse(server: wiregate.testing.Server, query: str = "") -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection(*server.addresses.http, timeout=10)
    connection.request("GET", "/api/trace" + query)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("content-type") == "text/event-stream"
    assert response.readline() == b": wiregate trace\n"  # subscribed
    assert response.readline() == b"\n"
    return connection, response


def read_sse(response: http.client.HTTPResponse, until: Callable[[list[Event]], bool]) -> tuple[list[Event], list[str]]:
    events: list[Event] = []
    others: list[str] = []
    while not until(events):
        line = response.readline().decode()
        assert line, "stream ended"
        if line.startswith("data: "):
            data = json.loads(line[6:])
            if "kind" in data:
                events.append(data)
            else:
                others.append(line)
        elif line.strip():
            others.append(line)
    return events, others


def test_api_trace_streams_server_sent_events_while_subscribed(server: wiregate.testing.Server) -> None:
    assert not tracer_of(server).active
    connection, response = open_sse(server)
    try:
        assert tracer_of(server).active
        pika_publish_and_consume(server.amqp_url, "sse", b"over sse")
        events, _ = read_sse(response, lambda events: "connection.close-ok" in names(events))
    finally:
        response.close()
        connection.close()
    in_names = names(events, dir="in", kind="frame")
    start = in_names.index("basic.publish")
    assert in_names[start : start + 3] == ["basic.publish", "content-header", "content-body"]
    wait_for(lambda: not tracer_of(server).active)  # the last subscriber left: tracing is off


def test_api_trace_filters_by_protocol(server: wiregate.testing.Server) -> None:
    connection, response = open_sse(server, "?proto=kafka")
    try:
        pika_publish_and_consume(server.amqp_url, "ignored", b"x")
        producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap)
        producer.send("filtered", b"v").get(timeout=10)
        producer.close()
        events, _ = read_sse(response, lambda events: "Produce" in names(events, kind="response"))
    finally:
        response.close()
        connection.close()
    assert {event["proto"] for event in events} == {"kafka"}
    status = http.client.HTTPConnection(*server.addresses.http, timeout=5)
    status.request("GET", "/api/trace?proto=stomp")
    assert status.getresponse().status == 400
    status.close()


def test_api_trace_works_over_http_1_0_with_a_raw_socket(server: wiregate.testing.Server) -> None:
    with socket.create_connection(server.addresses.http, timeout=10) as sock:
        sock.sendall(b"GET /api/trace?proto=amqp HTTP/1.0\r\n\r\n")
        data = b""
        while b": wiregate trace\n\n" not in data:
            data += sock.recv(4096)
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 200") and b"content-type: text/event-stream" in head
        assert b"transfer-encoding" not in head  # close-delimited for HTTP/1.0
        with socket.create_connection(server.addresses.amqp, timeout=5) as client:
            client.sendall(b"AMQP\x00\x00\x09\x01")
            client.recv(4096)
        while b'"connection.start"' not in data:
            data += sock.recv(65536)
    event_lines = [line for line in data.split(b"\n") if line.startswith(b"data: ")]
    first = json.loads(event_lines[0][6:])
    assert first["kind"] == "open" and first["proto"] == "amqp"


def publish_raw(address: tuple[str, int], queue: str, count: int) -> None:
    """Many pipelined publishes: many trace events, fast."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        sock.recv(65536)
        sock.sendall(frame.marshal(commands.Connection.StartOk(response="\0guest\0guest"), 0))
        sock.recv(65536)
        sock.sendall(frame.marshal(commands.Connection.TuneOk(2047, 131072, 0), 0))
        sock.sendall(frame.marshal(commands.Connection.Open("/"), 0))
        sock.recv(65536)
        sock.sendall(frame.marshal(commands.Channel.Open(), 1))
        sock.recv(65536)
        body = b"x" * 10
        one = (
            frame.marshal(commands.Basic.Publish(exchange="", routing_key=queue), 1)
            + frame.marshal(header.ContentHeader(0, len(body)), 1)
            + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce"
        )  # fmt: skip
        sock.sendall(one * count)
        sock.sendall(frame.marshal(commands.Connection.Close(200, "bye", 0, 0), 0))
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass


def test_a_slow_sse_client_loses_events_but_never_blocks_the_server(
    server: wiregate.testing.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wiregate.gateway.http

    monkeypatch.setattr(wiregate.gateway.http, "_SSE_BUFFER", 100)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(10)
    slow.connect(server.addresses.http)
    try:
        slow.sendall(b"GET /api/trace HTTP/1.0\r\n\r\n")
        wait_for(lambda: tracer_of(server).active)
        started = time.monotonic()
        publish_raw(server.addresses.amqp, "slow-sse", 5000)  # 15000 events, never read meanwhile
        pika_publish_and_consume(server.amqp_url, "still-served", b"fine")
        assert time.monotonic() - started < 30
        data = b""
        with contextlib.suppress(TimeoutError):
            slow.settimeout(2)
            while b"event: dropped" not in data or b"\n\n" not in data.split(b"event: dropped", 1)[1]:
                chunk = slow.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        assert b"event: dropped" in data
        note = data.split(b"event: dropped\ndata: ", 1)[1].split(b"\n", 1)[0]
        assert json.loads(note)["dropped"] > 0
    finally:
        slow.close()
    wait_for(lambda: not tracer_of(server).active)


# --- faults over HTTP, and in the trace -------------------------------------------------------


def http_json(server: wiregate.testing.Server, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(*server.addresses.http, timeout=5)
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"content-type": "application/json"} if payload is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data) if data else None
    finally:
        connection.close()


def needs_faults(server: wiregate.testing.Server) -> None:
    if getattr(server.broker, "faults", None) is None:
        pytest.skip("broker.faults (fault injection) is not available")


def test_fault_routes(server: wiregate.testing.Server) -> None:
    needs_faults(server)
    assert http_json(server, "GET", "/api/faults")[::2] == (200, [])
    spec = {"protocol": "kafka", "api": "Produce", "action": "error", "error": "NOT_LEADER_OR_FOLLOWER", "times": 2}
    status, headers, rule = http_json(server, "POST", "/api/faults", spec)
    assert status == 201 and rule["api"] == "Produce" and rule["error"] == 6 and rule["times"] == 2
    assert headers["location"] == f"/api/faults/{rule['id']}"
    status, _, listed = http_json(server, "GET", "/api/faults")
    assert status == 200 and [item["id"] for item in listed] == [rule["id"]]
    status, _, error = http_json(server, "POST", "/api/faults", {"protocol": "kafka", "api": "Nope", "action": "error"})
    assert status == 400 and "Nope" in error["reason"]
    status, _, error = http_json(server, "POST", "/api/faults", raw=b"{not json")
    assert status == 400 and error["error"] == "bad_request"
    assert http_json(server, "POST", "/api/faults", [1, 2])[0] == 400
    assert http_json(server, "POST", "/api/faults", raw=b"x" * 70000)[0] == 413
    status, headers, _ = http_json(server, "PUT", "/api/faults")
    assert status == 405 and set(headers["allow"].split(", ")) == {"GET", "HEAD", "POST", "DELETE"}
    assert http_json(server, "DELETE", f"/api/faults/{rule['id']}")[0] == 204
    assert http_json(server, "DELETE", f"/api/faults/{rule['id']}")[0] == 404
    assert http_json(server, "DELETE", "/api/faults/abc")[0] == 404
    http_json(server, "POST", "/api/faults", {"protocol": "amqp", "method": "queue.declare", "action": "observe"})
    assert http_json(server, "DELETE", "/api/faults")[0] == 204
    assert http_json(server, "GET", "/api/faults")[2] == []
    assert http_json(server, "GET", "/api/health")[::2] == (200, {"status": "ok"})


def test_injected_faults_are_in_the_trace(server: wiregate.testing.Server) -> None:
    needs_faults(server)
    spec = {"protocol": "kafka", "api": "Produce", "action": "error", "error": "NOT_LEADER_OR_FOLLOWER"}
    assert http_json(server, "POST", "/api/faults", spec)[0] == 201
    with recording(server) as events:
        producer = KafkaProducer(bootstrap_servers=server.kafka_bootstrap, retries=5, retry_backoff_ms=50)
        producer.send("faulty", b"v").get(timeout=10)  # fails once, retried
        producer.close()
        channel_fault = {"protocol": "amqp", "method": "queue.declare", "queue": "refused", "action": "close_channel", "reply_code": 406}
        assert http_json(server, "POST", "/api/faults", channel_fault)[0] == 201
        connection = pika.BlockingConnection(pika.URLParameters(server.amqp_url))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare("refused")
        connection.close()
    produce = [event for event in events if event["name"] == "Produce" and event["kind"] in ("request", "response", "fault")]
    kinds = [event["kind"] for event in produce]
    assert kinds[:3] == ["request", "fault", "response"]
    fault = produce[1]
    assert fault["conn"] == produce[0]["conn"] and fault["proto"] == "kafka"
    assert fault["fields"]["action"] == "error" and fault["fields"]["error"] == 6
    errors = produce[2]["fields"]["responses"][0]["partition_responses"][0]
    assert errors["error_name"] == "NOT_LEADER_OR_FOLLOWER"
    assert kinds[3:5] == ["request", "response"]  # the retry succeeds
    assert produce[4]["fields"]["responses"][0]["partition_responses"][0]["error_code"] == 0
    amqp_fault = next(event for event in events if event["kind"] == "fault" and event["proto"] == "amqp")
    assert amqp_fault["name"] == "queue.declare" and amqp_fault["conn"].startswith("amqp#")
    close = next(event for event in events if event["name"] == "channel.close" and event["dir"] == "out")
    assert close["fields"]["reply_code"] == 406


def test_http_routes_keep_their_contract(server: wiregate.testing.Server) -> None:
    status, headers, body = http_json(server, "GET", "/api/health")
    assert (status, body, headers["content-type"]) == (200, {"status": "ok"}, "application/json")
    assert http_json(server, "HEAD", "/api/overview")[0] == 200
    assert http_json(server, "GET", "/api/nope")[0] == 404
