"""The decoded-frame trace without sockets: splitters, decoders, tracer, formatter, sinks."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pytest
import trio
from kio.schema.errors import ErrorCode
from pamqp import commands, frame, header, heartbeat
from pamqp.commands import Basic

from tests.unit.test_kafka_connection import request_bytes
from tests.unit.test_kafka_records import make_batch
from wiregate.kafka_wire.protocol import build, encode_response, response_class
from wiregate.gateway.trace import (
    AMQPTap,
    JSONLinesSink,
    KafkaTap,
    Subscription,
    TracePrinter,
    Tracer,
    format_event,
    use_color,
)

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def amqp_client_stream() -> bytes:
    body = b"hello \x00\x01 world"
    properties = commands.Basic.Properties(content_type="text/plain", headers={"n": 1, "s": "x"}, delivery_mode=2)
    return (
        AMQP_HEADER
        + frame.marshal(commands.Connection.StartOk(response="\0guest\0secret", client_properties={"product": "test"}), 0)
        + frame.marshal(commands.Channel.Open(), 1)
        + frame.marshal(Basic.Publish(exchange="x", routing_key="k", mandatory=True), 1)
        + frame.marshal(header.ContentHeader(0, len(body), properties), 1)
        + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce"
        + heartbeat.Heartbeat().marshal()
        + frame.marshal(commands.Basic.Ack(delivery_tag=5, multiple=True), 1)
    )


def collect(tap_class: type, **kwargs: Any) -> tuple[Any, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    return tap_class(events.append, "x#1", "127.0.0.1:1", **kwargs), events


def strip_ts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in event.items() if k != "ts"} for event in events]


# --- AMQP -----------------------------------------------------------------------


def test_amqp_client_stream_is_split_and_decoded() -> None:
    tap, events = collect(AMQPTap)
    tap.received(amqp_client_stream())
    names = [event["name"] for event in events]
    assert names == [
        "protocol-header",
        "connection.start-ok",
        "channel.open",
        "basic.publish",
        "content-header",
        "content-body",
        "heartbeat",
        "basic.ack",
    ]
    assert all(event["dir"] == "in" and event["proto"] == "amqp" and event["conn"] == "x#1" for event in events)
    assert events[0]["fields"]["version"] == "0-9-1"
    start_ok = events[1]["fields"]
    assert start_ok["response"] == "<13 bytes>"  # credentials never reach the trace
    assert start_ok["client_properties"] == {"product": "test"}
    publish = events[3]
    assert publish["channel"] == 1
    assert publish["fields"]["exchange"] == "x" and publish["fields"]["routing_key"] == "k"
    assert publish["fields"]["mandatory"] is True
    assert publish["size"] == len(frame.marshal(Basic.Publish(exchange="x", routing_key="k", mandatory=True), 1))
    content_header = events[4]["fields"]
    assert content_header["body_size"] == 14
    assert content_header["properties"] == {"content_type": "text/plain", "headers": {"n": 1, "s": "x"}, "delivery_mode": 2}
    body = events[5]
    assert body["size"] == 14 + 8 and body["fields"]["length"] == 14
    assert body["fields"]["preview"] == "hello .. world"
    assert events[7]["fields"]["delivery_tag"] == 5 and events[7]["fields"]["multiple"] is True
    json.dumps(events)  # everything is JSON-able


def test_amqp_feeding_one_byte_at_a_time_gives_the_same_events() -> None:
    data = amqp_client_stream()
    whole, whole_events = collect(AMQPTap)
    whole.received(data)
    split, split_events = collect(AMQPTap)
    for i in range(len(data)):
        split.received(data[i : i + 1])
    assert strip_ts(split_events) == strip_ts(whole_events)


def test_amqp_truncated_frame_waits_for_the_rest() -> None:
    tap, events = collect(AMQPTap)
    publish = frame.marshal(Basic.Publish(exchange="", routing_key="q"), 1)
    tap.received(AMQP_HEADER + publish[:-1])
    assert [event["name"] for event in events] == ["protocol-header"]
    tap.received(publish[-1:])
    assert [event["name"] for event in events] == ["protocol-header", "basic.publish"]


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x07\x00\x01\x00\x00\x00\x00\xce",  # unknown frame type
        b"\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x28\x00",  # frame end byte is not 0xce
        b"\x01\x00\x01\x00\x00\x00\x04\x00\x63\x00\x63\xce",  # unknown method 99.99
        b"\x01\x00\x01\x00\x00\x00\x06\x00\x3c\x00\x28\x00\x00\xce",  # basic.publish cut short
        b"\x02\x00\x01\x00\x00\x00\x02\x00\x3c\xce",  # content header too short
        bytes(range(256)) * 4,
    ],
)
def test_amqp_garbage_gives_one_malformed_event_then_silence(garbage: bytes) -> None:
    tap, events = collect(AMQPTap)
    tap.received(AMQP_HEADER + garbage)
    tap.received(frame.marshal(Basic.Publish(exchange="", routing_key="q"), 1))
    assert [event["kind"] for event in events] == ["frame", "malformed"]
    assert events[1]["dir"] == "in" and events[1]["fields"]["error"]
    # the other direction is still decoded
    tap.sent(frame.marshal(commands.Channel.OpenOk(), 1))
    assert events[-1]["name"] == "channel.open-ok" and events[-1]["dir"] == "out"


def test_amqp_wrong_protocol_header_is_malformed() -> None:
    tap, events = collect(AMQPTap)
    tap.received(b"GET / HTTP/1.1\r\n\r\n")
    assert [event["kind"] for event in events] == ["malformed"]
    assert "protocol header" in events[0]["fields"]["error"]


def test_amqp_server_answering_a_bad_header_with_its_own() -> None:
    tap, events = collect(AMQPTap)
    tap.sent(AMQP_HEADER)
    assert [(event["dir"], event["name"]) for event in events] == [("out", "protocol-header")]


def test_amqp_server_stream_decodes_deliveries() -> None:
    tap, events = collect(AMQPTap)
    body = b"x" * 100
    deliver = Basic.Deliver(consumer_tag="ctag-1", delivery_tag=5, redelivered=True, exchange="", routing_key="q")
    tap.sent(
        frame.marshal(commands.Connection.Start(server_properties={"product": "RabbitMQ"}), 0)
        + frame.marshal(deliver, 1)
        + frame.marshal(header.ContentHeader(0, len(body)), 1)
        + frame.marshal(frame_body(body), 1)
    )
    assert [event["name"] for event in events] == ["connection.start", "basic.deliver", "content-header", "content-body"]
    assert events[1]["fields"]["consumer_tag"] == "ctag-1"
    assert events[3]["fields"]["preview"] == "x" * 48 + "…"
    line = format_event(events[1])
    assert "basic.deliver ch=1 ctag=ctag-1 dtag=5 redelivered" in line


def frame_body(data: bytes) -> Any:
    from pamqp import body as pamqp_body

    return pamqp_body.ContentBody(data)


def test_amqp_resume_seeds_from_the_protocol_buffer() -> None:
    class Running:
        _state = "opened"
        # the unconsumed rest of the input: a frame's first half
        _buf = bytearray(frame.marshal(Basic.Publish(exchange="", routing_key="q"), 1)[:5])

    tap, events = collect(AMQPTap)
    tap.resume(Running())
    assert events == []
    tap.received(frame.marshal(Basic.Publish(exchange="", routing_key="q"), 1)[5:])
    assert [event["name"] for event in events] == ["basic.publish"]


def test_a_tap_survives_a_protocol_object_of_another_shape() -> None:
    class Odd:
        _state = "opened"
        _buf = 42  # not bytes: ignored

    tap, events = collect(AMQPTap)
    tap.resume(Odd())
    tap.received(frame.marshal(commands.Channel.Open(), 1))
    assert [event["name"] for event in events] == ["channel.open"]


# --- Kafka ----------------------------------------------------------------------


def produce_request(correlation_id: int, acks: int = 1) -> bytes:
    batch = make_batch([b"a", b"b", b"c"])
    return request_bytes(
        0,
        9,
        correlation_id,
        "app",
        acks=acks,
        timeout=1000,
        topic_data=[{"name": "t", "partition_data": [{"index": 0, "records": batch}]}],
    )


def produce_response(correlation_id: int, error: ErrorCode = ErrorCode.none) -> bytes:
    cls = response_class(0, 9)
    response = build(
        cls,
        responses=[{"name": "t", "partition_responses": [{"index": 0, "error_code": error, "base_offset": 7}]}],
    )
    return encode_response(response, correlation_id)


def test_kafka_request_and_response_are_matched_by_correlation_id() -> None:
    tap, events = collect(KafkaTap)
    tap.received(produce_request(4) + request_bytes(18, 3, 5, "app", client_software_name="x", client_software_version="1"))
    tap.sent(produce_response(4, ErrorCode.not_leader_or_follower))
    kinds = [(event["kind"], event["name"], event["correlation_id"], event.get("version")) for event in events]
    assert kinds == [("request", "Produce", 4, 9), ("request", "ApiVersions", 5, 3), ("response", "Produce", 4, 9)]
    request = events[0]["fields"]
    assert request["client_id"] == "app" and request["acks"] == 1 and request["timeout"] == 1000
    records = request["topic_data"][0]["partition_data"][0]["records"]
    assert records == {"bytes": len(make_batch([b"a", b"b", b"c"])), "batches": 1, "records": 3}
    partition = events[2]["fields"]["responses"][0]["partition_responses"][0]
    assert partition["error_code"] == 6 and partition["error_name"] == "NOT_LEADER_OR_FOLLOWER"
    assert partition["base_offset"] == 7
    assert events[0]["size"] == len(produce_request(4))
    json.dumps(events)


def test_kafka_feeding_one_byte_at_a_time_gives_the_same_events() -> None:
    data = produce_request(1) + produce_request(2)
    answer = produce_response(1) + produce_response(2)
    whole, whole_events = collect(KafkaTap)
    whole.received(data)
    whole.sent(answer)
    split, split_events = collect(KafkaTap)
    for i in range(len(data)):
        split.received(data[i : i + 1])
    for i in range(len(answer)):
        split.sent(answer[i : i + 1])
    assert strip_ts(split_events) == strip_ts(whole_events)
    assert len(whole_events) == 4


def test_kafka_acks_0_produce_expects_no_response() -> None:
    tap, events = collect(KafkaTap)
    tap.received(produce_request(1, acks=0))
    assert tap._pending == {}


def test_kafka_response_without_its_request_is_named_unknown() -> None:
    tap, events = collect(KafkaTap)
    tap.sent(produce_response(9))
    assert [(event["kind"], event["name"], event["correlation_id"]) for event in events] == [("response", "unknown", 9)]


def test_kafka_newer_api_versions_request_and_its_v0_answer() -> None:
    tap, events = collect(KafkaTap)
    tap.received(struct.pack(">ihhi", 8, 18, 99, 3))
    v0 = build(response_class(18, 0), error_code=ErrorCode.unsupported_version, api_keys=[dict(api_key=0, min_version=0, max_version=9)])
    tap.sent(encode_response(v0, 3))
    assert [(event["kind"], event["name"]) for event in events] == [("request", "ApiVersions"), ("response", "ApiVersions")]
    assert events[1]["fields"]["error_name"] == "UNSUPPORTED_VERSION"


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack(">i", -5) + b"xxxx",  # negative size
        struct.pack(">i", 4) + b"abcd",  # shorter than a request header
        struct.pack(">ihhi", 8, 999, 0, 1),  # unknown API key
        struct.pack(">ihhi", 12, 0, 9, 1) + b"\xff\xff\xff\xff",  # Produce that does not decode
    ],
)
def test_kafka_garbage_gives_one_malformed_event_then_silence(garbage: bytes) -> None:
    tap, events = collect(KafkaTap)
    tap.received(garbage)
    tap.received(produce_request(1))
    assert [event["kind"] for event in events] == ["malformed"]


def test_kafka_topic_ids_are_resolved_when_the_broker_knows_them() -> None:
    import uuid

    topic_id = uuid.uuid4()
    tap, events = collect(KafkaTap, topic_name={topic_id: "named"}.get)
    tap.received(
        request_bytes(
            1,
            15,
            1,
            "app",
            max_wait=500,
            topics=[{"topic_id": topic_id, "partitions": [{"partition": 0, "fetch_offset": 3}]}],
        )
    )
    topic = events[0]["fields"]["topics"][0]
    assert topic["topic_id"] == str(topic_id) and topic["topic"] == "named"
    assert "topics=named[0]@3" in format_event(events[0])


# --- the tracer -------------------------------------------------------------------


class FakeHandler:
    def __init__(self, protocol: str, peer: str, protocol_connection: Any = None) -> None:
        self.protocol = protocol
        self.peer = peer
        self.protocol_connection = protocol_connection
        self.peer_gone = False
        self.tap = None
        self.conn_id = ""


class FakeFaults:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def add_listener(self, fn: Any) -> None:
        self.listeners.append(fn)

    def remove_listener(self, fn: Any) -> None:
        self.listeners.remove(fn)

    def fire(self, hit: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(hit)


class FakeBroker:
    def __init__(self) -> None:
        self.faults = FakeFaults()


def test_tracer_attaches_taps_only_while_a_sink_exists() -> None:
    tracer = Tracer()
    handler = FakeHandler("amqp", "127.0.0.1:1")
    assert tracer.register(handler) == "amqp#1"
    assert handler.tap is None and not tracer.active
    events: list[dict[str, Any]] = []
    tracer.add_sink(events.append)
    assert isinstance(handler.tap, AMQPTap)
    late = FakeHandler("kafka", "127.0.0.1:2")
    assert tracer.register(late) == "kafka#1"
    assert isinstance(late.tap, KafkaTap)
    assert [(event["kind"], event["conn"]) for event in events] == [("open", "kafka#1")]
    tracer.unregister(late)
    assert events[-1]["kind"] == "close" and events[-1]["fields"] == {"by": "server"}
    assert tracer.remove_sink(events.append) is True
    assert handler.tap is None and not tracer.active
    assert tracer.remove_sink(events.append) is False
    other = FakeHandler("http", "127.0.0.1:3")
    tracer.add_sink(events.append)
    tracer.register(other)
    assert other.tap is None  # only AMQP and Kafka are traced


def test_tracer_resumes_running_connections_from_their_buffer() -> None:
    class Running:
        _state = "opened"
        _buf = bytearray(frame.marshal(commands.Channel.Open(), 1))

    tracer = Tracer()
    tracer.register(FakeHandler("amqp", "127.0.0.1:1", Running()))
    events: list[dict[str, Any]] = []
    tracer.add_sink(events.append)
    assert [event["name"] for event in events] == ["channel.open"]


def test_a_failing_sink_is_removed_and_the_others_still_called(caplog: pytest.LogCaptureFixture) -> None:
    tracer = Tracer()
    events: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("sink bug")

    tracer.add_sink(broken)
    tracer.add_sink(events.append)
    tracer.emit({"kind": "open"})
    tracer.emit({"kind": "close"})
    assert len(events) == 2 and tracer.sinks == (events.append,)
    assert "sink bug" in caplog.text


def test_faults_become_events_with_the_connection_id() -> None:
    broker = FakeBroker()
    tracer = Tracer(broker)
    handler = FakeHandler("kafka", "127.0.0.1:7")
    tracer.register(handler)
    broker.faults.fire({"rule": 1, "protocol": "kafka", "peer": "127.0.0.1:7", "api": "Produce", "action": "error"})
    assert broker.faults.listeners == []  # not listening while tracing is off
    events: list[dict[str, Any]] = []
    tracer.add_sink(events.append)
    broker.faults.fire({"rule": 1, "protocol": "kafka", "peer": "127.0.0.1:7", "api": "Produce", "action": "error", "error": 6, "topic": ["t"]})
    (event,) = events
    assert event["kind"] == "fault" and event["conn"] == "kafka#1" and event["proto"] == "kafka"
    assert event["name"] == "Produce"
    assert event["fields"] == {"rule": 1, "api": "Produce", "action": "error", "error": 6, "topic": ["t"]}
    assert "FAULT Produce" in format_event(event) and "action=error" in format_event(event)
    tracer.remove_sink(events.append)
    assert broker.faults.listeners == []


# --- formatter and sinks -----------------------------------------------------------------


def test_format_amqp_publish_line() -> None:
    tap, events = collect(AMQPTap)
    tap.received(AMQP_HEADER + frame.marshal(Basic.Publish(exchange="x", routing_key="k"), 1))
    line = format_event(events[1], color=False)
    assert "x#1 → basic.publish ch=1 exchange=x routing_key=k (" in line
    assert "\x1b[" not in line
    assert "->" in format_event(events[1], unicode=False)


def test_format_kafka_lines_and_highlighted_errors() -> None:
    tap, events = collect(KafkaTap)
    tap.received(produce_request(4))
    tap.sent(produce_response(4, ErrorCode.not_leader_or_follower))
    request = format_event(events[0])
    size = len(make_batch([b"a", b"b", b"c"]))
    assert f"Produce v9 corr=4 client=app acks=1 topics=t[0]:3 records {size} B" in request
    response = format_event(events[1], color=True)
    assert "error=t[0]:NOT_LEADER_OR_FOLLOWER" in response
    assert "\x1b[1;31merror=t[0]:NOT_LEADER_OR_FOLLOWER" in response
    tap.received(produce_request(5))
    tap.sent(produce_response(5))
    assert "topics=t[0]@7 error=NONE" in format_event(events[3])


def test_format_amqp_close_with_error_code_is_red() -> None:
    tap, events = collect(AMQPTap)
    tap.sent(frame.marshal(commands.Channel.Close(reply_code=404, reply_text="NOT_FOUND - no queue 'q'", class_id=50, method_id=10), 1))
    line = format_event(events[0], color=True)
    assert "\x1b[1;31mreply_code=404" in line
    assert 'reply_text="NOT_FOUND - no queue \'q\'"' in line


def test_format_survives_odd_events() -> None:
    assert "?" in format_event({})
    assert format_event({"kind": "malformed", "fields": {"error": "boom"}, "dir": "in"}).endswith("boom")


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, False, False),
        ({}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
        ({"TERM": "dumb"}, True, False),
    ],
)
def test_use_color(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, expected: bool) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert use_color(Stream()) is expected


def test_printer_holds_lines_until_released() -> None:
    out = io.StringIO()
    printer = TracePrinter(out, color=False, hold=True)
    printer({"kind": "open", "name": "open", "conn": "amqp#1", "peer": "p", "ts": 0})
    assert out.getvalue() == ""
    printer.release()
    printer({"kind": "close", "name": "close", "conn": "amqp#1", "peer": "p", "ts": 0, "fields": {"by": "client"}})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "amqp#1 + open p" in lines[0] and "by client" in lines[1]


def test_json_lines_sink(tmp_path: Any) -> None:
    path = tmp_path / "trace.jsonl"
    sink = JSONLinesSink(path)
    sink({"kind": "open", "n": 1})
    assert json.loads(path.read_text()) == {"kind": "open", "n": 1}  # written at once
    sink({"kind": "close", "odd": object()})
    sink.close()
    sink({"kind": "ignored"})
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["kind"] == "close"


def test_subscription_filters_bounds_and_counts() -> None:
    subscription = Subscription(proto="kafka", maxlen=2)
    subscription({"proto": "amqp"})
    for n in range(5):
        subscription({"proto": "kafka", "n": n})
    events, dropped = subscription.drain()
    assert [event["n"] for event in events] == [0, 1] and dropped == 3
    subscription({"proto": "kafka", "n": 9})
    events, dropped = subscription.drain()
    assert [event["n"] for event in events] == [9] and dropped == 0
    assert subscription.dropped_total == 3


def test_subscription_wait_wakes_on_an_event_and_on_close() -> None:
    async def main() -> None:
        subscription = Subscription()
        with trio.fail_after(2):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(subscription.wait, 10)
                await trio.sleep(0.01)
                subscription({"proto": "amqp"})
            assert subscription.drain()[0] == [{"proto": "amqp"}]
            subscription.close()
            await subscription.wait(10)
            assert subscription.closed

    trio.run(main)
