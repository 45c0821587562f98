"""Queues: ready messages, unacked deliveries, consumers, and the queue
features RabbitMQ 3.10's classic queue offers.

Dispatch follows RabbitMQ: among consumers of the highest priority that
have credit, consumers take turns (the one that just received goes to the
back); a consumer out of credit (prefetch) steps aside and rejoins at the
back when it has credit again.  With ``x-single-active-consumer`` only the
earliest registered consumer receives.  A requeued message returns to its
original position.  Message TTL is enforced at the head of the queue, as
RabbitMQ does; ``x-max-length``/``-bytes`` count ready messages only.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

from .errors import AccessRefused
from .message import Entry, Message

if TYPE_CHECKING:
    from .timers import Timer
    from .vhost import VHost


class Consumer(Protocol):
    """What a queue needs from a subscriber (an AMQP consumer, for now)."""

    tag: str
    exclusive: bool
    ack_required: bool
    priority: int

    def has_credit(self) -> bool: ...

    def deliver(self, queue: "Queue", entry: Entry) -> None: ...

    def cancelled_by_server(self, queue: "Queue") -> None: ...


def _seq(entry: Entry) -> int:
    return entry.seq


class ReadyList(deque):  # type: ignore[type-arg]
    """Ready entries in delivery order (FIFO by enqueue sequence).

    A deque itself, so that ``len``, truth and iteration cost no Python
    call on the hot path; only the byte count needs the overrides.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def append(self, entry: Entry) -> None:
        deque.append(self, entry)
        self.bytes += entry.message.size

    def head(self) -> Entry:
        return self[0]

    def popleft(self) -> Entry:
        entry = deque.popleft(self)
        self.bytes -= entry.message.size
        return entry

    def pop(self) -> Entry:
        entry = deque.pop(self)
        self.bytes -= entry.message.size
        return entry

    def restore(self, entries: list[Entry]) -> None:
        """Put entries (sorted by seq) back at their original positions."""
        self.bytes += sum(e.message.size for e in entries)
        if not self or entries[-1].seq < self[0].seq:
            self.extendleft(reversed(entries))
            return
        merged = list(self)
        for entry in entries:
            bisect.insort(merged, entry, key=_seq)
        deque.clear(self)
        self.extend(merged)

    def clear(self) -> list[Entry]:  # type: ignore[override]
        items = list(self)
        deque.clear(self)
        self.bytes = 0
        return items

    __hash__ = object.__hash__
    __eq__ = object.__eq__  # type: ignore[assignment]


class PriorityReadyList:
    """Ready entries by priority (highest first), FIFO within one priority
    (the same interface as :class:`ReadyList`)."""

    def __init__(self, max_priority: int) -> None:
        self.max_priority = max_priority
        self._levels: dict[int, ReadyList] = {}
        self._order: list[int] = []  # priorities present, highest first
        self._count = 0
        self.bytes = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Entry]:
        for priority in self._order:
            yield from self._levels[priority]

    def _level(self, priority: int) -> ReadyList:
        level = self._levels.get(priority)
        if level is None:
            level = self._levels[priority] = ReadyList()
            bisect.insort(self._order, priority, key=lambda p: -p)
        return level

    def _shrink(self, priority: int) -> None:
        if not self._levels[priority]:
            del self._levels[priority]
            self._order.remove(priority)

    def append(self, entry: Entry) -> None:
        self._level(entry.priority).append(entry)
        self._count += 1
        self.bytes += entry.message.size

    def head(self) -> Entry:
        return self._levels[self._order[0]].head()

    def popleft(self) -> Entry:
        priority = self._order[0]
        entry = self._levels[priority].popleft()
        self._shrink(priority)
        self._count -= 1
        self.bytes -= entry.message.size
        return entry

    def pop(self) -> Entry:
        priority = self._order[-1]
        entry = self._levels[priority].pop()
        self._shrink(priority)
        self._count -= 1
        self.bytes -= entry.message.size
        return entry

    def restore(self, entries: list[Entry]) -> None:
        by_priority: dict[int, list[Entry]] = {}
        for entry in entries:
            by_priority.setdefault(entry.priority, []).append(entry)
        for priority, group in by_priority.items():
            self._level(priority).restore(group)
            self._count += len(group)
            self.bytes += sum(e.message.size for e in group)

    def clear(self) -> list[Entry]:
        items = list(self)
        self._levels.clear()
        self._order.clear()
        self._count = 0
        self.bytes = 0
        return items


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
        self.arguments = args = dict(arguments or {})
        max_priority = args.get("x-max-priority")
        self.ready: ReadyList | PriorityReadyList = PriorityReadyList(int(max_priority)) if max_priority else ReadyList()
        self.max_priority = int(max_priority) if max_priority else 0
        ttl = args.get("x-message-ttl")
        self.message_ttl: float | None = int(ttl) / 1000 if ttl is not None else None
        self.max_length: int | None = int(args["x-max-length"]) if "x-max-length" in args else None
        self.max_length_bytes: int | None = int(args["x-max-length-bytes"]) if "x-max-length-bytes" in args else None
        overflow = args.get("x-overflow", "drop-head")
        self.overflow = overflow.decode() if isinstance(overflow, bytes) else str(overflow)
        self.single_active = args.get("x-single-active-consumer") is True
        mode = args.get("x-queue-mode")
        #: x-queue-mode=lazy: with a data directory, message bodies are kept on disk from the first one
        self.lazy = (mode.decode() if isinstance(mode, bytes) else mode) == "lazy"
        queue_type = args.get("x-queue-type", "classic")
        self.queue_type = queue_type.decode() if isinstance(queue_type, bytes) else str(queue_type)
        limit = args.get("x-delivery-limit") if self.queue_type == "quorum" else None
        #: quorum queues: returns allowed before a message is dead-lettered
        self.delivery_limit: int | None = int(limit) if limit is not None else None
        expires = args.get("x-expires")
        self.expires: float | None = int(expires) / 1000 if expires is not None else None
        self.unacked = 0
        self.deleted = False
        #: where a durable queue's persistent messages are journaled (a data
        #: directory is in use); None otherwise.  See core/persistence.py.
        self.store: Any = None
        self._next_seq = 0
        self._registered: list[Consumer] = []
        self._groups: dict[int, deque[Consumer]] = {}
        self._priorities: list[int] = []  # consumer priorities present, highest first
        self._blocked: list[Consumer] = []
        self._has_had_consumer = False
        self._dispatching = False
        self._ttl_timer: "Timer | None" = None
        self._expiry_timer: "Timer | None" = None
        self._last_used = vhost.scheduler.now()
        if self.expires is not None:
            self._arm_expiry()
        #: no limits, TTL, priorities or single active consumer: enqueue's
        #: short path applies (the arguments never change after declaration)
        self._plain = (
            not self.max_priority
            and self.message_ttl is None
            and self.max_length is None
            and self.max_length_bytes is None
            and not self.single_active
        )

    # ------------------------------------------------------------ properties
    @property
    def exclusive(self) -> bool:
        return self.owner is not None

    @property
    def message_count(self) -> int:
        self.expire_head()
        return len(self.ready)

    @property
    def consumer_count(self) -> int:
        return len(self._registered)

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._registered)

    def describe(self) -> str:
        return f"queue '{self.name}' in vhost '{self.vhost.name}'"

    def pending(self) -> bool:
        """Is there anything a consumer with credit could be given?"""
        return bool(self.ready)

    # ---------------------------------------------------------------- input
    def enqueue(self, message: Message) -> bool:
        """Add a routed message; False when the queue refused it (overflow).

        A refused message is what ``x-overflow: reject-publish`` does: the
        publisher's confirm becomes a nack.
        """
        ready = self.ready
        if self._plain and message.expiration is None and (not ready or ready[0].expires_at is None):
            # the usual case, short: no TTL (nothing at the head to expire
            # first), no limits
            entry = Entry(self._next_seq, message)
            self._next_seq += 1
            groups = self._groups
            store = self.store
            if not ready and groups and not self._blocked and not self._dispatching and self._hand_over(entry):
                return True
            ready.append(entry)
            if store is not None:
                store.add(entry)
            if groups:
                self.dispatch(expire=False)
            return True
        body_size = message.size
        if self.max_length is not None or self.max_length_bytes is not None:
            over = (self.max_length is not None and len(self.ready) + 1 > self.max_length) or (
                self.max_length_bytes is not None and self.ready.bytes + body_size > self.max_length_bytes
            )
            if over and self.overflow in ("reject-publish", "reject-publish-dlx"):
                if self.overflow == "reject-publish-dlx":
                    self.vhost.dead_letter(self, message, "maxlen")
                return False
        now = None
        was_empty = not ready
        if not was_empty and ready.head().expires_at is not None:
            # drop what has already expired first, so that the delivery
            # attempt below can only hand out the new message early
            now = self.vhost.scheduler.now()
            self.expire_head(now)
            was_empty = not ready
        ttl = self.message_ttl
        if message.expiration is not None:
            per_message = message.expiration / 1000
            ttl = per_message if ttl is None else min(ttl, per_message)
        priority = 0
        if self.max_priority:
            priority = min(message.priority or 0, self.max_priority)
        if ttl is not None:
            if now is None:
                now = self.vhost.scheduler.now()
            entry = Entry(self._next_seq, message, now + ttl, priority)
        else:
            entry = Entry(self._next_seq, message, None, priority)
        self._next_seq += 1
        groups = self._groups
        store = self.store
        if was_empty and groups and not self._blocked and not self.single_active and not self._dispatching and self._hand_over(entry):
            return True
        ready.append(entry)
        if store is not None:
            store.add(entry)
        if groups:
            # a message with TTL 0 still goes to a consumer that is ready now.
            # With every consumer out of credit (all in _blocked) there is
            # nothing to do: credit comes back through an ack, nack, qos or
            # recover, and each of those dispatches.
            self.dispatch(expire=False)
        if self.max_length is not None or self.max_length_bytes is not None:
            self._drop_over_limit()
        if entry.expires_at is not None:
            self.expire_head(now)
        return True

    def _hand_over(self, entry: Entry) -> bool:
        """dispatch()'s choice for a queue with nothing ready and no consumer
        out of credit, made at once: the next consumer in turn takes the new
        ``entry`` straight away (it never sits in the ready list).  False
        when that consumer has no credit (the entry is then enqueued)."""
        group = self._groups[self._priorities[0]]
        consumer = group[0]
        if not consumer.has_credit():
            return False
        store = self.store
        if store is not None:
            store.add(entry)
        entry.delivery_count = 1
        if consumer.ack_required:
            self.unacked += 1
        group.rotate(-1)
        consumer.deliver(self, entry)
        if store is not None:
            store.handed_out(entry, consumer.ack_required)
        return True

    def restore(self, message: Message, seq: int, redelivered: bool) -> Entry:
        """Put back a message read from a data directory, in ``seq`` order.

        TTLs count again from now (the restart), limits are not re-applied
        (they held when the message was taken), and nothing is dispatched:
        recovery happens before any client connects.
        """
        ttl = self.message_ttl
        if message.expiration is not None:
            per_message = message.expiration / 1000
            ttl = per_message if ttl is None else min(ttl, per_message)
        now = self.vhost.scheduler.now()
        priority = min(message.priority or 0, self.max_priority) if self.max_priority else 0
        entry = Entry(seq, message, now + ttl if ttl is not None else None, priority)
        entry.redelivered = redelivered
        self.ready.append(entry)
        self._next_seq = max(self._next_seq, seq + 1)
        self._arm_ttl()
        return entry

    def _drop_over_limit(self) -> None:
        ready = self.ready
        while ready and (
            (self.max_length is not None and len(ready) > self.max_length)
            or (self.max_length_bytes is not None and ready.bytes > self.max_length_bytes)
        ):
            entry = ready.popleft()
            self.vhost.dead_letter(self, entry.message, "maxlen")
            if self.store is not None:
                self.store.remove(entry)

    def requeue(self, entries: Iterable[Entry]) -> None:
        """Put delivered-but-unsettled entries back at their original positions."""
        returned = sorted(entries, key=_seq)
        if not returned:
            return
        self.unacked -= len(returned)
        if self.deleted:
            return
        for entry in returned:
            entry.redelivered = True
        if self.queue_type == "quorum":
            returned = self._count_returns(returned)
            if not returned:
                return
        self.ready.restore(returned)
        self.expire_head()
        self.dispatch()

    def _count_returns(self, returned: list[Entry]) -> list[Entry]:
        # quorum queues count returns; past x-delivery-limit a message is
        # dead-lettered with reason delivery_limit instead of requeued
        kept = []
        for entry in returned:
            entry.returns += 1
            if self.delivery_limit is not None and entry.returns > self.delivery_limit:
                self.vhost.dead_letter(self, entry.message, "delivery_limit")
                if self.store is not None:
                    self.store.remove(entry)
            else:
                kept.append(entry)
        return kept

    def annotations(self, entry: Entry) -> dict[str, int] | None:
        """Headers the queue adds to a delivery (quorum: ``x-delivery-count``)."""
        if self.queue_type == "quorum":
            return {"x-delivery-count": entry.returns}
        return None

    def settle(self, entries: list[Entry]) -> None:
        """Forget acknowledged deliveries."""
        self.unacked -= len(entries)
        store = self.store
        if store is not None:
            for entry in entries:
                store.remove(entry)

    def reject(self, entries: Iterable[Entry]) -> None:
        """Drop rejected deliveries (no requeue): settle and dead-letter them."""
        entries = list(entries)
        self.unacked -= len(entries)
        store = self.store
        for entry in entries:
            self.vhost.dead_letter(self, entry.message, "rejected")
            if store is not None:
                store.remove(entry)

    def take(self, ack_required: bool) -> Entry | None:
        """Remove the head entry for basic.get; None when empty."""
        self.touch()
        self.expire_head()
        if not self.ready:
            return None
        entry = self.ready.popleft()
        entry.delivery_count += 1
        if ack_required:
            self.unacked += 1
        if self.store is not None:
            self.store.handed_out(entry, ack_required)
        self._arm_ttl()
        return entry

    def purge(self) -> int:
        count = len(self.ready)
        if self.store is not None:
            for entry in self.ready:
                self.store.remove(entry)
        self.ready.clear()
        return count

    # ------------------------------------------------------------------ TTL
    def expire_head(self, now: float | None = None) -> None:
        """Dead-letter (reason ``expired``) entries whose TTL ran out at the head."""
        ready = self.ready
        if not ready:
            return
        head = ready.head()
        if head.expires_at is None:
            return
        if now is None:
            now = self.vhost.scheduler.now()
        while ready:
            head = ready.head()
            if head.expires_at is None or head.expires_at > now:
                break
            ready.popleft()
            self.vhost.dead_letter(self, head.message, "expired")
            if self.store is not None:
                self.store.remove(head)
        self._arm_ttl()

    def _arm_ttl(self) -> None:
        if self.deleted or not self.ready:
            return
        when = self.ready.head().expires_at
        if when is None:
            return
        timer = self._ttl_timer
        if timer is not None and not timer.cancelled and timer.when <= when:
            return
        if timer is not None:
            timer.cancel()
        self._ttl_timer = self.vhost.scheduler.call_at(when, self._ttl_fired)

    def _ttl_fired(self) -> None:
        self._ttl_timer = None
        if not self.deleted:
            self.expire_head()

    # -------------------------------------------------------------- expiry
    def touch(self) -> None:
        """The queue was used (declare, get, consume): restart x-expires."""
        self._last_used = self.vhost.scheduler.now()

    def _arm_expiry(self) -> None:
        assert self.expires is not None
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_timer = self.vhost.scheduler.call_at(self._last_used + self.expires, self._expiry_fired)

    def _expiry_fired(self) -> None:
        self._expiry_timer = None
        if self.deleted or self.expires is None:
            return
        if self._registered:
            self._last_used = self.vhost.scheduler.now()
        elif self.vhost.scheduler.now() >= self._last_used + self.expires:
            self.vhost.delete_queue(self)
            return
        self._arm_expiry()

    # ------------------------------------------------------------ consumers
    def check_can_consume(self, exclusive: bool) -> None:
        has_exclusive = any(c.exclusive for c in self._registered)
        if has_exclusive or (exclusive and self._registered):
            raise AccessRefused(f"{self.describe()} in exclusive use")

    def add_consumer(self, consumer: Consumer) -> None:
        self.check_can_consume(consumer.exclusive)
        self._has_had_consumer = True
        self.touch()
        self._registered.append(consumer)
        self._group(consumer.priority).append(consumer)
        self.dispatch()

    def _group(self, priority: int) -> deque[Consumer]:
        group = self._groups.get(priority)
        if group is None:
            group = self._groups[priority] = deque()
            bisect.insort(self._priorities, priority, key=lambda p: -p)
        return group

    def remove_consumer(self, consumer: Consumer) -> None:
        """Detach a consumer; an auto-delete queue goes with its last one."""
        try:
            self._registered.remove(consumer)
        except ValueError:
            return
        group = self._groups.get(consumer.priority)
        if group is not None and consumer in group:
            group.remove(consumer)
        elif consumer in self._blocked:
            self._blocked.remove(consumer)
        if group is not None and not group:
            del self._groups[consumer.priority]
            self._priorities.remove(consumer.priority)
        self.touch()
        if self.auto_delete and self._has_had_consumer and not self._registered and not self.deleted:
            self.vhost.delete_queue(self)
        elif self.single_active and self._registered:
            self.dispatch()

    def dispatch(self, *, expire: bool = True) -> None:
        """Deliver ready messages to consumers with credit."""
        if self._dispatching or self.deleted:
            return
        self._dispatching = True
        try:
            ready = self.ready
            if expire and ready and ready.head().expires_at is not None:
                self.expire_head()
            if self.single_active:
                self._dispatch_single()
                return
            blocked = self._blocked
            if blocked:
                still = []
                for consumer in blocked:
                    if consumer.has_credit():
                        self._group(consumer.priority).append(consumer)
                    else:
                        still.append(consumer)
                self._blocked = blocked = still
            delivered = False
            for priority in list(self._priorities):
                group = self._groups.get(priority)
                while ready and group:
                    consumer = group.popleft()
                    if not consumer.has_credit():
                        blocked.append(consumer)
                        continue
                    entry = ready.popleft()
                    entry.delivery_count += 1
                    if consumer.ack_required:
                        self.unacked += 1
                    group.append(consumer)
                    consumer.deliver(self, entry)
                    if self.store is not None:
                        self.store.handed_out(entry, consumer.ack_required)
                    delivered = True
                if group is not None and not group:
                    del self._groups[priority]
                    self._priorities.remove(priority)
                if not ready:
                    break
            if delivered:
                self._arm_ttl()
        finally:
            self._dispatching = False

    def _dispatch_single(self) -> None:
        if not self._registered:
            return
        consumer = self._registered[0]
        ready = self.ready
        delivered = False
        while ready and consumer.has_credit():
            entry = ready.popleft()
            entry.delivery_count += 1
            if consumer.ack_required:
                self.unacked += 1
            consumer.deliver(self, entry)
            if self.store is not None:
                self.store.handed_out(entry, consumer.ack_required)
            delivered = True
        if delivered:
            self._arm_ttl()

    # ------------------------------------------------------------ lifecycle
    def delete(self) -> int:
        """Mark deleted, cancel consumers; returns the ready count dropped."""
        count = len(self.ready)
        self.deleted = True
        self.ready.clear()
        for timer in (self._ttl_timer, self._expiry_timer):
            if timer is not None:
                timer.cancel()
        consumers = list(self._registered)
        self._registered.clear()
        self._groups.clear()
        self._priorities.clear()
        self._blocked = []
        for consumer in consumers:
            consumer.cancelled_by_server(self)
        return count

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.ready)} unacked={self.unacked}>"
