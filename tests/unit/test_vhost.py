"""Virtual host operations with RabbitMQ 3.10's checks, order and texts.

Every error text here was read off a real RabbitMQ 3.10.8 (the AMQP reply
text minus its ``KIND - `` prefix, which the protocol layer adds).
"""

from __future__ import annotations

import re

import pytest

from wiregate.core import (
    AccessRefused,
    CommandInvalid,
    Message,
    NotFound,
    PreconditionFailed,
    ResourceLocked,
    VHost,
)


# Argument values as the AMQP decoder hands them over: they remember their
# wire type, which RabbitMQ names in equivalence errors.
class Byte(int):
    type_name = "byte"


class SignedInt(int):
    type_name = "signedint"


class Long(int):
    type_name = "long"


class Binary(bytes):
    type_name = "binary"


LOCKED = (
    "cannot obtain exclusive access to locked queue '{}' in vhost '/'. It could be originally "
    "declared on another connection or the exclusive property value does not match that of the "
    "original declaration."
)
DEFAULT_EXCHANGE = "operation not permitted on the default exchange"


@pytest.fixture
def vhost() -> VHost:
    return VHost("/")


def msg(routing_key: str = "", headers: dict | None = None) -> Message:
    return Message("x", routing_key, b"body", headers=headers)


def routed(vhost: VHost, exchange: str, routing_key: str, headers: dict | None = None) -> list[str]:
    queues = vhost.route(vhost.exchanges[exchange], routing_key, msg(routing_key, headers))
    return sorted(queue.name for queue in queues)


# ---------------------------------------------------------- queue.declare
def test_declare_redeclare_passive_return_the_same_queue(vhost) -> None:
    queue = vhost.declare_queue("q", durable=True)
    assert vhost.declare_queue("q", durable=True) is queue
    assert vhost.declare_queue("q", passive=True) is queue
    # passive ignores every other field
    assert vhost.declare_queue("q", passive=True, durable=False, auto_delete=True, arguments={"x-message-ttl": 5}) is queue


@pytest.mark.parametrize("name", ["missing", "", "amq.missing"])
def test_passive_declare_of_missing_queue(vhost, name: str) -> None:
    with pytest.raises(NotFound) as caught:
        vhost.declare_queue(name, passive=True)
    assert caught.value.text == f"no queue '{name}' in vhost '/'"


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        ({}, {"durable": True}, "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'"),
        ({"durable": True}, {}, "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"),
        ({}, {"auto_delete": True}, "inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'"),
        (
            {"arguments": {"x-message-ttl": Byte(100)}},
            {"arguments": {"x-message-ttl": SignedInt(200)}},
            "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '200' but current is '100'",
        ),
        (
            {"arguments": {"x-message-ttl": Byte(100)}},
            {},
            "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but current is the value '100' of type 'byte'",
        ),
        (
            {},
            {"arguments": {"x-max-length": Byte(5)}},
            "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received the value '5' of type 'byte' but current is none",
        ),
        (
            # same digits, other type class
            {"arguments": {"x-message-ttl": Byte(100)}},
            {"arguments": {"x-message-ttl": "100"}},
            "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '100' but current is '100'",
        ),
    ],
)
def test_queue_redeclare_equivalence_errors(vhost, first: dict, second: dict, text: str) -> None:
    vhost.declare_queue("q", **first)
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_queue("q", **second)
    assert caught.value.text == text


def test_queue_redeclare_order_durable_before_auto_delete_before_args(vhost) -> None:
    vhost.declare_queue("q", arguments={"x-max-length": Byte(1)})
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_queue("q", durable=True, auto_delete=True, arguments={})
    assert "'durable'" in caught.value.text
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_queue("q", auto_delete=True, arguments={})
    assert "'auto_delete'" in caught.value.text


def test_queue_integer_widths_are_equivalent(vhost) -> None:
    vhost.declare_queue("q", arguments={"x-message-ttl": Byte(100)})
    vhost.declare_queue("q", arguments={"x-message-ttl": SignedInt(100)})
    vhost.declare_queue("q", arguments={"x-message-ttl": Long(100)})
    vhost.declare_queue("q", arguments={"x-message-ttl": 100})


def test_queue_arguments_outside_the_equivalence_list_are_ignored(vhost) -> None:
    vhost.declare_queue("q", arguments={"x-message-ttl": Byte(100)})
    vhost.declare_queue("q", arguments={"x-message-ttl": Byte(100), "x-other": Byte(1), "plain": "x"})


def test_queue_reserved_amq_prefix(vhost) -> None:
    with pytest.raises(AccessRefused) as caught:
        vhost.declare_queue("amq.q")
    assert caught.value.text == "queue name 'amq.q' contains reserved prefix 'amq.*'"


def test_server_named_queue_cannot_be_redeclared_by_name(vhost) -> None:
    """RabbitMQ checks the amq. prefix before looking the queue up."""
    queue = vhost.declare_queue("")
    with pytest.raises(AccessRefused) as caught:
        vhost.declare_queue(queue.name)
    assert caught.value.text == f"queue name '{queue.name}' contains reserved prefix 'amq.*'"
    assert vhost.declare_queue(queue.name, passive=True) is queue


def test_server_named_queues(vhost) -> None:
    names = {vhost.declare_queue("").name for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert re.fullmatch(r"amq\.gen-[A-Za-z0-9_-]{22}", name), name
        assert name in vhost.queues


def test_exclusive_queue_ignores_durable(vhost) -> None:
    owner = object()
    queue = vhost.declare_queue("ex", owner=owner, exclusive=True, durable=True)
    assert not queue.durable
    assert vhost.declare_queue("ex", owner=owner, exclusive=True, durable=True) is queue
    assert vhost.declare_queue("ex", owner=owner, exclusive=True, durable=False) is queue
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_queue("ex", owner=owner, exclusive=True, auto_delete=True)
    assert caught.value.text == "inequivalent arg 'auto_delete' for queue 'ex' in vhost '/': received 'true' but current is 'false'"


# --------------------------------------------------------- exclusive queues
def test_exclusive_queue_locked_for_other_connections(vhost) -> None:
    owner, other = object(), object()
    queue = vhost.declare_queue("ex", owner=owner, exclusive=True)
    attempts = [
        lambda: vhost.declare_queue("ex", owner=other, passive=True),
        lambda: vhost.declare_queue("ex", owner=other, exclusive=True),
        lambda: vhost.declare_queue("ex", owner=other),
        lambda: vhost.get_queue("ex", other),
        lambda: vhost.bind_queue("ex", "amq.direct", "k", owner=other),
    ]
    for attempt in attempts:
        with pytest.raises(ResourceLocked) as caught:
            attempt()
        assert caught.value.text == LOCKED.format("ex")
    assert vhost.get_queue("ex", owner) is queue
    assert vhost.declare_queue("ex", owner=owner, passive=True) is queue


def test_exclusive_flag_must_match_on_redeclare(vhost) -> None:
    owner = object()
    vhost.declare_queue("shared", owner=owner)
    with pytest.raises(ResourceLocked) as caught:
        vhost.declare_queue("shared", owner=owner, exclusive=True)
    assert caught.value.text == LOCKED.format("shared")
    vhost.declare_queue("mine", owner=owner, exclusive=True)
    with pytest.raises(ResourceLocked):
        vhost.declare_queue("mine", owner=owner, exclusive=False)


def test_exclusive_check_comes_before_equivalence(vhost) -> None:
    vhost.declare_queue("ex", owner=object(), exclusive=True)
    with pytest.raises(ResourceLocked):
        vhost.declare_queue("ex", owner=object(), durable=True)


# ------------------------------------------------------------ queue.delete
def test_delete_if_unused(vhost) -> None:
    queue = vhost.declare_queue("q")

    class Consumer:
        tag, exclusive, ack_required, priority = "c", False, False, 0

        def has_credit(self):
            return True

        def deliver(self, queue, entry):
            pass

        def cancelled_by_server(self, queue):
            pass

    queue.add_consumer(Consumer())
    with pytest.raises(PreconditionFailed) as caught:
        vhost.delete_queue(queue, if_unused=True)
    assert caught.value.text == "queue 'q' in vhost '/' in use"
    assert "q" in vhost.queues


def test_delete_if_empty(vhost) -> None:
    queue = vhost.declare_queue("q")
    queue.enqueue(msg())
    queue.enqueue(msg())
    with pytest.raises(PreconditionFailed) as caught:
        vhost.delete_queue(queue, if_empty=True)
    assert caught.value.text == "queue 'q' in vhost '/' not empty"
    assert vhost.delete_queue(queue, if_unused=True) == 2
    assert "q" not in vhost.queues
    assert vhost.delete_queue(queue) == 0


def test_deleted_queue_loses_its_bindings(vhost) -> None:
    queue = vhost.declare_queue("q")
    vhost.bind_queue("q", "amq.direct", "k")
    vhost.bind_queue("q", "amq.fanout", "")
    vhost.delete_queue(queue)
    assert vhost.exchanges["amq.direct"].bindings == {}
    assert vhost.exchanges["amq.fanout"].bindings == {}
    assert routed(vhost, "amq.direct", "k") == []


# ------------------------------------------------------- exchange.declare
def test_exchange_declare_redeclare_passive(vhost) -> None:
    exchange = vhost.declare_exchange("x", "topic", durable=True)
    assert vhost.declare_exchange("x", "topic", durable=True) is exchange
    assert vhost.declare_exchange("x", "", passive=True) is exchange
    assert exchange.type == "topic"


@pytest.mark.parametrize(
    ("second", "text"),
    [
        ({"type": "fanout"}, "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"),
        ({"durable": True}, "inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        ({"auto_delete": True}, "inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        ({"internal": True}, "inequivalent arg 'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        (
            {"arguments": {"alternate-exchange": "ae"}},
            "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received the value 'ae' of type 'longstr' but current is none",
        ),
    ],
)
def test_exchange_redeclare_equivalence_errors(vhost, second: dict, text: str) -> None:
    vhost.declare_exchange("x", "direct")
    kwargs = {"type": "direct", **second}
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_exchange("x", kwargs.pop("type"), **kwargs)
    assert caught.value.text == text


def test_exchange_other_arguments_are_not_compared(vhost) -> None:
    vhost.declare_exchange("x", "direct")
    vhost.declare_exchange("x", "direct", arguments={"foo": "bar"})


def test_unknown_exchange_type_even_for_an_existing_name(vhost) -> None:
    vhost.declare_exchange("x", "direct")
    for name in ("x", "new"):
        with pytest.raises(CommandInvalid) as caught:
            vhost.declare_exchange(name, "bogus")
        assert caught.value.text == "unknown exchange type 'bogus'"


def test_exchange_reserved_amq_prefix(vhost) -> None:
    with pytest.raises(AccessRefused) as caught:
        vhost.declare_exchange("amq.foo", "direct")
    assert caught.value.text == "exchange name 'amq.foo' contains reserved prefix 'amq.*'"


def test_predeclared_amq_exchanges(vhost) -> None:
    expected = {
        "amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic",
        "amq.headers": "headers", "amq.match": "headers", "amq.rabbitmq.trace": "topic",
    }
    for name, type_name in expected.items():
        assert vhost.declare_exchange(name, type_name, durable=True).type == type_name
        assert vhost.declare_exchange(name, "", passive=True).durable
    with pytest.raises(PreconditionFailed) as caught:
        vhost.declare_exchange("amq.direct", "direct")
    assert caught.value.text == "inequivalent arg 'durable' for exchange 'amq.direct' in vhost '/': received 'false' but current is 'true'"


@pytest.mark.parametrize("name", ["missing", "amq.missing"])
def test_passive_declare_of_missing_exchange(vhost, name: str) -> None:
    with pytest.raises(NotFound) as caught:
        vhost.declare_exchange(name, "direct", passive=True)
    assert caught.value.text == f"no exchange '{name}' in vhost '/'"


# ---------------------------------------------------------- default exchange
@pytest.mark.parametrize(
    "operation",
    [
        lambda v: v.declare_exchange("", "direct"),
        lambda v: v.declare_exchange("", "direct", passive=True),
        lambda v: v.delete_exchange(""),
        lambda v: v.bind_queue("q", "", "k"),
        lambda v: v.unbind_queue("q", "", "q"),
        lambda v: v.bind_exchange("x", "", "k"),
        lambda v: v.bind_exchange("", "x", "k"),
        lambda v: v.bind_exchange("", "missing", "k"),
        lambda v: v.unbind_exchange("", "amq.direct", "k"),
    ],
    ids=["declare", "declare-passive", "delete", "bind-queue", "unbind-queue", "bind-source", "bind-destination", "bind-destination-missing-source", "unbind-destination"],
)
def test_default_exchange_is_off_limits(vhost, operation) -> None:
    vhost.declare_queue("q")
    vhost.declare_exchange("x", "direct")
    with pytest.raises(AccessRefused) as caught:
        operation(vhost)
    assert caught.value.text == DEFAULT_EXCHANGE


def test_default_exchange_routes_by_queue_name(vhost) -> None:
    vhost.declare_queue("q")
    assert routed(vhost, "", "q") == ["q"]
    assert routed(vhost, "", "missing") == []
    assert vhost.exchanges[""].bindings == {}


# -------------------------------------------------------- exchange.delete
def test_delete_system_exchanges_refused(vhost) -> None:
    for name in ("amq.direct", "amq.nonexistent"):
        with pytest.raises(AccessRefused) as caught:
            vhost.delete_exchange(name)
        assert caught.value.text == f"deletion of system exchange '{name}' in vhost '/' not allowed"
    assert "amq.direct" in vhost.exchanges


def test_delete_missing_exchange_is_fine(vhost) -> None:
    vhost.delete_exchange("missing")
    vhost.delete_exchange("missing", if_unused=True)


def test_delete_exchange_if_unused(vhost) -> None:
    vhost.declare_exchange("x", "direct")
    vhost.declare_queue("q")
    vhost.bind_queue("q", "x", "k")
    with pytest.raises(PreconditionFailed) as caught:
        vhost.delete_exchange("x", if_unused=True)
    assert caught.value.text == "exchange 'x' in vhost '/' in use"
    vhost.unbind_queue("q", "x", "k")
    vhost.delete_exchange("x", if_unused=True)
    assert "x" not in vhost.exchanges


def test_delete_exchange_if_unused_counts_only_bindings_from_it(vhost) -> None:
    """RabbitMQ 3.10: being the destination of an e2e binding is not 'in use'."""
    vhost.declare_exchange("dst", "fanout")
    vhost.bind_exchange("dst", "amq.fanout", "")
    vhost.delete_exchange("dst", if_unused=True)
    assert "dst" not in vhost.exchanges
    assert vhost.exchanges["amq.fanout"].bindings == {}


# -------------------------------------------------------------- bindings
def test_bind_missing_ends(vhost) -> None:
    vhost.declare_queue("q")
    vhost.declare_exchange("x", "direct")
    cases = [
        (lambda: vhost.bind_queue("nq", "x", "k"), "no queue 'nq' in vhost '/'"),
        (lambda: vhost.bind_queue("q", "nx", "k"), "no exchange 'nx' in vhost '/'"),
        # both missing: RabbitMQ names the exchange
        (lambda: vhost.bind_queue("nq", "nx", "k"), "no exchange 'nx' in vhost '/'"),
        (lambda: vhost.bind_exchange("x", "nx", "k"), "no exchange 'nx' in vhost '/'"),
        (lambda: vhost.bind_exchange("nx", "x", "k"), "no exchange 'nx' in vhost '/'"),
    ]
    for attempt, text in cases:
        with pytest.raises(NotFound) as caught:
            attempt()
        assert caught.value.text == text


def test_bind_is_idempotent(vhost) -> None:
    vhost.declare_queue("q")
    for _ in range(3):
        vhost.bind_queue("q", "amq.direct", "k")
    assert len(vhost.exchanges["amq.direct"].bindings) == 1
    assert routed(vhost, "amq.direct", "k") == ["q"]
    vhost.unbind_queue("q", "amq.direct", "k")
    assert routed(vhost, "amq.direct", "k") == []


@pytest.mark.parametrize(("exchange", "key"), [("amq.direct", "k"), ("amq.topic", "k.*"), ("amq.fanout", "")])
def test_same_key_different_arguments_are_two_bindings(vhost, exchange: str, key: str) -> None:
    vhost.declare_queue("q")
    vhost.bind_queue("q", exchange, key, {"a": 1})
    vhost.bind_queue("q", exchange, key, {"a": 2})
    vhost.bind_queue("q", exchange, key, {"a": 2})
    assert len(vhost.exchanges[exchange].bindings) == 2
    routing_key = "k.x" if exchange == "amq.topic" else "k"
    assert routed(vhost, exchange, routing_key) == ["q"]
    vhost.unbind_queue("q", exchange, key, {"a": 1})
    assert routed(vhost, exchange, routing_key) == ["q"]
    vhost.unbind_queue("q", exchange, key, {"a": 2})
    assert routed(vhost, exchange, routing_key) == []


def test_argument_table_order_does_not_make_a_new_binding(vhost) -> None:
    vhost.declare_queue("q")
    vhost.bind_queue("q", "amq.headers", "", {"x-match": "any", "a": 1, "b": 2})
    vhost.bind_queue("q", "amq.headers", "", {"b": 2, "a": 1, "x-match": "any"})
    assert len(vhost.exchanges["amq.headers"].bindings) == 1


def test_unbind_what_does_not_exist_is_fine(vhost) -> None:
    """RabbitMQ 3.10 answers unbind-ok for a missing binding, queue or exchange."""
    vhost.declare_queue("q")
    vhost.unbind_queue("q", "amq.direct", "never-bound")
    vhost.unbind_queue("missing", "amq.direct", "k")
    vhost.unbind_queue("q", "missing", "k")
    vhost.unbind_exchange("amq.fanout", "amq.direct", "k")
    vhost.unbind_exchange("missing", "amq.direct", "k")


def test_headers_binding_validates_x_match(vhost) -> None:
    vhost.declare_queue("q")
    with pytest.raises(PreconditionFailed) as caught:
        vhost.bind_queue("q", "amq.headers", "", {"x-match": "some"})
    assert caught.value.text == 'Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x'
    with pytest.raises(PreconditionFailed) as caught:
        vhost.bind_queue("q", "amq.headers", "", {"x-match": Byte(5)})
    assert caught.value.text == "Invalid x-match field type byte (value 5); expected longstr"
    for mode in ("all", "any", "all-with-x", "any-with-x"):
        vhost.bind_queue("q", "amq.headers", "", {"x-match": mode})
    # other exchange types do not look at x-match
    vhost.bind_queue("q", "amq.direct", "", {"x-match": "some"})


def test_headers_binding_x_match_of_type_binary_is_refused(vhost) -> None:
    vhost.declare_queue("q")
    with pytest.raises(PreconditionFailed) as caught:
        vhost.bind_queue("q", "amq.headers", "", {"x-match": Binary(b"any")})
    assert caught.value.text == 'Invalid x-match field type binary (value <<"any">>); expected longstr'


# --------------------------------------------------------------- routing
def test_direct_fanout_topic_headers_routing(vhost) -> None:
    for name in ("d", "f", "t", "h"):
        vhost.declare_queue(name)
    vhost.bind_queue("d", "amq.direct", "key")
    vhost.bind_queue("f", "amq.fanout", "ignored")
    vhost.bind_queue("t", "amq.topic", "a.#")
    vhost.bind_queue("h", "amq.headers", "", {"x-match": "any", "color": "red"})
    assert routed(vhost, "amq.direct", "key") == ["d"]
    assert routed(vhost, "amq.direct", "other") == []
    assert routed(vhost, "amq.fanout", "anything") == ["f"]
    assert routed(vhost, "amq.topic", "a.b.c") == ["t"]
    assert routed(vhost, "amq.topic", "b") == []
    assert routed(vhost, "amq.headers", "", {"color": "red"}) == ["h"]
    assert routed(vhost, "amq.headers", "", {"color": "blue"}) == []


def test_queue_reached_once_through_several_bindings(vhost) -> None:
    vhost.declare_queue("q")
    vhost.bind_queue("q", "amq.topic", "a.*")
    vhost.bind_queue("q", "amq.topic", "#")
    vhost.bind_queue("q", "amq.topic", "a.b")
    vhost.declare_exchange("side", "fanout")
    vhost.bind_exchange("side", "amq.topic", "a.b")
    vhost.bind_queue("q", "side", "")
    assert routed(vhost, "amq.topic", "a.b") == ["q"]


def test_exchange_to_exchange_routing(vhost) -> None:
    vhost.declare_exchange("x1", "fanout")
    vhost.declare_exchange("x2", "direct")
    for name in ("q1", "q2", "q3"):
        vhost.declare_queue(name)
    vhost.bind_exchange("x1", "amq.topic", "logs.#")
    vhost.bind_queue("q1", "x1", "")
    vhost.bind_exchange("x2", "x1", "")
    vhost.bind_queue("q2", "x2", "logs.error")  # the original routing key travels on
    vhost.bind_queue("q3", "x2", "other")
    assert routed(vhost, "amq.topic", "logs.error") == ["q1", "q2"]
    assert routed(vhost, "amq.topic", "logs.info") == ["q1"]
    assert routed(vhost, "amq.topic", "metrics") == []
    vhost.unbind_exchange("x2", "x1", "")
    assert routed(vhost, "amq.topic", "logs.error") == ["q1"]


def test_exchange_cycles_terminate_and_deliver_once(vhost) -> None:
    for name in ("a", "b", "c"):
        vhost.declare_exchange(name, "fanout")
    vhost.bind_exchange("b", "a", "")
    vhost.bind_exchange("c", "b", "")
    vhost.bind_exchange("a", "c", "")
    vhost.bind_exchange("a", "a", "")
    vhost.declare_queue("qa")
    vhost.declare_queue("qc")
    vhost.bind_queue("qa", "a", "")
    vhost.bind_queue("qc", "c", "")
    for start in ("a", "b", "c"):
        assert routed(vhost, start, "k") == ["qa", "qc"]


def test_deleting_an_exchange_removes_bindings_to_it(vhost) -> None:
    vhost.declare_exchange("x", "fanout")
    vhost.declare_queue("q")
    vhost.bind_exchange("x", "amq.fanout", "")
    vhost.bind_queue("q", "x", "")
    assert routed(vhost, "amq.fanout", "") == ["q"]
    vhost.delete_exchange("x")
    assert vhost.exchanges["amq.fanout"].bindings == {}
    assert routed(vhost, "amq.fanout", "") == []


# ----------------------------------------------------- auto-delete exchange
def test_auto_delete_exchange_goes_with_its_last_binding(vhost) -> None:
    vhost.declare_exchange("ad", "direct", auto_delete=True)
    vhost.declare_queue("q")
    vhost.bind_queue("q", "ad", "a")
    vhost.bind_queue("q", "ad", "b")
    vhost.unbind_queue("q", "ad", "a")
    assert "ad" in vhost.exchanges
    vhost.unbind_queue("q", "ad", "b")
    assert "ad" not in vhost.exchanges


def test_auto_delete_exchange_goes_when_its_queue_is_deleted(vhost) -> None:
    vhost.declare_exchange("ad", "direct", auto_delete=True)
    queue = vhost.declare_queue("q")
    vhost.bind_queue("q", "ad", "a")
    vhost.delete_queue(queue)
    assert "ad" not in vhost.exchanges


def test_auto_delete_exchange_goes_when_its_destination_exchange_is_deleted(vhost) -> None:
    vhost.declare_exchange("ad", "direct", auto_delete=True)
    vhost.declare_exchange("dst", "direct")
    vhost.bind_exchange("dst", "ad", "k")
    vhost.delete_exchange("dst")
    assert "ad" not in vhost.exchanges


def test_auto_delete_exchange_without_bindings_stays(vhost) -> None:
    vhost.declare_exchange("ad", "direct", auto_delete=True)
    assert "ad" in vhost.exchanges
    # being a destination is not a binding of its own: unbinding keeps it
    vhost.bind_exchange("ad", "amq.direct", "k")
    vhost.unbind_exchange("ad", "amq.direct", "k")
    assert "ad" in vhost.exchanges
