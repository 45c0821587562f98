"""Virtual hosts: the namespace of exchanges and queues, and the operations
clients perform on them, with RabbitMQ 3.10's checks and error texts.
"""

from __future__ import annotations

import base64
import datetime
import os
from typing import Any

from .errors import AccessRefused, NotFound, PreconditionFailed, ResourceLocked
from .exchange import Exchange, exchange_class
from .message import Message
from .queue import Queue
from .stream import StreamQueue
from .arguments import validate_queue_arguments
from .routing import valid_x_match
from .timers import Scheduler
from .values import _MISSING, _describe_arg, _erl_format, _type_class, Long, erlang_term, value_type_name

#: Queue arguments whose values must match on redeclaration
#: (``rabbit_amqqueue:declare_args/0`` of RabbitMQ 3.10).
QUEUE_EQUIVALENCE_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
)
EXCHANGE_EQUIVALENCE_ARGS = ("alternate-exchange",)

#: queue types other than classic, named as RabbitMQ names their modules in texts
QUEUE_TYPE_MODULES = {"quorum": "rabbit_quorum_queue", "stream": "rabbit_stream_queue"}
#: arguments each replicated queue type refuses (RabbitMQ 3.10)
UNSUPPORTED_ARGUMENTS = {
    "quorum": ("x-max-priority", "x-queue-mode"),
    "stream": (
        "x-max-priority",
        "x-queue-mode",
        "x-message-ttl",
        "x-expires",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-max-length",
        "x-overflow",
        "x-single-active-consumer",
        "x-delivery-limit",
    ),
}

PREDECLARED_EXCHANGES = (
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
    ("amq.rabbitmq.trace", "topic"),
)


def assert_field_equivalence(current: Any, requested: Any, what: str, field: str) -> None:
    if current != requested:
        raise PreconditionFailed(
            f"inequivalent arg '{field}' for {what}: received '{_erl_format(requested)}' "
            f"but current is '{_erl_format(current)}'"
        )


def assert_args_equivalence(current: dict[str, Any], requested: dict[str, Any], what: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        old = current.get(key, _MISSING)
        new = requested.get(key, _MISSING)
        if old is _MISSING and new is _MISSING:
            continue
        if old is not _MISSING and new is not _MISSING:
            if _type_class(value_type_name(old)) == _type_class(value_type_name(new)) and old == new:
                continue
            raise PreconditionFailed(
                f"inequivalent arg '{key}' for {what}: received '{_erl_format(new)}' "
                f"but current is '{_erl_format(old)}'"
            )
        raise PreconditionFailed(
            f"inequivalent arg '{key}' for {what}: received {_describe_arg(new)} but current is {_describe_arg(old)}"
        )


def server_named_queue() -> str:
    """``amq.gen-`` plus 16 random bytes in URL-safe base64, as RabbitMQ names them."""
    return "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class VHost:
    """One virtual host."""

    def __init__(self, name: str, scheduler: Scheduler | None = None, limits: dict[str, int] | None = None) -> None:
        self.name = name
        self.scheduler = scheduler if scheduler is not None else Scheduler()
        #: RabbitMQ's vhost limits by name ("max-queues"); absent means no limit
        self.limits: dict[str, int] = limits if limits is not None else {}
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        #: incremented by protocol front ends after each batch of input; a
        #: stream groups records of one batch into a chunk, as RabbitMQ does
        self.write_batch = 0
        #: direct reply-to addresses -> the protocol consumer they reach
        self.reply_consumers: dict[str, Any] = {}
        #: the data directory's journal (see core/persistence.py); None in memory mode
        self.persistence: Any = None
        for xname, xtype in PREDECLARED_EXCHANGES:
            self.exchanges[xname] = exchange_class(xtype)(self, xname, durable=True)
        # The default exchange exists (it appears in listings) but never binds.
        self.exchanges[""] = exchange_class("direct")(self, "", durable=True)

    def describe_exchange(self, name: str) -> str:
        return f"exchange '{name}' in vhost '{self.name}'"

    def describe_queue(self, name: str) -> str:
        return f"queue '{name}' in vhost '{self.name}'"

    # ------------------------------------------------------------ exchanges
    def _check_not_default(self, name: str) -> None:
        if name == "":
            raise AccessRefused("operation not permitted on the default exchange")

    def get_exchange(self, name: str) -> Exchange:
        exchange = self.exchanges.get(name)
        if exchange is None:
            raise NotFound(f"no {self.describe_exchange(name)}")
        return exchange

    def declare_exchange(
        self,
        name: str,
        type: str,
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> Exchange:
        """exchange.declare, with RabbitMQ's order of checks.

        Raises:
            CommandInvalid: unknown type (a connection error in AMQP).
            AccessRefused: the default exchange, or a new ``amq.`` name.
            NotFound: passive declare of a missing exchange.
            PreconditionFailed: redeclaration with different properties.
        """
        arguments = arguments or {}
        if passive:
            self._check_not_default(name)
            return self.get_exchange(name)
        cls = exchange_class(type)
        self._check_not_default(name)
        exchange = self.exchanges.get(name)
        if exchange is None:
            if name.startswith("amq."):
                raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
            exchange = cls(self, name, durable=durable, auto_delete=auto_delete, internal=internal, arguments=arguments)
            self.exchanges[name] = exchange
            if durable and self.persistence is not None:
                self._journal("declare_exchange", (name, type), dict(durable=True, auto_delete=auto_delete, internal=internal, arguments=arguments))
            return exchange
        what = exchange.describe()
        assert_field_equivalence(exchange.type, type, what, "type")
        assert_field_equivalence(exchange.durable, durable, what, "durable")
        assert_field_equivalence(exchange.auto_delete, auto_delete, what, "auto_delete")
        assert_field_equivalence(exchange.internal, internal, what, "internal")
        assert_args_equivalence(exchange.arguments, arguments, what, EXCHANGE_EQUIVALENCE_ARGS)
        return exchange

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        """exchange.delete; deleting a missing exchange is not an error."""
        self._check_not_default(name)
        if name.startswith("amq."):
            raise AccessRefused(f"deletion of system {self.describe_exchange(name)} not allowed")
        exchange = self.exchanges.get(name)
        if exchange is None:
            return
        if if_unused and exchange.bindings:
            raise PreconditionFailed(f"{exchange.describe()} in use")
        self._remove_exchange(exchange)
        if exchange.durable and self.persistence is not None:
            self._journal("delete_exchange", (name,), {})

    def _journal(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # Replayed at start-up by calling the same method with the same
        # arguments, so cascades (auto-delete) happen again by themselves.
        self.persistence.journal(("vhost", self.name, method, args, kwargs))

    def _remove_exchange(self, exchange: Exchange) -> None:
        del self.exchanges[exchange.name]
        exchange.deleted = True
        for binding in list(exchange.bindings.values()):
            exchange.unbind(binding.destination, binding.routing_key, binding.arguments)
        for other in list(self.exchanges.values()):
            if other.unbind_destination(exchange):
                self._maybe_auto_delete(other)

    def _maybe_auto_delete(self, exchange: Exchange) -> None:
        if exchange.auto_delete and not exchange.bindings and not exchange.deleted and exchange.name in self.exchanges:
            self._remove_exchange(exchange)

    # --------------------------------------------------------------- queues
    def get_queue(self, name: str, owner: Any = None, *, check_exclusive: bool = True) -> Queue:
        """Look up a queue for use by ``owner``; 404 or 405 as RabbitMQ."""
        queue = self.queues.get(name)
        if queue is None:
            raise NotFound(f"no {self.describe_queue(name)}")
        if check_exclusive:
            self.check_exclusive_access(queue, owner)
        return queue

    @staticmethod
    def check_exclusive_access(queue: Queue, owner: Any, strict: bool = False) -> None:
        if queue.owner is owner:
            return
        if not strict and queue.owner is None:
            return
        raise ResourceLocked(
            f"cannot obtain exclusive access to locked {queue.describe()}. It could be originally "
            "declared on another connection or the exclusive property value does not match that "
            "of the original declaration."
        )

    def declare_queue(
        self,
        name: str,
        *,
        owner: Any = None,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> Queue:
        """queue.declare.  ``owner`` is the declaring connection (any object).

        Raises:
            NotFound: passive declare of a missing queue.
            AccessRefused: a new name with the reserved ``amq.`` prefix.
            ResourceLocked: an exclusive queue of another connection.
            PreconditionFailed: redeclaration with different properties.
        """
        arguments = arguments or {}
        if passive:
            if name == "":
                raise NotFound(f"no {self.describe_queue(name)}")
            return self.get_queue(name, owner)
        queue_type = _text(arguments.get("x-queue-type", "classic"))
        if name == "":
            if queue_type in QUEUE_TYPE_MODULES:
                raise PreconditionFailed(f"Cannot declare a server-named queue for type {QUEUE_TYPE_MODULES[queue_type]}")
            name = server_named_queue()
        elif name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        want_owner = owner if exclusive else None
        durable = durable and not exclusive
        queue = self.queues.get(name)
        if queue is not None:
            if queue.owner is not want_owner:
                self.check_exclusive_access(queue, want_owner, strict=True)
            what = queue.describe()
            assert_field_equivalence(queue.durable, durable, what, "durable")
            assert_field_equivalence(queue.auto_delete, auto_delete, what, "auto_delete")
            assert_args_equivalence(queue.arguments, arguments, what, QUEUE_EQUIVALENCE_ARGS)
            queue.touch()
            return queue
        limit = self.limits.get("max-queues")
        if limit is not None and len(self.queues) >= limit:
            # rabbit_channel's check_vhost_queue_limit, before the arguments are looked at
            raise PreconditionFailed(f"cannot declare queue '{name}': queue limit in vhost '{self.name}' ({limit}) is reached")
        validate_queue_arguments(arguments, self.describe_queue(name))
        if queue_type in QUEUE_TYPE_MODULES:
            self._check_replicated_queue(name, queue_type, durable=durable, exclusive=exclusive, auto_delete=auto_delete, arguments=arguments)
        cls = StreamQueue if queue_type == "stream" else Queue
        queue = cls(self, name, durable=durable, auto_delete=auto_delete, owner=want_owner, arguments=arguments)
        self.queues[name] = queue
        if self.persistence is not None:
            if durable:
                self._journal("declare_queue", (name,), dict(durable=True, auto_delete=auto_delete, arguments=arguments))
            # a non-durable queue's store only pages bodies out (never recovered)
            queue.store = self.persistence.queue_store(self.name, queue)
        # every queue is bound to the default exchange under its own name;
        # routing through "" is done by lookup, so no binding is stored
        return queue

    def _check_replicated_queue(self, name: str, queue_type: str, *, durable: bool, exclusive: bool, auto_delete: bool, arguments: dict[str, Any]) -> None:
        """Quorum and stream queues: the properties and arguments they refuse."""
        what = self.describe_queue(name)
        for refused, prop in ((exclusive, "exclusive-owner"), (auto_delete, "auto-delete"), (not durable, "non-durable")):
            if refused:
                raise PreconditionFailed(f"invalid property '{prop}' for {what}")
        for key in UNSUPPORTED_ARGUMENTS[queue_type]:
            if key in arguments:
                raise PreconditionFailed(f"invalid arg '{key}' for {what} of queue type {QUEUE_TYPE_MODULES[queue_type]}")

    @staticmethod
    def check_delete_queue(queue: Queue, *, if_unused: bool = False, if_empty: bool = False) -> None:
        """Raise PreconditionFailed when queue.delete's conditions do not hold."""
        if if_unused and queue.consumer_count:
            raise PreconditionFailed(f"{queue.describe()} in use")
        if if_empty and queue.message_count:
            raise PreconditionFailed(f"{queue.describe()} not empty")

    def delete_queue(self, queue: Queue, *, if_unused: bool = False, if_empty: bool = False) -> int:
        """queue.delete; returns the number of ready messages dropped."""
        if queue.deleted:
            return 0
        self.check_delete_queue(queue, if_unused=if_unused, if_empty=if_empty)
        if self.queues.get(queue.name) is queue:
            del self.queues[queue.name]
        for exchange in list(self.exchanges.values()):
            if exchange.unbind_destination(queue):
                self._maybe_auto_delete(exchange)
        if queue.store is not None:
            if queue.durable:
                self._journal("delete_queue_named", (queue.name,), {})
            self.persistence.queue_deleted(self.name, queue)
            queue.store = None
        return queue.delete()

    def delete_queue_named(self, name: str) -> None:
        """Delete a queue by name if it exists (journal replay)."""
        queue = self.queues.get(name)
        if queue is not None:
            self.delete_queue(queue)

    # ------------------------------------------------------------- bindings
    def _binding_ends(self, exchange_name: str, destination: Queue | Exchange | None, dest_name: str, dest_kind: str) -> Exchange:
        self._check_not_default(exchange_name)
        if dest_kind == "exchange":
            self._check_not_default(dest_name)
        exchange = self.exchanges.get(exchange_name)
        if exchange is None:
            raise NotFound(f"no {self.describe_exchange(exchange_name)}")
        if destination is None:
            if dest_kind == "queue":
                raise NotFound(f"no {self.describe_queue(dest_name)}")
            raise NotFound(f"no {self.describe_exchange(dest_name)}")
        return exchange

    def bind_queue(self, queue_name: str, exchange_name: str, routing_key: str, arguments: dict[str, Any] | None = None, *, owner: Any = None) -> None:
        arguments = arguments or {}
        queue = self.queues.get(queue_name)
        exchange = self._binding_ends(exchange_name, queue, queue_name, "queue")
        assert queue is not None
        self.check_exclusive_access(queue, owner)
        self._validate_binding(exchange, arguments)
        exchange.bind(queue, routing_key, arguments)
        if exchange.durable and queue.durable and self.persistence is not None:
            self._journal("bind_queue", (queue_name, exchange_name, routing_key, arguments), {})

    def unbind_queue(self, queue_name: str, exchange_name: str, routing_key: str, arguments: dict[str, Any] | None = None, *, owner: Any = None) -> None:
        """queue.unbind; like RabbitMQ 3.10, unbinding what does not exist is not an error."""
        arguments = arguments or {}
        self._check_not_default(exchange_name)
        queue = self.queues.get(queue_name)
        exchange = self.exchanges.get(exchange_name)
        if queue is None or exchange is None:
            return
        # RabbitMQ 3.10 lets any connection unbind an exclusive queue
        if exchange.unbind(queue, routing_key, arguments):
            if exchange.durable and queue.durable and self.persistence is not None:
                self._journal("unbind_queue", (queue_name, exchange_name, routing_key, arguments), {})
            self._maybe_auto_delete(exchange)

    def bind_exchange(self, destination: str, source: str, routing_key: str, arguments: dict[str, Any] | None = None) -> None:
        arguments = arguments or {}
        exchange = self._binding_ends(source, self.exchanges.get(destination), destination, "exchange")
        self._validate_binding(exchange, arguments)
        target = self.exchanges[destination]
        exchange.bind(target, routing_key, arguments)
        if exchange.durable and target.durable and self.persistence is not None:
            self._journal("bind_exchange", (destination, source, routing_key, arguments), {})

    def unbind_exchange(self, destination: str, source: str, routing_key: str, arguments: dict[str, Any] | None = None) -> None:
        """exchange.unbind; unbinding what does not exist is not an error."""
        arguments = arguments or {}
        self._check_not_default(source)
        self._check_not_default(destination)
        exchange = self.exchanges.get(source)
        target = self.exchanges.get(destination)
        if exchange is None or target is None:
            return
        if exchange.unbind(target, routing_key, arguments):
            if exchange.durable and target.durable and self.persistence is not None:
                self._journal("unbind_exchange", (destination, source, routing_key, arguments), {})
            self._maybe_auto_delete(exchange)

    @staticmethod
    def _validate_binding(exchange: Exchange, arguments: dict[str, Any]) -> None:
        if exchange.type != "headers" or "x-match" not in arguments:
            return
        mode = arguments["x-match"]
        kind = value_type_name(mode)
        if kind != "longstr":
            raise PreconditionFailed(f"Invalid x-match field type {kind} (value {erlang_term(mode)}); expected longstr")
        if not valid_x_match(arguments):
            raise PreconditionFailed(
                f"Invalid x-match field value {erlang_term(mode)}; expected all, any, all-with-x, or any-with-x"
            )

    # -------------------------------------------------------------- routing
    def route(self, exchange: Exchange, routing_key: str, message: Message) -> list[Queue]:
        """The queues a message published to ``exchange`` reaches (each once).

        Exchange-to-exchange bindings are followed (each exchange visited
        once); when nothing is reached, the exchange's alternate exchange
        (the ``alternate-exchange`` argument) is tried, and its own, as
        RabbitMQ does.
        """
        if exchange.name == "":
            queue = self.queues.get(routing_key)
            return [queue] if queue is not None else []
        queues: list[Queue] = []
        visited: set[Any] = set()
        current: Exchange | None = exchange
        while current is not None and current not in visited:
            self._route_into(current, routing_key, message, queues, visited)
            if queues:
                break
            alternate = current.arguments.get("alternate-exchange")
            if not isinstance(alternate, (str, bytes)):
                break
            # a name that is not UTF-8 names no exchange (names are decoded strictly)
            current = self.exchanges.get(alternate.decode("utf-8", "replace") if isinstance(alternate, bytes) else alternate)
        return queues

    def _route_into(self, exchange: Exchange, routing_key: str, message: Message, queues: list[Queue], visited: set[Any]) -> None:
        visited.add(exchange)
        if exchange.name == "":
            queue = self.queues.get(routing_key)
            if queue is not None and queue not in visited:
                visited.add(queue)
                queues.append(queue)
            return
        pending = list(exchange.route(message, routing_key))
        while pending:
            dest = pending.pop()
            if dest in visited:
                continue
            visited.add(dest)
            if isinstance(dest, Queue):
                queues.append(dest)
            else:
                pending.extend(dest.route(message, routing_key))

    # -------------------------------------------------------- dead letters
    def dead_letter(self, queue: Queue, message: Message, reason: str) -> None:
        """Republish a message a queue let go of (``rabbit_dead_letter``).

        Reasons: ``rejected``, ``expired``, ``maxlen``, ``delivery_limit``.
        Without ``x-dead-letter-exchange``, or when that exchange does not
        exist, the message is dropped silently, as RabbitMQ does.
        """
        dlx_name = queue.arguments.get("x-dead-letter-exchange")
        if dlx_name is None:
            return
        if isinstance(dlx_name, bytes):
            dlx_name = dlx_name.decode("utf-8", "replace")
        dlx = self.exchanges.get(dlx_name)
        if dlx is None:
            return
        dl_key = queue.arguments.get("x-dead-letter-routing-key")
        if isinstance(dl_key, bytes):
            dl_key = dl_key.decode("utf-8", "replace")
        headers = x_death_headers(message, queue.name, reason, self.scheduler.wall(), dl_key)
        routing_keys = [dl_key] if dl_key is not None else list(message.routing_keys)
        copy = message.republished(dlx_name, routing_keys[0], headers, keep_expiration=False)
        copy.routing_keys = routing_keys
        targets: list[Queue] = []
        for key in routing_keys:
            for target in self.route(dlx, key, copy):
                if target not in targets:
                    targets.append(target)
        if reason != "rejected":
            deaths = headers.get("x-death")
            targets = [t for t in targets if not _is_cycle(t.name, deaths)]
        for target in targets:
            target.enqueue(copy)


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value


def x_death_headers(message: Message, queue_name: str, reason: str, wall_seconds: float, dl_key: str | None) -> dict[str, Any]:
    """The headers of a dead-lettered copy, as ``rabbit_dead_letter:make_msg`` writes them.

    ``x-death`` is an array, newest first, one table per (queue, reason)
    with a ``count``; the first death also sets ``x-first-death-*``.
    RabbitMQ rewrites the table through ``set_table_value``, which sorts it
    by key, so the result is sorted too.
    """
    headers = dict(message.headers)
    info: dict[str, Any] = {
        "reason": reason,
        "queue": queue_name,
        "time": datetime.datetime.fromtimestamp(int(wall_seconds), tz=datetime.timezone.utc),
        "exchange": message.exchange,
        "routing-keys": [message.routing_keys[0], *_header_routes(headers)],
    }
    expiration = message.properties.get("expiration") if hasattr(message.properties, "get") else None
    if expiration is not None:
        info["original-expiration"] = expiration
    deaths = headers.get("x-death")
    if not isinstance(deaths, list):
        headers["x-first-death-reason"] = reason
        headers["x-first-death-queue"] = queue_name
        headers["x-first-death-exchange"] = message.exchange
        headers["x-death"] = [{"count": Long(1), **info}]
    else:
        matched = None
        others = []
        for death in deaths:
            if (
                matched is None
                and isinstance(death, dict)
                and _text(death.get("queue")) == queue_name
                and _text(death.get("reason")) == reason
            ):
                matched = death
            else:
                others.append(death)
        if matched is None:
            entry = {"count": Long(1), **info}
        else:
            entry = dict(matched)
            entry["count"] = Long(int(entry.get("count", 0)) + 1)
        headers["x-death"] = [dict(sorted(entry.items(), key=lambda kv: kv[0].encode())), *others]
    if dl_key is not None:
        headers.pop("CC", None)
    return dict(sorted(headers.items(), key=lambda kv: kv[0].encode()))


def _header_routes(headers: dict[str, Any]) -> list[str]:
    routes = []
    for key in ("CC", "BCC"):
        value = headers.get(key)
        if isinstance(value, list):
            routes.extend(_text(v) for v in value if isinstance(v, (str, bytes)))
    return routes


def _is_cycle(queue_name: str, deaths: Any) -> bool:
    """RabbitMQ's ``is_cycle``: the copy would return to a queue it died in,
    and no death on the way was a rejection (only automatic cycles are broken)."""
    if not isinstance(deaths, list):
        return False
    for index, death in enumerate(deaths):
        if isinstance(death, dict) and _text(death.get("queue")) == queue_name:
            return all(isinstance(d, dict) and _text(d.get("reason")) != "rejected" for d in deaths[: index + 1])
    return False
