"""Messages as the core sees them.

The core never parses protocol encodings.  A message carries its body, the
protocol's property block as an opaque value (for AMQP: the raw encoded
property bytes, forwarded untouched so every header keeps its exact type
code), and a decoder the core may call when routing needs the headers.
"""

from __future__ import annotations

from typing import Any, Callable


class Message:
    """An immutable published message, shared by every queue it is routed to."""

    __slots__ = (
        "exchange",
        "routing_key",
        "body",
        "properties",
        "persistent",
        "priority",
        "expiration",
        "routing_keys",
        "_headers",
        "_decode_headers",
        "size",
    )

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Any = None,
        *,
        persistent: bool = False,
        priority: int | None = None,
        expiration: int | None = None,
        routing_keys: list[str] | tuple[str, ...] | None = None,
        headers: dict[str, Any] | None = None,
        decode_headers: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        #: the body's length (kept when the body itself is paged out to disk)
        self.size = len(body)
        self.properties = properties
        self.persistent = persistent
        #: the priority property (None when absent)
        self.priority = priority
        #: per-message TTL in milliseconds (the AMQP expiration property), None when absent
        self.expiration = expiration
        #: every routing key the message was published with (routing key plus CC/BCC)
        #: (a tuple in the usual case: the collector stops tracking it)
        self.routing_keys = routing_keys if routing_keys is not None else (routing_key,)
        self._headers = headers
        self._decode_headers = decode_headers

    @property
    def headers(self) -> dict[str, Any]:
        """Application headers, decoded on first use (routing by headers)."""
        if self._headers is None:
            decoded = self._decode_headers() if self._decode_headers is not None else None
            self._headers = decoded or {}
        return self._headers

    def republished(self, exchange: str, routing_key: str, headers: dict[str, Any], *, keep_expiration: bool) -> "Message":
        """A copy with new headers (dead-lettering), routed afresh.

        The protocol's property object must offer ``with_headers(headers,
        drop_expiration=...)``; it re-encodes only what changed.
        """
        properties = self.properties
        if properties is not None:
            properties = properties.with_headers(headers, drop_expiration=not keep_expiration)
        return Message(
            exchange,
            routing_key,
            self.body,
            properties,
            persistent=self.persistent,
            priority=self.priority,
            expiration=self.expiration if keep_expiration else None,
            headers=headers,
        )

    def __repr__(self) -> str:
        return f"<Message {self.exchange!r}/{self.routing_key!r} {len(self.body)} bytes>"


class PagedMessage(Message):
    """A message whose body lives on disk (a queue past its page-out threshold,
    or ``x-queue-mode: lazy``, with a data directory).  The body is read back
    whenever it is used: delivery, dead-lettering."""

    __slots__ = ("_read",)

    def __init__(self, message: Message, read: Callable[[], bytes]) -> None:  # noqa: D107 (copies, no super call)
        for name in ("exchange", "routing_key", "properties", "persistent", "priority", "expiration", "routing_keys", "_headers", "_decode_headers", "size"):
            object.__setattr__(self, name, getattr(message, name))
        self._read = read

    @property  # type: ignore[override]
    def body(self) -> bytes:  # type: ignore[override]
        return self._read()


class Entry:
    """One message sitting in one queue.

    ``seq`` is the position the message was enqueued at; a requeued entry goes
    back to that position, as RabbitMQ's classic queues do.
    """

    __slots__ = ("seq", "message", "redelivered", "delivery_count", "returns", "expires_at", "priority")

    def __init__(self, seq: int, message: Message, expires_at: float | None = None, priority: int = 0) -> None:
        self.seq = seq
        self.message = message
        self.redelivered = False
        self.delivery_count = 0
        #: times the entry came back to the queue (nack/reject/channel close)
        self.returns = 0
        #: broker clock time after which the entry is dead (None: never)
        self.expires_at = expires_at
        #: effective priority in a priority queue (0 otherwise)
        self.priority = priority

    def __repr__(self) -> str:
        return f"<Entry #{self.seq} {self.message!r}{' redelivered' if self.redelivered else ''}>"
