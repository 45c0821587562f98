"""AMQP 0-9-1 scenarios for the differential oracle.

Each ``scenario_<name>(s)`` drives the real pika client through a
:class:`compat.harness.Session` and records what the client observed; the
registered callable ``SCENARIOS[name](url) -> observations`` runs it
against one broker. Scenarios use unique names (``s.q``/``s.x``), clean up
after themselves, and record exceptions instead of raising.

Rules that keep observations deterministic on a real RabbitMQ:

* publish and get on the same channel, or publish with confirms, before
  counting or getting (a message published on one channel is not
  guaranteed to be enqueued when another channel asks);
* wait for an expected number of events with ``s.pump`` rather than
  sleeping, and only ``s.settle`` briefly to prove that nothing more comes;
* never record consumer tags, generated names, timestamps or anything
  timing-dependent without normalising it.
"""

from __future__ import annotations

import datetime
import decimal
import struct

import pika
import pika.spec
from pika.spec import BasicProperties

from compat.harness import SCENARIOS, Session, error, message, method, scenario, typed

__all__ = ["SCENARIOS"]

B = BasicProperties


# =============================================================================
# connection
# =============================================================================

@scenario
def scenario_connection_server_properties(s: Session):
    conn = s.connect()
    props = conn._impl.server_properties
    s.rec("keys", sorted(props))
    s.rec("capabilities", typed(props.get("capabilities")))
    for key in ("product", "version"):
        s.rec(key, typed(props.get(key)))
    s.rec("types", {key: type(value).__name__ for key, value in sorted(props.items())})
    params = conn._impl.params
    s.rec("tuned", {"channel_max": params.channel_max, "frame_max": params.frame_max,
                    "heartbeat": params.heartbeat})


@scenario
def scenario_connection_server_identity(s: Session):
    """Free-text identity strings (kept apart: an app rarely depends on them)."""
    props = s.connect()._impl.server_properties
    for key in ("platform", "copyright", "information"):
        s.rec(key, props.get(key))
    s.rec("cluster_name_type", type(props.get("cluster_name")).__name__)


@scenario
def scenario_connection_start_and_tune(s: Session):
    """Connection.Start/Tune fields as decoded by pika during the handshake."""
    seen = []
    original = pika.frame.decode_frame

    def spy(data):
        consumed, value = original(data)
        if isinstance(value, pika.frame.Method) and value.channel_number == 0:
            m = value.method
            if isinstance(m, pika.spec.Connection.Start):
                seen.append({"method": m.NAME, "version": [m.version_major, m.version_minor],
                             "mechanisms": m.mechanisms.decode(), "locales": m.locales.decode()})
            elif isinstance(m, pika.spec.Connection.Tune):
                seen.append(method(m))
            elif isinstance(m, pika.spec.Connection.OpenOk):
                seen.append(method(m))
        return consumed, value

    # pika's connection module resolves frame.decode_frame at call time.
    pika.frame.decode_frame = spy
    try:
        conn = s.connect()
    finally:
        pika.frame.decode_frame = original
    s.rec("handshake", seen)
    conn.close()
    s.rec("closed", conn.is_closed)


@scenario
def scenario_connection_wrong_vhost(s: Session):
    url = s.url.rsplit("/", 1)[0] + "/" + s.name("vhost")
    s.attempt("connect", s.connect, url)


@scenario
def scenario_connection_bad_password(s: Session):
    url = s.url.replace("guest:guest@", "guest:wrong@")
    s.attempt("connect", s.connect, url)


@scenario
def scenario_connection_unknown_user(s: Session):
    url = s.url.replace("guest:guest@", "nobody-here:x@")
    s.attempt("connect", s.connect, url)


@scenario
def scenario_connection_tune_client_limits(s: Session):
    conn = s.connect(channel_max=3, frame_max=8192, heartbeat=0)
    params = conn._impl.params
    s.rec("tuned", [params.channel_max, params.frame_max, params.heartbeat])
    channels = []
    for number in (1, 2, 3):
        channels.append(s.attempt(f"open {number}", lambda n=number: conn.channel(n) and n))
    s.attempt("open 4 (above channel_max)", lambda: conn.channel(4) and 4)
    s.attempt("declare on 1 afterwards", lambda: conn.channel().exchange_declare("amq.direct", passive=True))
    s.rec("connection open", conn.is_open)


@scenario
def scenario_connection_heartbeat_negotiation(s: Session):
    proposed = []

    def chooser(_conn, server_value):
        proposed.append(server_value)
        return 7

    conn = s.connect(heartbeat=chooser)
    s.rec("server proposed", proposed)
    s.rec("negotiated", conn._impl.params.heartbeat)
    conn.close()
    conn = s.connect(heartbeat=0)
    s.rec("disabled", conn._impl.params.heartbeat)


@scenario
def scenario_connection_small_frame_max_splits_bodies(s: Session):
    conn = s.connect(frame_max=4096)
    s.rec("frame_max", conn._impl.params.frame_max)
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    data = bytes(range(256)) * 40  # 10240 bytes -> bodies of 4088, 4088, 2064
    s.publish(ch, "", q, data)
    s.rec("get", s.get(ch, q, auto_ack=True))


@scenario
def scenario_connection_error_closes_all_channels(s: Session):
    conn = s.connect()
    ch1 = conn.channel()
    ch2 = conn.channel()
    s.attempt("unknown exchange type", ch2.exchange_declare, s.x("x"), "no-such-type")
    s.rec("conn open", conn.is_open)
    s.rec("ch1 open", ch1.is_open)
    s.attempt("use ch1", ch1.queue_declare, s.q("q"))


def _frame(kind: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + end


def _method_frame(channel: int, method_obj) -> bytes:
    return pika.frame.Method(channel, method_obj).marshal()


def _protocol_error(s: Session, label: str, build) -> None:
    """Send ``build(conn)`` raw bytes on a fresh connection; record how it ends."""
    conn = s.connect()
    conn.channel()  # channel 1 open
    conn._impl._output_marshaled_frames([build(conn)])
    s.pump(conn, lambda: not conn.is_open, timeout=0.3, label=f"{label}: error")
    s.rec(label, "still open" if conn.is_open else "closed")
    if conn.is_open:
        s.attempt(f"{label}: then", lambda: conn.channel().exchange_declare("amq.direct", passive=True))


@scenario
def scenario_connection_protocol_errors(s: Session):
    """Malformed or out-of-order frames: which code, which text, which level."""
    name = s.q("q")
    s.connect().channel().queue_declare(name)
    cases = {
        "method on unopened channel": lambda c: _method_frame(5, pika.spec.Queue.Declare(queue=name)),
        "channel.open on open channel": lambda c: _method_frame(1, pika.spec.Channel.Open()),
        "queue.declare on channel 0": lambda c: _method_frame(0, pika.spec.Queue.Declare(queue=name)),
        "channel.open above channel_max": lambda c: _method_frame(4000, pika.spec.Channel.Open()),
        "bad frame end octet": lambda c: _method_frame(1, pika.spec.Basic.Qos())[:-1] + b"\x00",
        "unknown frame type": lambda c: _frame(9, 1, b"x"),
        "body without header": lambda c: _frame(3, 1, b"abc"),
        "header without publish": lambda c: pika.frame.Header(1, 3, B()).marshal(),
        "unknown method id": lambda c: _frame(1, 1, struct.pack(">HH", 60, 999)),
        "unknown class id": lambda c: _frame(1, 1, struct.pack(">HH", 99, 10)),
        "heartbeat on channel 1": lambda c: _frame(8, 1, b""),
        "frame larger than frame_max": lambda c: _frame(3, 1, b"x" * (c._impl.params.frame_max + 100)),
        "body longer than declared": lambda c: (
            _method_frame(1, pika.spec.Basic.Publish(exchange="", routing_key=name))
            + pika.frame.Header(1, 2, B()).marshal() + _frame(3, 1, b"12345")),
        "method while expecting content": lambda c: (
            _method_frame(1, pika.spec.Basic.Publish(exchange="", routing_key=name))
            + _method_frame(1, pika.spec.Basic.Qos())),
        "truncated method arguments": lambda c: _frame(1, 1, struct.pack(">HH", 50, 10) + b"\x00"),
    }
    for label, build in cases.items():
        _protocol_error(s, label, build)
    ch = s.connect().channel()
    s.rec("messages that reached the queue", [s.get(ch, name, auto_ack=True) for _ in range(2)])


# =============================================================================
# channel
# =============================================================================

@scenario
def scenario_channel_reopen_same_number(s: Session):
    conn = s.connect()
    ch = conn.channel(7)
    s.rec("number", ch.channel_number)
    ch.close()
    s.rec("closed", ch.is_closed)
    ch = conn.channel(7)
    s.rec("reopened", [ch.channel_number, ch.is_open])
    s.attempt("use", ch.exchange_declare, "amq.fanout", passive=True)


@scenario
def scenario_channel_flow(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("flow active=True", ch.flow, True)
    s.attempt("flow active=False", ch.flow, False)
    s.rec("conn open", conn.is_open)


@scenario
def scenario_channel_error_then_new_channel(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("passive missing", ch.queue_declare, s.name("missing"), passive=True)
    s.rec("channel open", ch.is_open)
    s.attempt("use closed channel", ch.queue_declare, s.q("q"))
    s.rec("conn open", conn.is_open)
    ch2 = conn.channel()
    s.rec("new channel number", ch2.channel_number)
    s.attempt("declare on new channel", ch2.queue_declare, s.q("q"))


@scenario
def scenario_channel_many_numbers(s: Session):
    conn = s.connect()
    chans = [conn.channel() for _ in range(5)]
    s.rec("numbers", [c.channel_number for c in chans])
    chans[1].close()
    chans[3].close()
    s.rec("reused", [conn.channel().channel_number, conn.channel().channel_number, conn.channel().channel_number])


# =============================================================================
# exchanges
# =============================================================================

@scenario
def scenario_exchange_declare_all_types(s: Session):
    ch = s.channel()
    for kind in ("direct", "fanout", "topic", "headers"):
        name = s.x(kind)
        s.attempt(f"declare {kind}", ch.exchange_declare, name, kind)
        s.attempt(f"redeclare {kind}", ch.exchange_declare, name, kind)
        s.attempt(f"passive {kind}", ch.exchange_declare, name, passive=True)
        s.attempt(f"passive {kind} wrong type ignored", ch.exchange_declare, name, "fanout", passive=True)
    s.attempt("declare durable", ch.exchange_declare, s.x("durable"), "direct", durable=True)
    s.attempt("declare auto_delete", ch.exchange_declare, s.x("ad"), "direct", auto_delete=True)
    s.attempt("declare internal", ch.exchange_declare, s.x("internal"), "direct", internal=True)


@scenario
def scenario_exchange_declare_unknown_type(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("declare", ch.exchange_declare, s.x("x"), "no-such-type")
    s.rec("conn open", conn.is_open)


@scenario
def scenario_exchange_redeclare_mismatches(s: Session):
    conn = s.connect()
    ch = conn.channel()
    name = s.x("x")
    ch.exchange_declare(name, "direct", durable=False, auto_delete=False,
                        arguments={"alternate-exchange": "ae1", "x-other": 1})
    cases = [
        ("type", dict(exchange_type="fanout")),
        ("durable", dict(exchange_type="direct", durable=True)),
        ("auto_delete", dict(exchange_type="direct", auto_delete=True)),
        ("internal", dict(exchange_type="direct", internal=True)),
        ("alternate-exchange", dict(exchange_type="direct", arguments={"alternate-exchange": "ae2", "x-other": 1})),
        ("alternate-exchange missing", dict(exchange_type="direct", arguments={"x-other": 1})),
        ("other arg differs", dict(exchange_type="direct", arguments={"alternate-exchange": "ae1", "x-other": 2})),
        ("same", dict(exchange_type="direct", arguments={"alternate-exchange": "ae1", "x-other": 1})),
    ]
    for label, kwargs in cases:
        if not ch.is_open:
            ch = conn.channel()
        s.attempt(label, ch.exchange_declare, name, **kwargs)


@scenario
def scenario_exchange_passive_missing(s: Session):
    ch = s.channel()
    s.attempt("passive", ch.exchange_declare, s.name("nope"), passive=True)


@scenario
def scenario_exchange_builtin(s: Session):
    conn = s.connect()
    ch = conn.channel()
    for name in ("amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace", ""):
        if not ch.is_open:
            ch = conn.channel()
        s.attempt(f"passive {name!r}", ch.exchange_declare, name, passive=True)
    for name, kind in (("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                       ("amq.headers", "headers"), ("amq.match", "headers")):
        if not ch.is_open:
            ch = conn.channel()
        s.attempt(f"declare {name} {kind} durable", ch.exchange_declare, name, kind, durable=True)
    for name, kind, durable in (("amq.direct", "direct", False), ("amq.direct", "fanout", True)):
        if not ch.is_open:
            ch = conn.channel()
        s.attempt(f"declare {name} {kind} durable={durable}", ch.exchange_declare, name, kind, durable=durable)


@scenario
def scenario_exchange_reserved_prefix(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("declare amq.*", ch.exchange_declare, "amq." + s.name("x"), "direct")
    ch = conn.channel()
    s.attempt("passive amq.* missing", ch.exchange_declare, "amq." + s.name("x"), passive=True)
    ch = conn.channel()
    s.attempt("delete amq.direct", ch.exchange_delete, "amq.direct")
    ch = conn.channel()
    s.attempt("passive amq.direct still there", ch.exchange_declare, "amq.direct", passive=True)


@scenario
def scenario_exchange_default_operations(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.attempt("declare '' direct", ch.exchange_declare, "", "direct")
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("delete ''", ch.exchange_delete, "")
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("bind queue to ''", ch.queue_bind, q, "", routing_key="k")
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("unbind queue from ''", ch.queue_unbind, q, "", routing_key=q)
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("bind '' to amq.direct", ch.exchange_bind, "", "amq.direct", routing_key="k")
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("bind amq.direct to ''", ch.exchange_bind, "amq.direct", "", routing_key="k")
    ch = conn.channel() if not ch.is_open else ch
    s.publish(ch, "", q, b"via default")
    s.rec("get", s.get(ch, q, auto_ack=True))


@scenario
def scenario_exchange_delete_missing(s: Session):
    ch = s.channel()
    s.attempt("delete", ch.exchange_delete, s.name("nope"))
    s.attempt("delete if_unused", ch.exchange_delete, s.name("nope"), if_unused=True)


@scenario
def scenario_exchange_delete_if_unused(s: Session):
    conn = s.connect()
    ch = conn.channel()
    x = s.x("x")
    q = s.q("q")
    ch.exchange_declare(x, "direct")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "k")
    s.attempt("delete if_unused (bound)", ch.exchange_delete, x, if_unused=True)
    ch = conn.channel()
    s.attempt("passive still exists", ch.exchange_declare, x, passive=True)
    ch.queue_unbind(q, x, "k")
    s.attempt("delete if_unused (unbound)", ch.exchange_delete, x, if_unused=True)
    s.attempt("passive gone", ch.exchange_declare, x, passive=True)


@scenario
def scenario_exchange_delete_as_source_and_destination(s: Session):
    conn = s.connect()
    ch = conn.channel()
    src, dst = s.x("src"), s.x("dst")
    q = s.q("q")
    ch.exchange_declare(src, "fanout")
    ch.exchange_declare(dst, "fanout")
    ch.queue_declare(q)
    ch.exchange_bind(dst, src)
    ch.queue_bind(q, dst)
    s.attempt("delete dst if_unused (is destination only)", ch.exchange_delete, dst, if_unused=True)
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("delete src if_unused (is source)", ch.exchange_delete, src, if_unused=True)
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("delete dst", ch.exchange_delete, dst)
    s.publish(ch, src, "", b"m")
    s.rec("queue after dst deleted", s.drain(ch, q))


@scenario
def scenario_exchange_auto_delete_lifecycle(s: Session):
    conn = s.connect()
    ch = conn.channel()
    x, x2 = s.x("x"), s.x("x2")
    q = s.q("q")
    ch.exchange_declare(x, "direct", auto_delete=True)
    ch.queue_declare(q)
    s.attempt("never bound: still there", ch.exchange_declare, x, passive=True)
    ch.queue_bind(q, x, "a")
    ch.queue_bind(q, x, "b")
    ch.queue_unbind(q, x, "a")
    s.attempt("one binding left", ch.exchange_declare, x, passive=True)
    ch.queue_unbind(q, x, "b")
    s.attempt("last binding removed", ch.exchange_declare, x, passive=True)
    ch = conn.channel()
    ch.exchange_declare(x2, "fanout", auto_delete=True)
    ch.queue_bind(q, x2)
    ch.queue_delete(q)
    s.attempt("bound queue deleted", ch.exchange_declare, x2, passive=True)


@scenario
def scenario_exchange_to_exchange_binding(s: Session):
    conn = s.connect()
    ch = conn.channel()
    e1, e2 = s.x("e1"), s.x("e2")
    q = s.q("q")
    ch.exchange_declare(e1, "direct")
    ch.exchange_declare(e2, "fanout")
    ch.queue_declare(q)
    ch.queue_bind(q, e2)
    s.attempt("bind e2<-e1", ch.exchange_bind, e2, e1, routing_key="k")
    s.attempt("bind again", ch.exchange_bind, e2, e1, routing_key="k")
    s.publish(ch, e1, "k", b"match")
    s.publish(ch, e1, "other", b"nomatch")
    s.rec("after bind", s.drain(ch, q))
    s.attempt("unbind", ch.exchange_unbind, e2, e1, routing_key="k")
    s.attempt("unbind again", ch.exchange_unbind, e2, e1, routing_key="k")
    s.publish(ch, e1, "k", b"after-unbind")
    s.rec("after unbind", s.drain(ch, q))
    s.attempt("bind missing source", ch.exchange_bind, e2, s.name("missing"), routing_key="k")
    ch = conn.channel()
    s.attempt("bind missing destination", ch.exchange_bind, s.name("missing"), e1, routing_key="k")


@scenario
def scenario_exchange_loop_delivers_once(s: Session):
    conn = s.connect()
    ch = conn.channel()
    a, b = s.x("a"), s.x("b")
    q = s.q("q")
    ch.exchange_declare(a, "fanout")
    ch.exchange_declare(b, "fanout")
    ch.queue_declare(q)
    ch.exchange_bind(b, a)
    ch.exchange_bind(a, b)
    ch.queue_bind(q, a)
    ch.queue_bind(q, b)
    s.publish(ch, a, "", b"loop")
    s.rec("copies", s.drain(ch, q))


@scenario
def scenario_exchange_internal_publish(s: Session):
    conn = s.connect()
    ch = conn.channel()
    x = s.x("internal")
    ch.exchange_declare(x, "fanout", internal=True)
    s.publish(ch, x, "", b"m")
    s.sync("after publish", ch)


@scenario
def scenario_exchange_alternate(s: Session):
    conn = s.connect()
    ch = conn.channel()
    ae, x = s.x("ae"), s.x("x")
    qa, qx = s.q("qa"), s.q("qx")
    ch.exchange_declare(ae, "fanout")
    ch.exchange_declare(x, "direct", arguments={"alternate-exchange": ae})
    ch.queue_declare(qa)
    ch.queue_declare(qx)
    ch.queue_bind(qa, ae)
    ch.queue_bind(qx, x, "known")
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(message(m, p, b)))
    s.publish(ch, x, "known", b"routed", mandatory=True)
    s.publish(ch, x, "unknown", b"to-ae", mandatory=True)
    ch2 = conn.channel()
    ch2.confirm_delivery()
    s.attempt("confirm publish via ae", s.publish, ch2, x, "unknown2", b"to-ae-2", mandatory=True)
    s.settle(conn)
    s.rec("returned", returned)
    s.rec("qx", s.drain(ch, qx))
    s.rec("qa", s.drain(ch, qa))
    missing_ae = s.x("x-missing-ae")
    ch.exchange_declare(missing_ae, "direct", arguments={"alternate-exchange": s.name("no-such-ae")})
    s.attempt("confirm publish, ae missing", s.publish, ch2, missing_ae, "k", b"lost", mandatory=True)


# =============================================================================
# routing
# =============================================================================

@scenario
def scenario_route_direct(s: Session):
    ch = s.channel()
    x = s.x("x")
    q1, q2 = s.q("q1"), s.q("q2")
    ch.exchange_declare(x, "direct")
    ch.queue_declare(q1)
    ch.queue_declare(q2)
    ch.queue_bind(q1, x, "k1")
    ch.queue_bind(q1, x, "k2")
    ch.queue_bind(q1, x, "k1")  # duplicate binding: idempotent
    ch.queue_bind(q2, x, "k1")
    ch.queue_bind(q2, x, "")
    for key in ("k1", "k2", "k3", "", "K1"):
        s.publish(ch, x, key, f"m-{key}")
    s.rec("q1", s.drain(ch, q1))
    s.rec("q2", s.drain(ch, q2))


@scenario
def scenario_route_fanout(s: Session):
    ch = s.channel()
    x = s.x("x")
    q1, q2 = s.q("q1"), s.q("q2")
    ch.exchange_declare(x, "fanout")
    ch.queue_declare(q1)
    ch.queue_declare(q2)
    ch.queue_bind(q1, x, "ignored")
    ch.queue_bind(q1, x, "also-ignored")
    ch.queue_bind(q2, x)
    for key in ("a", "", "b.c"):
        s.publish(ch, x, key, f"m-{key}")
    s.rec("q1", s.drain(ch, q1))
    s.rec("q2", s.drain(ch, q2))


TOPIC_BINDINGS = ["*", "#", "a.*", "a.#", "#.b", "a.*.c", "a..b", "", "*.*", "a.#.c", "#.#",
                  "a.b.c", "#.*", "*.#", "a.*.#", "#.a.#", "a.b", "A.b"]
TOPIC_KEYS = ["", "a", "b", "a.b", "a.b.c", "a..b", "a.x.y.c", "a.c", ".", "a.", ".b", "x.a.y", "a.b.c.d"]


@scenario
def scenario_route_topic_patterns(s: Session):
    ch = s.channel()
    x = s.x("topic")
    ch.exchange_declare(x, "topic")
    queues = {}
    for i, pattern in enumerate(TOPIC_BINDINGS):
        q = s.q(f"q{i}")
        ch.queue_declare(q)
        ch.queue_bind(q, x, pattern)
        queues[pattern] = q
    for key in TOPIC_KEYS:
        s.publish(ch, x, key, key or "<empty>")
    s.rec("matches", {pattern: s.drain(ch, q) for pattern, q in queues.items()})


@scenario
def scenario_route_topic_unbind_and_rebind(s: Session):
    ch = s.channel()
    x = s.x("topic")
    q = s.q("q")
    ch.exchange_declare(x, "topic")
    ch.queue_declare(q)
    ch.queue_bind(q, x, "a.*")
    ch.queue_bind(q, x, "a.#")
    s.publish(ch, x, "a.b", b"both-bindings")
    s.rec("two bindings, one copy", s.drain(ch, q))
    ch.queue_unbind(q, x, "a.*")
    s.publish(ch, x, "a.b", b"after-unbind-star")
    ch.queue_unbind(q, x, "a.#")
    s.publish(ch, x, "a.b", b"after-unbind-all")
    s.rec("after unbinds", s.drain(ch, q))


def _headers_case(s: Session, ch, exchange: str, index: int, binding: dict, messages: dict) -> list:
    """Bind a fresh queue with ``binding``, publish ``messages``, return what matched."""
    q = s.q(f"h{index}")
    ch.queue_declare(q)
    ch.queue_bind(q, exchange, arguments=binding)
    for label, headers in messages.items():
        s.publish(ch, exchange, "", label, props=B(headers=headers))
    got = s.drain(ch, q)
    ch.queue_unbind(q, exchange, arguments=binding)
    return got


HEADER_MESSAGES = {
    "none": None,
    "empty": {},
    "a1": {"a": 1},
    "a1b2": {"a": 1, "b": 2},
    "a1b3": {"a": 1, "b": 3},
    "b2": {"b": 2},
    "a-str-1": {"a": "1"},
    "a1-long": {"a": 2 ** 40},
    "a1c": {"a": 1, "c": 9},
    "a1b2-x": {"a": 1, "b": 2, "x-extra": "y"},
    "x-a1": {"x-a": 1},
    "a-true": {"a": True},
    "a-none": {"a": None},
    "a-bytes": {"a": b"1"},
}


@scenario
def scenario_route_headers_matching(s: Session):
    conn = s.connect()
    ch = conn.channel()
    x = s.x("headers")
    ch.exchange_declare(x, "headers")
    bindings = {
        "all a1 b2": {"x-match": "all", "a": 1, "b": 2},
        "any a1 b2": {"x-match": "any", "a": 1, "b": 2},
        "default(all) a1 b2": {"a": 1, "b": 2},
        "all a1": {"x-match": "all", "a": 1},
        "any b2": {"x-match": "any", "b": 2},
        "all empty": {"x-match": "all"},
        "any empty": {"x-match": "any"},
        "no args": {},
        "all a str 1": {"x-match": "all", "a": "1"},
        "all a void (presence)": {"x-match": "all", "a": None},
        "any a void (presence)": {"x-match": "any", "a": None},
        "all a true": {"x-match": "all", "a": True},
        "all a long": {"x-match": "all", "a": 2 ** 40},
        "all x-a1": {"x-match": "all", "x-a": 1},
        "all-with-x x-a1": {"x-match": "all-with-x", "x-a": 1},
        "any-with-x x-a1": {"x-match": "any-with-x", "x-a": 1},
        "all-with-x a1 x-extra": {"x-match": "all-with-x", "a": 1, "x-extra": "y"},
        "any x-extra": {"x-match": "any", "x-extra": "y"},
        "all a bytes": {"x-match": "all", "a": b"1"},
    }
    results = {}
    for index, (label, binding) in enumerate(bindings.items()):
        if not ch.is_open:
            ch = conn.channel()
        try:
            results[label] = _headers_case(s, ch, x, index, binding, HEADER_MESSAGES)
        except Exception as exc:  # a refused binding is an observation too
            results[label] = error(exc)
    s.rec("matches", results)


@scenario
def scenario_route_headers_invalid_x_match(s: Session):
    conn = s.connect()
    ch = conn.channel()
    x = s.x("headers")
    q = s.q("q")
    ch.exchange_declare(x, "headers")
    ch.queue_declare(q)
    s.attempt("bind x-match=foo", ch.queue_bind, q, x, arguments={"x-match": "foo"})
    ch = conn.channel()
    s.attempt("bind x-match=1", ch.queue_bind, q, x, arguments={"x-match": 1})


@scenario
def scenario_route_headers_unbind_by_arguments(s: Session):
    ch = s.channel()
    x = s.x("headers")
    q = s.q("q")
    ch.exchange_declare(x, "headers")
    ch.queue_declare(q)
    ch.queue_bind(q, x, arguments={"x-match": "any", "a": 1})
    ch.queue_bind(q, x, arguments={"x-match": "any", "b": 1})
    ch.queue_unbind(q, x, arguments={"x-match": "any", "a": 2})  # no such binding
    s.publish(ch, x, "", "a", props=B(headers={"a": 1}))
    s.publish(ch, x, "", "b", props=B(headers={"b": 1}))
    s.rec("both bindings", s.drain(ch, q))
    ch.queue_unbind(q, x, arguments={"x-match": "any", "a": 1})
    s.publish(ch, x, "", "a", props=B(headers={"a": 1}))
    s.publish(ch, x, "", "b", props=B(headers={"b": 1}))
    s.rec("after unbind a", s.drain(ch, q))


@scenario
def scenario_route_default_exchange(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"by-name")
    s.publish(ch, "", q.upper(), b"wrong-case")
    s.publish(ch, "", "", b"empty-key")
    s.rec("queue", s.drain(ch, q))
    s.attempt("bind to default", ch.queue_bind, q, "", "other")


# =============================================================================
# queues
# =============================================================================

@scenario
def scenario_queue_declare_ok_counts(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    s.attempt("declare", ch.queue_declare, q)
    for i in range(3):
        s.send(ch, "", q, f"m{i}")
    s.attempt("redeclare", ch.queue_declare, q)
    s.attempt("passive", ch.queue_declare, q, passive=True)
    ch.basic_qos(prefetch_count=1)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b))
    s.pump(conn, lambda: len(got) == 1)
    s.attempt("passive with consumer and 1 unacked", ch.queue_declare, q, passive=True)
    ch2 = conn.channel()
    s.attempt("passive other channel", ch2.queue_declare, q, passive=True)


@scenario
def scenario_queue_server_named(s: Session):
    conn = s.connect()
    ch = conn.channel()
    ok = ch.queue_declare("", exclusive=True)
    name = ok.method.queue
    s.rec("declare-ok", method(ok))
    s.rec("name length", len(name))
    ok2 = ch.queue_declare("", exclusive=True)
    s.rec("second differs", ok2.method.queue != name)
    # Empty queue name means "the last queue declared on this channel".
    s.attempt("bind ''", ch.queue_bind, "", "amq.fanout")
    s.publish(ch, "", ok2.method.queue, b"to-second")
    s.rec("get ''", s.get(ch, "", auto_ack=True))
    s.attempt("purge ''", ch.queue_purge, "")
    s.attempt("passive ''", ch.queue_declare, "", passive=True)
    s.attempt("delete ''", ch.queue_delete, "")
    s.attempt("passive deleted", ch.queue_declare, ok2.method.queue, passive=True)


@scenario
def scenario_queue_empty_name_without_declare(s: Session):
    conn = s.connect()
    ops = [
        ("get ''", lambda ch: ch.basic_get("")),
        ("consume ''", lambda ch: ch.basic_consume("", lambda *a: None)),
        ("bind ''", lambda ch: ch.queue_bind("", "amq.fanout")),
        ("purge ''", lambda ch: ch.queue_purge("")),
        ("delete ''", lambda ch: ch.queue_delete("")),
        ("passive ''", lambda ch: ch.queue_declare("", passive=True)),
    ]
    for label, op in ops:
        if not conn.is_open:
            conn = s.connect()
        ch = conn.channel()
        s.attempt(label, op, ch)


@scenario
def scenario_queue_passive_missing(s: Session):
    ch = s.channel()
    s.attempt("passive", ch.queue_declare, s.name("missing"), passive=True)


@scenario
def scenario_queue_redeclare_mismatches(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q, durable=True, arguments={"x-message-ttl": 60000, "x-custom": "a"})
    cases = [
        ("same", dict(durable=True, arguments={"x-message-ttl": 60000, "x-custom": "a"})),
        ("durable", dict(durable=False, arguments={"x-message-ttl": 60000})),
        ("auto_delete", dict(durable=True, auto_delete=True, arguments={"x-message-ttl": 60000})),
        ("exclusive", dict(durable=True, exclusive=True, arguments={"x-message-ttl": 60000})),
        ("ttl value", dict(durable=True, arguments={"x-message-ttl": 1000})),
        ("ttl type long", dict(durable=True, arguments={"x-message-ttl": 2 ** 40})),
        ("ttl missing", dict(durable=True, arguments={})),
        ("extra max-length", dict(durable=True, arguments={"x-message-ttl": 60000, "x-max-length": 10})),
        ("custom arg differs", dict(durable=True, arguments={"x-message-ttl": 60000, "x-custom": "b"})),
        ("passive ignores flags", dict(passive=True, durable=False, arguments={"x-message-ttl": 1})),
    ]
    for label, kwargs in cases:
        if not ch.is_open:
            ch = conn.channel()
        s.attempt(label, ch.queue_declare, q, **kwargs)


@scenario
def scenario_queue_reserved_prefix(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("declare amq.*", ch.queue_declare, "amq." + s.name("q"))
    ch = conn.channel()
    s.attempt("passive amq.* missing", ch.queue_declare, "amq." + s.name("q"), passive=True)
    ch = conn.channel()
    s.attempt("declare amq.gen-like", ch.queue_declare, "amq.gen-AAAAAAAAAAAAAAAAAAAAAA")


@scenario
def scenario_queue_exclusive_other_connection(s: Session):
    owner = s.connect()
    och = owner.channel()
    q = s.q("excl")
    s.attempt("declare exclusive", och.queue_declare, q, exclusive=True)
    s.send(och, "", q, b"m")
    s.attempt("same connection other channel passive", owner.channel().queue_declare, q, passive=True)
    other = s.connect()
    ops = [
        ("passive", lambda ch: ch.queue_declare(q, passive=True)),
        ("declare same", lambda ch: ch.queue_declare(q, exclusive=True)),
        ("declare non-exclusive", lambda ch: ch.queue_declare(q)),
        ("get", lambda ch: ch.basic_get(q)),
        ("consume", lambda ch: ch.basic_consume(q, lambda *a: None)),
        ("purge", lambda ch: ch.queue_purge(q)),
        ("bind", lambda ch: ch.queue_bind(q, "amq.fanout")),
        ("unbind", lambda ch: ch.queue_unbind(q, "amq.fanout")),
        ("delete", lambda ch: ch.queue_delete(q)),
    ]
    for label, op in ops:
        s.attempt(label, op, other.channel())
    # Publishing to it from another connection is allowed.
    pch = other.channel()
    pch.confirm_delivery()
    s.attempt("publish from other", s.publish, pch, "", q, b"from-other")
    s.rec("owner drains", s.drain(och, q))


@scenario
def scenario_queue_exclusive_lifecycle(s: Session):
    owner = s.connect()
    q = s.q("excl")
    owner.channel().queue_declare(q, exclusive=True)
    observer = s.connect().channel()
    s.attempt("while owner open", observer.queue_declare, q, passive=True)
    owner.close()
    observer = s.connect().channel()
    s.attempt("after owner closed", observer.queue_declare, q, passive=True)


@scenario
def scenario_queue_auto_delete_lifecycle(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("ad")
    ch.queue_declare(q, auto_delete=True)
    s.attempt("never consumed: exists", ch.queue_declare, q, passive=True)
    tag1 = ch.basic_consume(q, lambda *a: None)
    tag2 = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(tag1)
    s.attempt("one consumer left", ch.queue_declare, q, passive=True)
    ch.basic_cancel(tag2)
    s.attempt("last consumer cancelled", ch.queue_declare, q, passive=True)
    ch = conn.channel()
    q2 = s.q("ad2")
    ch.queue_declare(q2, auto_delete=True)
    ch.basic_publish("", q2, b"m")
    s.rec("basic.get does not count", s.get(ch, q2, auto_ack=True))
    s.attempt("still exists", ch.queue_declare, q2, passive=True)
    c2 = s.connect()
    c2.channel().basic_consume(q2, lambda *a: None)
    c2.close()
    s.attempt("consumer connection closed", ch.queue_declare, q2, passive=True)


@scenario
def scenario_queue_delete_conditions(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.send(ch, "", q, b"m")
    s.attempt("if_empty on non-empty", ch.queue_delete, q, if_empty=True)
    ch = conn.channel()
    ch.basic_consume(q, lambda *a: None, auto_ack=False)
    s.settle(conn)
    s.attempt("if_unused with consumer", ch.queue_delete, q, if_unused=True)
    ch = conn.channel()
    s.attempt("both flags", ch.queue_delete, q, if_unused=True, if_empty=True)
    ch = conn.channel()
    s.attempt("passive still there", ch.queue_declare, q, passive=True)
    q2 = s.q("q2")
    ch.queue_declare(q2)
    for i in range(2):
        s.send(ch, "", q2, b"m")
    s.attempt("delete returns count", ch.queue_delete, q2)
    s.attempt("delete missing", ch.queue_delete, s.name("missing"))
    s.attempt("delete missing if_empty", ch.queue_delete, s.name("missing"), if_empty=True)


@scenario
def scenario_queue_delete_counts_only_ready(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(3):
        s.send(ch, "", q, f"m{i}")
    ch.basic_get(q, auto_ack=False)
    s.attempt("if_empty with only unacked?", ch.queue_delete, q, if_empty=True)
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("delete", ch.queue_delete, q)


@scenario
def scenario_queue_purge(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(4):
        s.send(ch, "", q, f"m{i}")
    s.rec("get unacked", s.get(ch, q))
    s.attempt("purge", ch.queue_purge, q)
    s.attempt("purge again", ch.queue_purge, q)
    ch.close()
    ch = conn.channel()
    s.attempt("after close: unacked requeued", ch.queue_declare, q, passive=True)
    s.rec("remaining", s.get(ch, q, auto_ack=True))
    s.attempt("purge missing", ch.queue_purge, s.name("missing"))


@scenario
def scenario_queue_bind_errors(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q, x = s.q("q"), s.x("x")
    ch.queue_declare(q)
    ch.exchange_declare(x, "direct")
    s.attempt("bind missing exchange", ch.queue_bind, q, s.name("missing-x"), "k")
    ch = conn.channel()
    s.attempt("bind missing queue", ch.queue_bind, s.name("missing-q"), x, "k")
    ch = conn.channel()
    s.attempt("unbind never bound", ch.queue_unbind, q, x, "k")
    s.attempt("unbind missing exchange", ch.queue_unbind, q, s.name("missing-x"), "k")
    ch = conn.channel() if not ch.is_open else ch
    s.attempt("unbind missing queue", ch.queue_unbind, s.name("missing-q"), x, "k")


@scenario
def scenario_queue_argument_validation(s: Session):
    conn = s.connect()
    cases = {
        "x-message-ttl negative": {"x-message-ttl": -1},
        "x-message-ttl string": {"x-message-ttl": "1000"},
        "x-expires zero": {"x-expires": 0},
        "x-max-length negative": {"x-max-length": -1},
        "x-max-length-bytes string": {"x-max-length-bytes": "x"},
        "x-overflow bad": {"x-overflow": "explode"},
        "x-max-priority 256": {"x-max-priority": 256},
        "x-max-priority negative": {"x-max-priority": -1},
        "x-queue-type unknown": {"x-queue-type": "weird"},
        "x-dead-letter-exchange int": {"x-dead-letter-exchange": 5},
        "x-dead-letter-routing-key without dlx": {"x-dead-letter-routing-key": "k"},
        "x-queue-mode bad": {"x-queue-mode": "sometimes"},
        "x-single-active-consumer string": {"x-single-active-consumer": "yes"},
        "unknown x-arg accepted": {"x-whatever": 1},
        "x-max-length ok": {"x-max-length": 10, "x-overflow": "reject-publish"},
    }
    for i, (label, args) in enumerate(cases.items()):
        if not conn.is_open:
            conn = s.connect()
        ch = conn.channel()
        s.attempt(label, ch.queue_declare, s.q(f"q{i}"), arguments=args)


# =============================================================================
# basic.get / consume / qos
# =============================================================================

@scenario
def scenario_basic_get_and_empty(s: Session):
    ch = s.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.rec("empty", s.get(ch, q))
    for i in range(3):
        s.publish(ch, "", q, f"m{i}", props=B(message_id=f"id{i}"))
    for i in range(4):
        s.rec(f"get {i}", s.get(ch, q, auto_ack=(i % 2 == 0)))
    s.attempt("ack tag 2", ch.basic_ack, 2)
    s.attempt("get missing queue", ch.basic_get, s.name("missing"))


@scenario
def scenario_basic_consume_and_cancel(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(message(m, p, b)), consumer_tag="ctag-fixed")
    s.rec("tag", tag)
    for i in range(3):
        s.publish(ch, "", q, f"m{i}")
    s.pump(conn, lambda: len(got) == 3)
    s.rec("deliveries", got)
    s.attempt("cancel", ch.basic_cancel, tag)
    s.send(ch, "", q, b"after-cancel")
    s.settle(conn)
    s.rec("no more deliveries", len(got))
    s.attempt("ack after cancel", ch.basic_ack, 3, multiple=True)
    s.attempt("passive", ch.queue_declare, q, passive=True)
    s.attempt("cancel unknown tag", ch._impl.basic_cancel, "never-existed")
    s.sync("after cancel unknown", ch)
    s.attempt("consume missing queue", ch.basic_consume, s.name("missing"), lambda *a: None)


@scenario
def scenario_basic_get_with_active_consumer(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    got = []
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(q, lambda c, m, p, b: got.append([m.delivery_tag, b.decode()]))
    for i in range(3):
        s.send(ch, "", q, f"m{i}")
    s.pump(conn, lambda: len(got) == 1)
    s.rec("get beside a blocked consumer", s.get(ch, q))
    s.rec("consumer got", got)
    s.attempt("passive", ch.queue_declare, q, passive=True)


@scenario
def scenario_basic_consume_server_generated_tag(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    # pika always invents a tag; send basic.consume with an empty one itself.
    ch._impl._send_method(pika.spec.Basic.Consume(queue=q, consumer_tag=""))
    s.pump(conn, lambda: bool(s.frames(conn, "Basic.ConsumeOk")))
    s.rec("consume-ok", s.frames(conn, "Basic.ConsumeOk"))
    s.attempt("passive", ch.queue_declare, q, passive=True)


@scenario
def scenario_basic_consume_exclusive(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    ch2 = conn.channel()
    s.attempt("second consumer", ch2.basic_consume, q, lambda *a: None)
    ch3 = conn.channel()
    s.attempt("second exclusive consumer", ch3.basic_consume, q, lambda *a: None, exclusive=True)
    q2 = s.q("q2")
    ch.queue_declare(q2)
    ch.basic_consume(q2, lambda *a: None)
    ch4 = conn.channel()
    s.attempt("exclusive when consumers exist", ch4.basic_consume, q2, lambda *a: None, exclusive=True)
    s.rec("conn open", conn.is_open)


@scenario
def scenario_basic_consumer_tag_reuse(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None, consumer_tag="dup")
    s.attempt("pika refuses a duplicate itself", ch.basic_consume, q, lambda *a: None, consumer_tag="dup")
    # Go below BlockingChannel to send the duplicate anyway.
    ch._impl._send_method(pika.spec.Basic.Consume(queue=q, consumer_tag="dup"))
    s.pump(conn, lambda: not conn.is_open, timeout=1.0)
    s.rec("conn open", conn.is_open)
    conn2 = s.connect()
    a, b = conn2.channel(), conn2.channel()
    a.basic_consume(q, lambda *x: None, consumer_tag="same")
    s.attempt("same tag on another channel", b.basic_consume, q, lambda *x: None, consumer_tag="same")


@scenario
def scenario_basic_qos_prefetch_count(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.attempt("qos", ch.basic_qos, prefetch_count=2)
    for i in range(5):
        s.publish(ch, "", q, f"m{i}")
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m.delivery_tag, b.decode())))
    s.pump(conn, lambda: len(got) == 2)
    s.settle(conn)
    s.rec("prefetched", list(got))
    ch.basic_ack(got[0][0])
    s.pump(conn, lambda: len(got) == 3)
    s.settle(conn)
    s.rec("after one ack", list(got))
    ch.basic_ack(got[2][0], multiple=True)
    s.pump(conn, lambda: len(got) == 5)
    s.rec("after multiple ack", list(got))
    s.attempt("qos 0 = unlimited", ch.basic_qos, prefetch_count=0)


def _two_queue_consumers(s: Session, conn, ch, qos_calls, wait_first: int):
    """Fill two queues, apply ``qos_calls``, start consumer a, then b; count."""
    q1, q2 = s.q("q1"), s.q("q2")
    ch.queue_declare(q1)
    ch.queue_declare(q2)
    for i in range(5):
        s.send(ch, "", q1, f"a{i}")
        s.send(ch, "", q2, f"b{i}")
    for kwargs in qos_calls:
        ch.basic_qos(**kwargs)
    got = {"a": [], "b": []}
    ch.basic_consume(q1, lambda c, m, p, b: got["a"].append(m.delivery_tag))
    s.pump(conn, lambda: len(got["a"]) >= wait_first)
    s.settle(conn)
    ch.basic_consume(q2, lambda c, m, p, b: got["b"].append(m.delivery_tag))
    s.settle(conn, 0.1)
    return got


@scenario
def scenario_basic_qos_global(s: Session):
    conn = s.connect()
    ch = conn.channel()
    got = _two_queue_consumers(s, conn, ch, [dict(prefetch_count=3, global_qos=True)], 3)
    s.rec("channel-wide limit 3", {k: len(v) for k, v in got.items()})
    ch.basic_ack(got["a"][-1], multiple=True)
    s.pump(conn, lambda: len(got["a"]) + len(got["b"]) >= 6)
    s.settle(conn)
    s.rec("after acking a's three", len(got["a"]) + len(got["b"]))


@scenario
def scenario_basic_qos_per_consumer(s: Session):
    conn = s.connect()
    ch = conn.channel()
    got = _two_queue_consumers(s, conn, ch, [dict(prefetch_count=2)], 2)
    s.rec("each consumer 2", {k: len(v) for k, v in got.items()})


@scenario
def scenario_basic_qos_global_and_per_consumer(s: Session):
    conn = s.connect()
    ch = conn.channel()
    got = _two_queue_consumers(
        s, conn, ch, [dict(prefetch_count=3, global_qos=True), dict(prefetch_count=2)], 2)
    s.rec("per-consumer 2 within channel 3", {k: len(v) for k, v in got.items()})


@scenario
def scenario_basic_qos_prefetch_size(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("prefetch_size=1000", ch.basic_qos, prefetch_size=1000)
    s.rec("conn open", conn.is_open)


@scenario
def scenario_basic_qos_applies_to_later_consumers(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(4):
        s.publish(ch, "", q, f"m{i}")
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b))
    s.pump(conn, lambda: len(got) == 4)
    ch.basic_qos(prefetch_count=1)
    for i in range(3):
        s.publish(ch, "", q, f"n{i}")
    s.pump(conn, lambda: len(got) == 7)
    s.rec("existing consumer unlimited", len(got))


@scenario
def scenario_basic_ack_multiple_and_errors(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(5):
        s.publish(ch, "", q, f"m{i}")
    for _ in range(5):
        ch.basic_get(q)
    s.attempt("ack 3 multiple", ch.basic_ack, 3, multiple=True)
    s.attempt("passive", ch.queue_declare, q, passive=True)
    s.attempt("ack 2 again (already acked)", ch.basic_ack, 2)
    s.sync("sync", ch)
    ch = conn.channel()
    s.attempt("ack unknown tag 99", ch.basic_ack, 99)
    s.sync("sync", ch)
    ch = conn.channel()
    ch.basic_get(q)
    s.attempt("ack 0 multiple (all)", ch.basic_ack, 0, multiple=True)
    s.attempt("ack 0 not multiple", ch.basic_ack, 0)
    s.sync("sync", ch)


@scenario
def scenario_basic_double_ack(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"m")
    ch.basic_get(q)
    ch.basic_ack(1)
    ch.basic_ack(1)
    s.sync("after double ack", ch)
    s.rec("conn open", conn.is_open)


@scenario
def scenario_basic_ack_on_auto_ack_delivery(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"m")
    s.rec("get auto_ack", s.get(ch, q, auto_ack=True))
    ch.basic_ack(1)
    s.sync("ack auto-acked tag", ch)


@scenario
def scenario_basic_nack_requeue_original_position(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(5):
        s.publish(ch, "", q, f"m{i}")
    for _ in range(3):
        ch.basic_get(q)
    ch.basic_nack(2, requeue=True)
    ch.basic_reject(1, requeue=True)
    s.rec("after requeue of m1 then m0", [s.get(ch, q) for _ in range(4)])
    ch.basic_nack(0, multiple=True, requeue=True)
    s.rec("after nack all", [s.get(ch, q, auto_ack=True) for _ in range(6)])


@scenario
def scenario_basic_reject_requeue_with_consumer(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(4):
        s.publish(ch, "", q, f"m{i}")
    got = []
    rejected = set()

    def on_message(c, m, p, b):
        got.append([m.delivery_tag, m.redelivered, b.decode()])
        if b in (b"m1", b"m2") and b not in rejected:
            rejected.add(b)
            c.basic_reject(m.delivery_tag, requeue=True)
        else:
            c.basic_ack(m.delivery_tag)

    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(q, on_message)
    s.pump(conn, lambda: len(got) == 6)
    s.settle(conn)
    s.rec("deliveries", got)


@scenario
def scenario_basic_nack_multiple_discard(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(4):
        s.publish(ch, "", q, f"m{i}")
    for _ in range(4):
        ch.basic_get(q)
    ch.basic_nack(3, multiple=True, requeue=False)
    s.attempt("passive", ch.queue_declare, q, passive=True)
    ch.basic_reject(4, requeue=False)
    s.attempt("passive", ch.queue_declare, q, passive=True)
    ch.basic_reject(4, requeue=False)
    s.sync("reject again", ch)


@scenario
def scenario_basic_recover(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(3):
        s.publish(ch, "", q, f"m{i}")
    ch.basic_get(q)
    ch.basic_get(q)
    s.attempt("recover requeue=True", ch.basic_recover, requeue=True)
    s.rec("after recover", [s.get(ch, q, auto_ack=True) for _ in range(4)])
    got = []
    for i in range(2):
        s.publish(ch, "", q, f"n{i}")
    ch.basic_consume(q, lambda c, m, p, b: got.append([m.delivery_tag, m.redelivered, b.decode()]))
    s.pump(conn, lambda: len(got) == 2)
    s.attempt("recover requeue=False", ch.basic_recover, requeue=False)
    s.pump(conn, lambda: len(got) == 4, timeout=1.0)
    s.rec("consumer deliveries", got)


@scenario
def scenario_channel_close_requeues_unacked(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(5):
        s.publish(ch, "", q, f"m{i}")
    got = []
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    s.pump(conn, lambda: len(got) == 3)
    ch.basic_ack(2)
    ch.close()
    ch = conn.channel()
    s.attempt("passive", ch.queue_declare, q, passive=True)
    s.rec("order after requeue", [s.get(ch, q, auto_ack=True) for _ in range(5)])


@scenario
def scenario_connection_close_requeues_unacked(s: Session):
    c1 = s.connect()
    ch = c1.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(3):
        s.publish(ch, "", q, f"m{i}")
    ch.basic_get(q)
    ch.basic_get(q)
    c1.close()
    ch = s.connect().channel()
    s.rec("order", [s.get(ch, q, auto_ack=True) for _ in range(4)])


@scenario
def scenario_basic_auto_ack_consume(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    ch.basic_qos(prefetch_count=1)  # ignored for auto-ack consumers
    for i in range(3):
        s.publish(ch, "", q, f"m{i}")
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(message(m, p, b)), auto_ack=True)
    s.pump(conn, lambda: len(got) == 3)
    s.rec("deliveries", got)
    ch.close()
    ch = conn.channel()
    s.attempt("nothing requeued", ch.queue_declare, q, passive=True)


@scenario
def scenario_basic_round_robin_consumers(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(["A", b.decode()]), auto_ack=True, consumer_tag="A")
    ch.basic_consume(q, lambda c, m, p, b: got.append(["B", b.decode()]), auto_ack=True, consumer_tag="B")
    for i in range(6):
        s.publish(ch, "", q, f"m{i}")
    s.pump(conn, lambda: len(got) == 6)
    s.rec("distribution", got)


@scenario
def scenario_basic_consumer_priority(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(["low", b.decode()]), auto_ack=True,
                     consumer_tag="low")
    ch.basic_consume(q, lambda c, m, p, b: got.append(["high", b.decode()]), auto_ack=True,
                     consumer_tag="high", arguments={"x-priority": 10})
    for i in range(4):
        s.publish(ch, "", q, f"m{i}")
    s.pump(conn, lambda: len(got) == 4)
    s.rec("distribution", got)


@scenario
def scenario_queue_deleted_while_consuming(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    cancels = []
    ch.add_on_cancel_callback(lambda frame: cancels.append(method(frame)))
    ch.basic_consume(q, lambda *a: None, consumer_tag="victim")
    other = conn.channel()
    s.attempt("delete", other.queue_delete, q)
    s.pump(conn, lambda: bool(cancels))
    s.rec("server cancel", cancels)
    s.rec("consumer tags left", ch.consumer_tags)
    s.attempt("channel still usable", ch.exchange_declare, "amq.direct", passive=True)


@scenario
def scenario_consumer_cancel_notify_via_generator(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"first")
    seen = []
    for item in ch.consume(q, auto_ack=True, inactivity_timeout=2):
        if item == (None, None, None):
            seen.append("inactivity")
            break
        m, p, data = item
        seen.append(message(m, p, data))
        conn.channel().queue_delete(q)
    seen.append("generator ended")
    s.rec("generator", seen)


# =============================================================================
# publishing: mandatory, returns, errors
# =============================================================================

@scenario
def scenario_publish_mandatory_unroutable(s: Session):
    conn = s.connect()
    ch = conn.channel()
    x = s.x("x")
    ch.exchange_declare(x, "direct")
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(message(m, p, b)))
    s.publish(ch, x, "nowhere", b"mandatory", props=B(message_id="m1", headers={"h": 1}), mandatory=True)
    s.publish(ch, x, "nowhere", b"not-mandatory")
    s.publish(ch, "", s.name("no-queue"), b"default-exchange", mandatory=True)
    s.sync("sync", ch)
    s.pump(conn, lambda: len(returned) == 2)
    s.settle(conn)
    s.rec("returned", returned)


@scenario
def scenario_publish_mandatory_with_confirms(s: Session):
    conn = s.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = s.q("q")
    ch.queue_declare(q)
    s.attempt("routable", s.publish, ch, "", q, b"ok", mandatory=True)
    s.attempt("unroutable", s.publish, ch, "amq.direct", s.name("nowhere"), b"lost", mandatory=True)
    s.attempt("unroutable not mandatory", s.publish, ch, "amq.direct", s.name("nowhere"), b"dropped")


@scenario
def scenario_publish_to_missing_exchange(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.publish(ch, s.name("missing"), "k", b"m")
    s.sync("after publish", ch)
    ch = conn.channel()
    ch.confirm_delivery()
    s.attempt("with confirms", s.publish, ch, s.name("missing"), "k", b"m")
    s.rec("conn open", conn.is_open)


@scenario
def scenario_publish_immediate(s: Session):
    conn = s.connect()
    ch = conn.channel()
    ch._impl._send_method(pika.spec.Basic.Publish(exchange="", routing_key="x", immediate=True), (B(), b"m"))
    s.pump(conn, lambda: not conn.is_open, timeout=1.0)
    s.attempt("then", ch.exchange_declare, "amq.direct", passive=True)


@scenario
def scenario_publish_user_id_validation(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"ok", props=B(user_id="guest"))
    s.rec("matching user_id", s.get(ch, q, auto_ack=True))
    s.publish(ch, "", q, b"bad", props=B(user_id="mallory"))
    s.sync("after mismatched user_id", ch)


@scenario
def scenario_publish_expiration_validation(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"m", props=B(expiration="not-a-number"))
    s.sync("after bad expiration", ch)
    ch = conn.channel()
    s.publish(ch, "", q, b"m", props=B(expiration="-5"))
    s.sync("after negative expiration", ch)


# =============================================================================
# publisher confirms and transactions
# =============================================================================

@scenario
def scenario_confirm_select(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("confirm.select", ch.confirm_delivery)
    s.attempt("confirm.select twice", lambda: ch._impl.confirm_delivery(
        lambda *a: None, callback=lambda frame: None) or "sent")
    s.sync("sync", ch)
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(3):
        s.attempt(f"publish {i}", s.publish, ch, "", q, f"m{i}")
    s.attempt("passive", ch.queue_declare, q, passive=True)


@scenario
def scenario_confirm_nack_on_reject_publish(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    s.attempt("first", s.publish, ch, "", q, b"first")
    s.attempt("second (over limit)", s.publish, ch, "", q, b"second")
    s.attempt("second mandatory", s.publish, ch, "", q, b"third", mandatory=True)
    s.rec("queue", s.drain(ch, q))


@scenario
def scenario_tx_commit_rollback(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.attempt("tx.select", ch.tx_select)
    s.publish(ch, "", q, b"rolled-back")
    s.attempt("passive before rollback", ch.queue_declare, q, passive=True)
    s.attempt("tx.rollback", ch.tx_rollback)
    s.attempt("passive after rollback", ch.queue_declare, q, passive=True)
    s.publish(ch, "", q, b"c1")
    s.publish(ch, "", q, b"c2")
    s.attempt("tx.commit", ch.tx_commit)
    s.attempt("passive after commit", ch.queue_declare, q, passive=True)
    s.attempt("tx.select again", ch.tx_select)
    s.attempt("empty commit", ch.tx_commit)


@scenario
def scenario_tx_acks(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    for i in range(3):
        s.publish(ch, "", q, f"m{i}")
    ch.tx_select()
    for _ in range(3):
        ch.basic_get(q)
    ch.basic_ack(1)
    ch.basic_reject(2, requeue=True)
    s.attempt("rollback", ch.tx_rollback)
    s.attempt("passive after rollback", ch.queue_declare, q, passive=True)
    ch.basic_ack(1)
    ch.basic_nack(2, requeue=True)
    s.attempt("commit", ch.tx_commit)
    s.rec("requeued", s.get(ch, q))
    ch.basic_ack(3)
    s.attempt("commit ack of tag 3 (m2 still unacked)", ch.tx_commit)
    s.attempt("passive", ch.queue_declare, q, passive=True)


@scenario
def scenario_tx_mandatory_return_on_commit(s: Session):
    conn = s.connect()
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(message(m, p, b)))
    ch.tx_select()
    s.publish(ch, "amq.direct", s.name("nowhere"), b"tx-unroutable", mandatory=True)
    s.settle(conn)
    s.rec("before commit", list(returned))
    s.attempt("commit", ch.tx_commit)
    s.pump(conn, lambda: bool(returned), timeout=1.0)
    s.rec("after commit", returned)


@scenario
def scenario_tx_publish_errors(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    ch.tx_select()
    s.publish(ch, "", q, b"before-error")
    s.publish(ch, s.name("missing"), "k", b"to-missing")
    s.attempt("commit after publish to missing exchange", ch.tx_commit)
    ch = conn.channel()
    s.rec("uncommitted publish discarded", s.get(ch, q, auto_ack=True))
    ch.tx_select()
    ch.basic_ack(99)
    s.attempt("commit after unknown ack", ch.tx_commit)


@scenario
def scenario_tx_mode_errors(s: Session):
    conn = s.connect()
    ch = conn.channel()
    s.attempt("commit without select", ch.tx_commit)
    ch = conn.channel()
    s.attempt("rollback without select", ch.tx_rollback)
    ch = conn.channel()
    ch.tx_select()
    s.attempt("confirm after tx", ch.confirm_delivery)
    ch = conn.channel()
    ch.confirm_delivery()
    s.attempt("tx after confirm", ch.tx_select)
    s.rec("conn open", conn.is_open)


# =============================================================================
# content: bodies, properties, headers
# =============================================================================

@scenario
def scenario_body_sizes(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    frame_max = conn._impl.params.frame_max
    sizes = [0, 1, frame_max - 9, frame_max - 8, frame_max - 7, 2 * (frame_max - 8) + 1, 1024 * 1024]
    for size in sizes:
        s.publish(ch, "", q, bytes((i * 7) % 251 for i in range(size)))
    s.rec("gets", [s.get(ch, q, auto_ack=True) for _ in sizes])
    got = []
    for size in (0, 1024 * 1024):
        s.publish(ch, "", q, b"\x00" * size)
    ch.basic_consume(q, lambda c, m, p, b: got.append(message(m, p, b)), auto_ack=True)
    s.pump(conn, lambda: len(got) == 2)
    s.rec("consumed", got)


@scenario
def scenario_properties_roundtrip(s: Session):
    ch = s.channel()
    q = s.q("q")
    ch.queue_declare(q)
    full = B(
        content_type="application/json", content_encoding="gzip",
        headers={"k": "v"}, delivery_mode=2, priority=7, correlation_id="corr",
        reply_to="reply.q", expiration="60000", message_id="msg-1",
        timestamp=1700000000, type="kind", user_id="guest", app_id="app",
        cluster_id="cluster",
    )
    s.publish(ch, "", q, b"full", props=full)
    s.publish(ch, "", q, b"none", props=B())
    s.publish(ch, "", q, b"transient", props=B(delivery_mode=1))
    s.publish(ch, "", q, b"empty-strings", props=B(content_type="", correlation_id="", headers={}))
    s.publish(ch, "", q, b"max-priority", props=B(priority=255, timestamp=0))
    for i in range(5):
        s.rec(f"get {i}", s.get(ch, q, auto_ack=True))


HEADER_VALUES = {
    "str": "text",
    "str-unicode": "h\u00e9llo \u2603",
    "str-empty": "",
    "int-small": 1,
    "int-negative": -5,
    "int-32-max": 2 ** 31 - 1,
    "int-32-min": -(2 ** 31),
    "int-64": 2 ** 31,
    "int-64-neg": -(2 ** 40),
    "bool-true": True,
    "bool-false": False,
    "none": None,
    "bytes": b"\x00\xffraw",
    "bytes-utf8": b"looks-like-text",
    "decimal": decimal.Decimal("3.14"),
    "decimal-int": decimal.Decimal("42"),
    "decimal-neg": decimal.Decimal("-0.001"),
    "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5),
    "dict": {"a": 1, "b": "two", "c": {"d": [1, "x", None]}},
    "dict-empty": {},
    "list": [1, "two", 3, True, None, b"b", {"k": "v"}, [1, [2]]],
    "list-empty": [],
}


@scenario
def scenario_headers_every_type_roundtrip(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.publish(ch, "", q, b"typed", props=B(headers=HEADER_VALUES))
    s.rec("get", s.get(ch, q, auto_ack=True))
    got = []
    s.publish(ch, "", q, b"typed", props=B(headers=HEADER_VALUES))
    ch.basic_consume(q, lambda c, m, p, b: got.append(message(m, p, b)), auto_ack=True)
    s.pump(conn, lambda: bool(got))
    s.rec("deliver", got)


@scenario
def scenario_headers_float_client_side(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    s.attempt("publish float header", s.publish, ch, "", q, b"f", props=B(headers={"f": 1.5}))
    s.attempt("channel usable", ch.queue_declare, q, passive=True)


@scenario
def scenario_headers_in_returned_and_got_messages(s: Session):
    conn = s.connect()
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(message(m, p, b)))
    headers = {"int": 7, "long": 2 ** 40, "str": "s", "list": [1, "a"], "nested": {"x": None}}
    s.publish(ch, "amq.direct", s.name("nowhere"), b"ret", props=B(headers=headers), mandatory=True)
    s.sync("sync", ch)
    s.pump(conn, lambda: bool(returned))
    s.rec("returned", returned)


class _RawProperties(BasicProperties):
    """Properties whose encoding is given as bytes (types pika never sends)."""

    def __init__(self, encoded: bytes):
        super().__init__()
        self._encoded = encoded

    def encode(self):
        return [self._encoded]


def _raw_table(fields: list[tuple[str, bytes]]) -> bytes:
    """A field table from pre-encoded ``(name, tag + value)`` pairs."""
    body_ = b"".join(bytes([len(k)]) + k.encode() + v for k, v in fields)
    return struct.pack(">I", len(body_)) + body_


RAW_FIELDS = [
    ("int8", b"b" + struct.pack(">b", -1)),
    ("uint8", b"B" + struct.pack(">B", 255)),
    ("int16", b"s" + struct.pack(">h", -2)),
    ("uint16", b"u" + struct.pack(">H", 65535)),
    ("uint32", b"i" + struct.pack(">I", 4294967295)),
    ("int64", b"l" + struct.pack(">q", -3)),
    ("float", b"f" + struct.pack(">f", 1.5)),
    ("double", b"d" + struct.pack(">d", 2.25)),
    ("decimal", b"D" + struct.pack(">Bi", 2, 12345)),
    ("longstr-binary", b"S" + struct.pack(">I", 3) + b"\xff\xfe\x00"),
    ("array-mixed", b"A" + struct.pack(">I", 2 + 3) + b"b\x05" + b"s\x00\x07"),
]


@scenario
def scenario_headers_raw_field_types(s: Session):
    """Field types other clients send (int8/16, unsigned, float, double)."""
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q)
    flags = struct.pack(">H", 0x2000 | 0x0080)  # headers, message_id
    encoded = flags + _raw_table(RAW_FIELDS) + bytes([3]) + b"raw"
    ch._impl._send_method(pika.spec.Basic.Publish(exchange="", routing_key=q), (_RawProperties(encoded), b"x"))
    s.rec("get", s.get(ch, q, auto_ack=True))
    hx = s.x("hx")
    ch.exchange_declare(hx, "headers")
    hq = s.q("hq")
    ch.queue_declare(hq)
    ch.queue_bind(hq, hx, arguments={"x-match": "any", "int8": -1})
    ch._impl._send_method(pika.spec.Basic.Publish(exchange=hx, routing_key=""), (_RawProperties(encoded), b"h"))
    s.rec("headers exchange: int8 -1 vs bound int -1", s.drain(ch, hq))


@scenario
def scenario_direct_reply_to(s: Session):
    conn = s.connect()
    ch = conn.channel()
    server_q = s.q("rpc")
    ch.queue_declare(server_q)
    replies = []
    s.attempt("consume reply-to without auto_ack", ch.basic_consume,
              "amq.rabbitmq.reply-to", lambda *a: None, auto_ack=False)
    ch = conn.channel()
    s.publish(ch, "", server_q, b"no consumer yet", props=B(reply_to="amq.rabbitmq.reply-to"))
    s.sync("publish with reply-to before consuming", ch)
    ch = conn.channel()
    s.attempt("consume reply-to", ch.basic_consume, "amq.rabbitmq.reply-to",
              lambda c, m, p, b: replies.append(message(m, p, b)), auto_ack=True, consumer_tag="rpc-client")
    s.publish(ch, "", server_q, b"request", props=B(reply_to="amq.rabbitmq.reply-to", correlation_id="c1"))
    server = s.connect().channel()
    method_frame, props, _ = server.basic_get(server_q, auto_ack=True)
    reply_to = props.reply_to if props else None
    s.rec("request reply_to", reply_to)
    if reply_to:
        s.attempt("passive on reply queue", server.queue_declare, reply_to, passive=True)
        server = server.connection.channel() if not server.is_open else server
        s.publish(server, "", reply_to, b"reply", props=B(correlation_id="c1"))
        s.pump(conn, lambda: bool(replies))
    s.rec("replies", replies)


@scenario
def scenario_consumer_arguments_validation(s: Session):
    conn = s.connect()
    q = s.q("q")
    conn.channel().queue_declare(q)
    for label, args in {
        "x-priority string": {"x-priority": "high"},
        "x-priority long": {"x-priority": 2 ** 40},
        "x-priority negative": {"x-priority": -5},
        "unknown argument": {"x-whatever": 1},
    }.items():
        if not conn.is_open:
            conn = s.connect()
        ch = conn.channel()
        s.attempt(label, ch.basic_consume, q, lambda *a: None, arguments=args)


# =============================================================================
# queue features: TTL, max-length, dead-lettering, priority
# =============================================================================

@scenario
def scenario_message_ttl(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("ttl0")
    ch.queue_declare(q, arguments={"x-message-ttl": 0})
    s.publish(ch, "", q, b"expires")
    s.rec("queue ttl 0, no consumer", s.get(ch, q, auto_ack=True))
    q2 = s.q("plain")
    ch.queue_declare(q2)
    s.publish(ch, "", q2, b"expires", props=B(expiration="0"))
    s.publish(ch, "", q2, b"stays", props=B(expiration="60000"))
    s.rec("per-message expiration", [s.get(ch, q2, auto_ack=True) for _ in range(2)])


@scenario
def scenario_max_length_drop_head(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    s.attempt("declare", ch.queue_declare, q, arguments={"x-max-length": 2})
    for i in range(5):
        s.send(ch, "", q, f"m{i}")
    s.attempt("passive", ch.queue_declare, q, passive=True)
    s.rec("kept", s.drain(ch, q))
    q2 = s.q("bytes")
    ch.queue_declare(q2, arguments={"x-max-length-bytes": 10})
    for data in (b"12345", b"67890", b"abc", b"0123456789", b"0123456789A"):
        s.publish(ch, "", q2, data)
    s.rec("kept by bytes", s.drain(ch, q2))


@scenario
def scenario_dead_letter_on_reject_and_expiry(s: Session):
    s.mask_timestamps = True
    conn = s.connect()
    ch = conn.channel()
    dlx = s.x("dlx")
    dlq, src = s.q("dlq"), s.q("src")
    ch.exchange_declare(dlx, "fanout")
    ch.queue_declare(dlq)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(src, arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"})
    s.publish(ch, "", src, b"rejected", props=B(headers={"orig": 1}, message_id="r"))
    s.publish(ch, "", src, b"expired", props=B(expiration="0"))
    s.publish(ch, "", src, b"nacked")
    m1, _p, _b = ch.basic_get(src)
    ch.basic_reject(m1.delivery_tag, requeue=False)
    m3, _p, _b = ch.basic_get(src)
    ch.basic_nack(m3.delivery_tag, requeue=False)
    got = []
    ch.basic_consume(dlq, lambda c, m, p, b: got.append((m, p, b)), auto_ack=True)
    s.pump(conn, lambda: len(got) == 3)
    for m, p, data in sorted(got, key=lambda t: t[2]):
        out = message(m, p, data)
        out.pop("delivery_tag", None)
        deaths = (p.headers or {}).get("x-death")
        if deaths:
            for death in deaths:
                death["time"] = type(death.get("time")).__name__
            out["props"]["headers"] = typed(p.headers)
        s.rec(f"dead {data.decode()}", out)


@scenario
def scenario_priority_queue(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    s.attempt("declare", ch.queue_declare, q, arguments={"x-max-priority": 5})
    for i, prio in enumerate([None, 1, 5, 9, 3, 0, 5]):
        s.publish(ch, "", q, f"m{i}-p{prio}", props=B(priority=prio))
    s.rec("order", s.drain(ch, q))


@scenario
def scenario_single_active_consumer(s: Session):
    conn = s.connect()
    ch = conn.channel()
    q = s.q("q")
    ch.queue_declare(q, arguments={"x-single-active-consumer": True})
    got = []
    ch2 = conn.channel()
    ch.basic_consume(q, lambda c, m, p, b: got.append(["first", b.decode()]), auto_ack=True, consumer_tag="first")
    ch2.basic_consume(q, lambda c, m, p, b: got.append(["second", b.decode()]), auto_ack=True, consumer_tag="second")
    for i in range(3):
        s.publish(ch, "", q, f"m{i}")
    s.pump(conn, lambda: len(got) == 3)
    ch.basic_cancel("first")
    for i in range(3, 5):
        s.publish(ch2, "", q, f"m{i}")
    s.pump(conn, lambda: len(got) == 5)
    s.rec("deliveries", got)
    s.attempt("passive", ch.queue_declare, q, passive=True)


# =============================================================================
# SelectConnection (asynchronous adapter)
# =============================================================================

def _select_run(s: Session, on_channel, timeout: float = 5.0, **param_overrides):
    """Open a SelectConnection and one channel, call ``on_channel(conn, ch, done)``.

    ``done()`` closes the connection and stops the loop. Connection-level
    events are recorded as observations.
    """
    events = []

    def finish():
        if conn.is_open:
            conn.close()
        elif conn.is_closed:
            conn.ioloop.stop()

    def on_open(connection):
        s.trace(connection)
        events.append("connection open")
        connection.channel(on_open_callback=lambda ch: on_channel(connection, ch, finish))

    def on_open_error(connection, exc):
        events.append(["open error", error(exc)])
        connection.ioloop.stop()

    def on_closed(connection, exc):
        events.append(["connection closed", error(exc)])
        connection.ioloop.stop()

    conn = pika.SelectConnection(s.params(**param_overrides), on_open_callback=on_open,
                                 on_open_error_callback=on_open_error, on_close_callback=on_closed)
    s.impls.append(conn)
    conn.ioloop.call_later(timeout, lambda: (events.append("loop timeout"), finish()))
    conn.ioloop.start()
    return events


@scenario
def scenario_select_publish_consume_ack(s: Session):
    q = s.q("q")
    log = []

    def on_channel(conn, ch, done):
        def declared(frame):
            log.append(method(frame))
            ch.confirm_delivery(on_confirm, callback=lambda f: (log.append(method(f)), publish()))

        confirmed = set()

        def on_confirm(frame):
            m = frame.method
            tags = range(1, m.delivery_tag + 1) if m.multiple else [m.delivery_tag]
            confirmed.update(tags)
            if len(confirmed) == 3:
                log.append(["confirmed", sorted(confirmed), m.NAME])
                ch.basic_qos(prefetch_count=1, callback=lambda f: (
                    log.append(method(f)),
                    ch.basic_consume(q, on_message, consumer_tag="sel",
                                     callback=lambda f2: log.append(method(f2)))))

        def publish():
            for i in range(3):
                ch.basic_publish("", q, f"m{i}".encode())

        def on_message(c, m, p, b):
            log.append(message(m, p, b))
            c.basic_ack(m.delivery_tag)
            if m.delivery_tag == 3:
                ch.basic_cancel("sel", callback=lambda f: (log.append(method(f)),
                                                           ch.close()))

        ch.add_on_close_callback(lambda c, exc: (log.append(["channel closed", error(exc)]), done()))
        ch.queue_declare(q, callback=declared)

    events = _select_run(s, on_channel)
    s.rec("log", log)
    s.rec("events", events)


@scenario
def scenario_select_channel_error_callback(s: Session):
    log = []

    def on_channel(conn, ch, done):
        def on_closed(c, exc):
            log.append(["channel closed", error(exc)])
            conn.channel(on_open_callback=lambda ch2: ch2.exchange_declare(
                "amq.topic", passive=True, callback=lambda f: (log.append(method(f)), done())))

        ch.add_on_close_callback(on_closed)
        ch.queue_declare(s.name("missing"), passive=True, callback=lambda f: log.append(method(f)))

    events = _select_run(s, on_channel)
    s.rec("log", log)
    s.rec("events", events)


@scenario
def scenario_select_connection_error(s: Session):
    log = []

    def on_channel(conn, ch, done):
        ch.add_on_close_callback(lambda c, exc: log.append(["channel closed", error(exc)]))
        ch.exchange_declare(s.x("x"), "bogus-type", callback=lambda f: log.append(method(f)))

    events = _select_run(s, on_channel)
    s.rec("log", log)
    s.rec("events", events)


@scenario
def scenario_select_server_cancel_and_get(s: Session):
    q = s.q("q")
    log = []

    def on_channel(conn, ch, done):
        ch.add_on_cancel_callback(lambda frame: (log.append(method(frame)), done()))

        def consumed(frame):
            log.append(method(frame))
            ch.queue_delete(q, callback=lambda f: log.append(method(f)))

        def got(c, m, p, b):
            log.append(message(m, p, b))
            ch.basic_consume(q, lambda *a: None, consumer_tag="sel2", callback=consumed)

        def declared(frame):
            ch.basic_publish("", q, b"g")
            ch.basic_get(q, got, auto_ack=True)

        ch.queue_declare(q, callback=declared)

    events = _select_run(s, on_channel)
    s.rec("log", log)
    s.rec("events", events)
