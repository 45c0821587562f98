"""Fault injection from Python: ``server.faults.kafka(...)`` and ``server.faults.amqp(...)``.

The rules themselves live in the broker (:mod:`wiregate.core.faults`);
what each action does is described in :mod:`wiregate.kafka_wire.faults`
and :mod:`wiregate.amqp.faults`.  The same rules can be added over HTTP
(``POST /api/faults``).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wiregate.testing import Server

__all__ = ["Fault", "Faults"]

_DEFAULT: Any = object()


class Fault:
    """One fault rule added to a running server.

    Use it as a context manager to remove the rule on exit.  It holds the
    rule itself, so :attr:`hits` and :attr:`matched` stay readable after a
    rule that fired its last time left the broker.
    """

    def __init__(self, server: "Server", rule: Any) -> None:
        self._server = server
        self._rule = rule
        self.id: int = rule.id

    def describe(self) -> dict[str, Any]:
        """The rule as the HTTP API shows it, with its counters."""
        return self._server.call(self._rule.describe)

    @property
    def hits(self) -> int:
        """How many times the rule fired."""
        return self._rule.hits

    @property
    def matched(self) -> list[dict[str, Any]]:
        """The requests the rule matched, oldest first, each with the client's ``peer``."""
        return self._server.call(list, self._rule.matched)

    @property
    def active(self) -> bool:
        """True until the rule has fired its last time or was removed."""
        return self._server.broker.faults.get(self.id) is self._rule

    def remove(self) -> None:
        """Remove the rule (nothing happens when it is already gone)."""
        self._server.call(self._server.broker.faults.remove, self.id)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<wiregate Fault #{self.id} {self._rule.protocol} {self._rule.action} hits={self.hits}>"


class Faults:
    """Add and remove fault rules of a :class:`~wiregate.testing.Server`."""

    def __init__(self, server: "Server") -> None:
        self._server = server

    def add(self, spec: dict[str, Any]) -> Fault:
        """Add a rule from a spec, exactly as ``POST /api/faults`` takes it.

        Raises:
            ValueError: The spec is invalid (unknown key, action, error name...).
        """
        broker = self._server.broker
        rule = self._server.call(broker.faults.add_rule, spec)
        return Fault(self._server, rule)

    def kafka(
        self,
        api: str | int,
        *,
        error: str | int | None = None,
        delay_ms: float | None = None,
        drop: bool = False,
        topic: str | None = None,
        partition: int | None = None,
        client_id: str | None = None,
        version: int | None = None,
        times: int | None = _DEFAULT,
        after: int = 0,
    ) -> Fault:
        """Match Kafka requests of ``api`` and answer with ``error``, delay, drop — or only record them.

        ``faults.kafka("Produce", error="NOT_LEADER_OR_FOLLOWER", after=2)``
        makes the third Produce fail the way a broker that lost leadership
        answers; the client retries.  Without ``error``, ``delay_ms`` or
        ``drop`` the rule only observes (see :attr:`Fault.matched`).

        Args:
            api: An API name (``"Produce"``, ``"Fetch"``, ``"Metadata"``,
                ``"JoinGroup"``...) or key.
            error: A Kafka error name (any case) or code.
            delay_ms: Hold the request this long (the connection waits).
            drop: Close the connection instead of answering.
            topic: Only requests naming this topic.
            partition: Only requests naming this partition (of ``topic``
                when given).
            client_id: Only requests from this client id.
            version: Only this API version.
            times: Firings before the rule is removed (default 1; observing
                rules default to ``None``, until removed).
            after: Let this many matches pass first.

        Raises:
            ValueError: Unknown API or error, or more than one action.
        """
        actions = [name for name, given in (("error", error is not None), ("delay", delay_ms is not None), ("drop", drop)) if given]
        if len(actions) > 1:
            raise ValueError(f"one action per rule, not {' and '.join(actions)}")
        spec: dict[str, Any] = {"protocol": "kafka", "api": api, "action": actions[0] if actions else "observe", "after": after}
        for key, value in (("topic", topic), ("partition", partition), ("client_id", client_id), ("version", version), ("error", error), ("delay_ms", delay_ms)):
            if value is not None:
                spec[key] = value
        if times is not _DEFAULT:
            spec["times"] = times
        return self.add(spec)

    def amqp(
        self,
        method: str | None = None,
        action: str = "observe",
        *,
        queue: str | None = None,
        exchange: str | None = None,
        routing_key: str | None = None,
        reply_code: int | None = None,
        reply_text: str | None = None,
        delay_ms: float | None = None,
        times: int | None = _DEFAULT,
        after: int = 0,
    ) -> Fault:
        """Match AMQP methods a client sends and act on them.

        ``faults.amqp("basic.publish", "nack")`` nacks the next published
        message (confirm mode); ``faults.amqp("queue.declare",
        "close_channel", reply_code=406)`` fails the next declare.

        Args:
            method: ``"class.method"`` such as ``"basic.publish"``; any
                method when None.
            action: ``"observe"``, ``"nack"``, ``"close_channel"``,
                ``"close_connection"``, ``"delay"`` or ``"drop"``.
            queue: Only methods naming this queue.
            exchange: Only methods naming this exchange.
            routing_key: Only methods with this routing key.
            reply_code: For the close actions (defaults: 406 for a channel,
                320 for a connection).
            reply_text: For the close actions.
            delay_ms: For ``"delay"``.
            times: Firings before the rule is removed (default 1; observing
                rules default to ``None``, until removed).
            after: Let this many matches pass first.

        Raises:
            ValueError: Unknown method or action, or a bad option.
        """
        spec: dict[str, Any] = {"protocol": "amqp", "action": action, "after": after}
        for key, value in (
            ("method", method), ("queue", queue), ("exchange", exchange), ("routing_key", routing_key),
            ("reply_code", reply_code), ("reply_text", reply_text), ("delay_ms", delay_ms),
        ):
            if value is not None:
                spec[key] = value
        if times is not _DEFAULT:
            spec["times"] = times
        return self.add(spec)

    def list(self) -> list[dict[str, Any]]:
        """Every active rule, as ``GET /api/faults`` lists them."""
        return self._server.call(self._server.broker.faults.describe)

    def clear(self) -> None:
        """Remove every rule."""
        self._server.call(self._server.broker.faults.clear)
