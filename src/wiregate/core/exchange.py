"""Exchanges: direct, fanout, topic and headers.

An exchange maps a message to a set of destinations (queues, or exchanges
for exchange-to-exchange bindings).  A binding is identified, as in RabbitMQ,
by (destination, routing key, arguments): the same queue may be bound twice
with different arguments.
"""

from __future__ import annotations

from typing import Any, Hashable

from .errors import CommandInvalid, PreconditionFailed
from .message import Message
from .routing import TopicTrie, headers_match


def freeze(value: Any) -> Hashable:
    """A hashable, order-insensitive image of a (nested) argument table."""
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return (type(value).__name__, value)


class Binding:
    __slots__ = ("source", "destination", "routing_key", "arguments", "key")

    def __init__(self, source: "Exchange", destination: Any, routing_key: str, arguments: dict[str, Any]) -> None:
        self.source = source
        self.destination = destination
        self.routing_key = routing_key
        self.arguments = arguments
        self.key = (destination, routing_key, freeze(arguments))


class Exchange:
    """Base class; subclasses implement the routing of one exchange type."""

    type = ""

    def __init__(
        self,
        vhost: Any,
        name: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.vhost = vhost
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = dict(arguments or {})
        self.bindings: dict[Hashable, Binding] = {}
        self.deleted = False

    def describe(self) -> str:
        return f"exchange '{self.name}' in vhost '{self.vhost.name}'"

    def has_binding(self, destination: Any, routing_key: str, arguments: dict[str, Any]) -> bool:
        return (destination, routing_key, freeze(arguments)) in self.bindings

    def bind(self, destination: Any, routing_key: str, arguments: dict[str, Any]) -> bool:
        """Add a binding; False when an identical one already exists."""
        binding = Binding(self, destination, routing_key, arguments)
        if binding.key in self.bindings:
            return False
        self.bindings[binding.key] = binding
        self._add(binding)
        return True

    def unbind(self, destination: Any, routing_key: str, arguments: dict[str, Any]) -> bool:
        """Remove a binding; False when there was none."""
        binding = self.bindings.pop((destination, routing_key, freeze(arguments)), None)
        if binding is None:
            return False
        self._remove(binding)
        return True

    def unbind_destination(self, destination: Any) -> int:
        """Remove every binding to ``destination`` (it is being deleted)."""
        doomed = [b for b in self.bindings.values() if b.destination is destination]
        for binding in doomed:
            del self.bindings[binding.key]
            self._remove(binding)
        return len(doomed)

    def route(self, message: Message, routing_key: str) -> set[Any]:
        raise NotImplementedError

    def _add(self, binding: Binding) -> None:
        pass

    def _remove(self, binding: Binding) -> None:
        pass


class DirectExchange(Exchange):
    type = "direct"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_key: dict[str, dict[Any, int]] = {}

    def _add(self, binding: Binding) -> None:
        dests = self._by_key.setdefault(binding.routing_key, {})
        dests[binding.destination] = dests.get(binding.destination, 0) + 1

    def _remove(self, binding: Binding) -> None:
        dests = self._by_key.get(binding.routing_key)
        if dests is None:
            return
        count = dests.get(binding.destination, 0) - 1
        if count > 0:
            dests[binding.destination] = count
        else:
            dests.pop(binding.destination, None)
            if not dests:
                del self._by_key[binding.routing_key]

    def route(self, message: Message, routing_key: str) -> set[Any]:
        dests = self._by_key.get(routing_key)
        return set(dests) if dests else set()


class FanoutExchange(Exchange):
    type = "fanout"

    def route(self, message: Message, routing_key: str) -> set[Any]:
        return {b.destination for b in self.bindings.values()}


class TopicExchange(Exchange):
    type = "topic"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trie = TopicTrie()

    def _add(self, binding: Binding) -> None:
        self._trie.add(binding.routing_key, binding.destination)

    def _remove(self, binding: Binding) -> None:
        self._trie.remove(binding.routing_key, binding.destination)

    def route(self, message: Message, routing_key: str) -> set[Any]:
        return self._trie.match(routing_key)


class HeadersExchange(Exchange):
    type = "headers"

    def route(self, message: Message, routing_key: str) -> set[Any]:
        if not self.bindings:
            return set()
        headers = message.headers
        return {b.destination for b in self.bindings.values() if headers_match(b.arguments, headers)}


class DelayedExchange(Exchange):
    """``x-delayed-message``, as the rabbitmq-delayed-message-exchange plugin.

    Routes like its ``x-delayed-type``; a message with a positive integer
    ``x-delay`` header (milliseconds) is held and routed when the delay has
    passed.  Like the plugin, a held message reached no queue at publish
    time, so a mandatory publisher gets it back as NO_ROUTE (plugin issue 7).
    """

    type = "x-delayed-message"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        delegate = self.arguments.get("x-delayed-type")
        if isinstance(delegate, bytes):
            delegate = delegate.decode("utf-8", "replace")
        if delegate not in BASE_EXCHANGE_TYPES:
            raise PreconditionFailed("Invalid argument, 'x-delayed-type' must be an existing exchange type")
        self._inner = BASE_EXCHANGE_TYPES[delegate](self.vhost, self.name)
        self._releasing = False
        #: held messages: (timer, message, routing key)
        self.held: list[tuple[Any, Message, str]] = []

    def _add(self, binding: Binding) -> None:
        self._inner._add(binding)
        self._inner.bindings[binding.key] = binding

    def _remove(self, binding: Binding) -> None:
        self._inner._remove(binding)
        self._inner.bindings.pop(binding.key, None)

    def route(self, message: Message, routing_key: str) -> set[Any]:
        if not self._releasing:
            delay = message.headers.get("x-delay")
            if isinstance(delay, int) and not isinstance(delay, bool) and delay > 0:
                scheduler = self.vhost.scheduler
                record: list[Any] = []
                timer = scheduler.call_at(scheduler.now() + delay / 1000, lambda: self._release(record))
                record.extend((timer, message, routing_key))
                self.held.append(tuple(record))  # type: ignore[arg-type]
                return set()
        return self._inner.route(message, routing_key)

    def _release(self, record: list[Any]) -> None:
        timer, message, routing_key = record
        self.held = [h for h in self.held if h[0] is not timer]
        if self.deleted:
            return
        self._releasing = True
        try:
            queues = self.vhost.route(self, routing_key, message)
        finally:
            self._releasing = False
        for queue in queues:
            queue.enqueue(message)


BASE_EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    "direct": DirectExchange,
    "fanout": FanoutExchange,
    "topic": TopicExchange,
    "headers": HeadersExchange,
}
EXCHANGE_TYPES: dict[str, type[Exchange]] = {**BASE_EXCHANGE_TYPES, "x-delayed-message": DelayedExchange}


def exchange_class(type_name: str) -> type[Exchange]:
    try:
        return EXCHANGE_TYPES[type_name]
    except KeyError:
        raise CommandInvalid(f"unknown exchange type '{type_name}'") from None
