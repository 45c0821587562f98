"""Queues: ready messages in order, unacked deliveries, consumers.

Dispatch follows RabbitMQ's classic queue: consumers take turns (the one
that just received a message goes to the back of the line); a consumer out
of credit (prefetch) steps aside and rejoins at the back when it has credit
again.  A requeued message returns to its original position.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from .errors import AccessRefused
from .message import Entry, Message

if TYPE_CHECKING:
    from .vhost import VHost


class Consumer(Protocol):
    """What a queue needs from a subscriber (an AMQP consumer, for now)."""

    tag: str
    exclusive: bool
    ack_required: bool

    def has_credit(self) -> bool: ...

    def deliver(self, queue: "Queue", entry: Entry) -> None: ...

    def cancelled_by_server(self, queue: "Queue") -> None: ...


class Queue:
    """A classic queue."""

    def __init__(
        self,
        vhost: "VHost",
        name: str,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        owner: Any = None,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.vhost = vhost
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        #: the connection that owns an exclusive queue; None when not exclusive
        self.owner = owner
        self.arguments = dict(arguments or {})
        self.ready: deque[Entry] = deque()
        self.unacked = 0
        self.deleted = False
        self._next_seq = 0
        self._active: deque[Consumer] = deque()
        self._blocked: list[Consumer] = []
        self._has_had_consumer = False
        self._dispatching = False
        #: bindings in which this queue is the destination: (exchange, key, args)
        self.bindings: set[tuple[str, str, Any]] = set()

    # ------------------------------------------------------------ properties
    @property
    def exclusive(self) -> bool:
        return self.owner is not None

    @property
    def message_count(self) -> int:
        return len(self.ready)

    @property
    def consumer_count(self) -> int:
        return len(self._active) + len(self._blocked)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._active) + self._blocked

    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost.name}'"

    # ---------------------------------------------------------------- input
    def enqueue(self, message: Message) -> Entry:
        """Append a routed message and hand it to a consumer if one can take it."""
        entry = Entry(self._next_seq, message)
        self._next_seq += 1
        self.ready.append(entry)
        if self._active or self._blocked:
            self.dispatch()
        return entry

    def requeue(self, entries: Iterable[Entry]) -> None:
        """Put delivered-but-unsettled entries back at their original positions."""
        returned = sorted(entries, key=_seq)
        if not returned:
            return
        self.unacked -= len(returned)
        if self.deleted:
            return
        ready = self.ready
        for entry in returned:
            entry.redelivered = True
        if not ready or returned[-1].seq < ready[0].seq:
            ready.extendleft(reversed(returned))
        else:
            merged = list(ready)
            for entry in returned:
                bisect.insort(merged, entry, key=_seq)
            self.ready = deque(merged)
        self.dispatch()

    def settle(self, count: int = 1) -> None:
        """Forget ``count`` acknowledged (or dropped) deliveries."""
        self.unacked -= count

    def take(self, ack_required: bool) -> Entry | None:
        """Remove the head entry for basic.get; None when empty."""
        if not self.ready:
            return None
        entry = self.ready.popleft()
        entry.delivery_count += 1
        if ack_required:
            self.unacked += 1
        return entry

    def purge(self) -> int:
        count = len(self.ready)
        self.ready.clear()
        return count

    # ------------------------------------------------------------ consumers
    def check_can_consume(self, exclusive: bool) -> None:
        has_exclusive = any(c.exclusive for c in self.consumers)
        if has_exclusive or (exclusive and self.consumer_count):
            raise AccessRefused(f"{self.describe()} in exclusive use")

    def add_consumer(self, consumer: Consumer) -> None:
        self.check_can_consume(consumer.exclusive)
        self._has_had_consumer = True
        self._active.append(consumer)
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detach a consumer; an auto-delete queue goes with its last one."""
        try:
            self._active.remove(consumer)
        except ValueError:
            try:
                self._blocked.remove(consumer)
            except ValueError:
                return
        if self.auto_delete and self._has_had_consumer and not self.consumer_count and not self.deleted:
            self.vhost.delete_queue(self)

    def dispatch(self) -> None:
        """Deliver ready messages to consumers with credit, in turn."""
        if self._dispatching:
            return
        self._dispatching = True
        try:
            blocked = self._blocked
            active = self._active
            if blocked:
                still = []
                for consumer in blocked:
                    (active.append if consumer.has_credit() else still.append)(consumer)
                self._blocked = blocked = still
            ready = self.ready
            while ready and active:
                consumer = active.popleft()
                if not consumer.has_credit():
                    blocked.append(consumer)
                    continue
                entry = ready.popleft()
                entry.delivery_count += 1
                if consumer.ack_required:
                    self.unacked += 1
                active.append(consumer)
                consumer.deliver(self, entry)
        finally:
            self._dispatching = False

    # ------------------------------------------------------------ lifecycle
    def delete(self) -> int:
        """Mark deleted, cancel consumers; returns the ready count dropped."""
        count = len(self.ready)
        self.deleted = True
        self.ready.clear()
        consumers = self.consumers
        self._active.clear()
        self._blocked = []
        for consumer in consumers:
            consumer.cancelled_by_server(self)
        return count

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.ready)} unacked={self.unacked}>"


def _seq(entry: Entry) -> int:
    return entry.seq
