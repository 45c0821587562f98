"""Fault injection: rules that make the broker misbehave on purpose, for tests.

Modelled on kfake's ``ControlKey`` and librdkafka's mock
``push_request_errors``: a rule *matches* a request (a Kafka API, an AMQP
method, optionally narrowed by topic, partition, client id, queue,
exchange, routing key) and then *acts*: answers with an error, delays,
drops the connection, nacks a publisher confirm, closes the channel — or
only observes.  A rule fires once by default, ``times=N`` times, or until
removed (``times=None``), and can let the first ``after`` matches pass.

The registry is protocol-neutral data: the protocol layers describe each
request as a small dict of fields (``{"api": "Produce", "topic":
{"t"}, ...}``) and do what the rule says.  They also register, per
protocol, which match keys and actions exist and how to normalise them
(e.g. Kafka error names to codes), so a bad rule is refused when it is
added, not when it would fire.

Listeners (the gateway's trace) hear every fired rule.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: how many matched requests an observing rule remembers
MAX_RECORDED = 1000


@dataclasses.dataclass(frozen=True)
class ProtocolFaults:
    """What one protocol layer accepts in a rule.

    Attributes:
        match_keys: Keys a rule may match on; ``normalize_match`` turns the
            given values into the form the protocol's request fields use.
        actions: Action name -> the option names it takes (e.g. ``"error":
            ("error",)``).
        normalize: Called with the whole spec (a mutable dict) after the
            generic checks; raises ``ValueError`` for a bad value and may
            rewrite values (a Kafka error name into its code).
        required_match: Match keys a rule must have (e.g. Kafka's ``api``).
    """

    match_keys: tuple[str, ...]
    actions: Mapping[str, tuple[str, ...]]
    normalize: Callable[[dict[str, Any]], None]
    required_match: tuple[str, ...] = ()


#: protocol name -> its description, registered by wiregate.amqp and wiregate.kafka_wire
PROTOCOLS: dict[str, ProtocolFaults] = {}

_COMMON_KEYS = ("protocol", "action", "times", "after")


class FaultRule:
    """One rule: what it matches, what it does, how often, what it saw.

    Attributes:
        id: Unique within the broker's lifetime.
        protocol: ``"amqp"`` or ``"kafka"``.
        match: Match key -> expected value (normalised).
        action: What to do, e.g. ``"error"``, ``"delay"``, ``"observe"``.
        options: The action's options (``error``, ``delay_ms``,
            ``reply_code``, ``reply_text``).
        times: How many more times it fires; ``None``: until removed.
        after: How many more matches it lets pass before firing.
        hits: How many times it fired.
        matched: Recorded matches (the request fields and the peer), the
            latest :data:`MAX_RECORDED`.
    """

    def __init__(self, rule_id: int, spec: Mapping[str, Any], match_keys: Iterable[str], option_keys: Iterable[str]) -> None:
        self.id = rule_id
        self.protocol: str = spec["protocol"]
        self.action: str = spec["action"]
        self.match = {key: spec[key] for key in match_keys if spec.get(key) is not None}
        self.options = {key: spec[key] for key in option_keys if key in spec}
        self.times: int | None = spec["times"]
        self.after: int = spec["after"]
        self.hits = 0
        self.matched: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)

    def matches(self, fields: Mapping[str, Any]) -> bool:
        for key, expected in self.match.items():
            actual = fields.get(key)
            if isinstance(actual, (set, frozenset, list, tuple)):
                if expected not in actual:
                    return False
            elif actual != expected:
                return False
        return True

    def describe(self) -> dict[str, Any]:
        """The rule as JSON-able data (the HTTP API's representation)."""
        return {
            "id": self.id,
            "protocol": self.protocol,
            **{key: value for key, value in self.match.items() if not key.startswith("_")},
            "action": self.action,
            **self.options,
            "times": self.times,
            "after": self.after,
            "hits": self.hits,
            "matched": [_jsonable(item) for item in self.matched],
        }


class Faults:
    """The fault rules of one broker."""

    def __init__(self) -> None:
        self._rules: dict[int, FaultRule] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        #: protocol -> its rules in the order they were added.  Protocol
        #: layers test ``faults.active[protocol]`` before describing a request,
        #: so with no rule the hot path pays one dict lookup.
        self.active: dict[str, list[FaultRule]] = {}

    # ------------------------------------------------------------ rules
    def add(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Add a rule from a JSON-like spec; returns it as :meth:`FaultRule.describe` does.

        The spec has ``protocol`` (``"kafka"`` or ``"amqp"``), match keys
        (Kafka: ``api``, ``version``, ``topic``, ``partition``,
        ``client_id``; AMQP: ``method``, ``queue``, ``exchange``,
        ``routing_key``), ``action`` with its options, ``times`` (default
        1; ``None`` until removed; observing rules default to ``None``) and
        ``after`` (default 0).

        Raises:
            ValueError: The spec names an unknown protocol, key or action,
                or a value is out of range.
        """
        return self.add_rule(spec).describe()

    def add_rule(self, spec: Mapping[str, Any]) -> FaultRule:
        """Like :meth:`add`, but returns the live :class:`FaultRule`."""
        if not isinstance(spec, Mapping):
            raise ValueError("a fault rule is a JSON object")
        spec = dict(spec)
        protocol = spec.get("protocol")
        description = PROTOCOLS.get(protocol)  # type: ignore[arg-type]
        if description is None:
            known = ", ".join(sorted(PROTOCOLS)) or "none loaded"
            raise ValueError(f"unknown protocol {protocol!r} (known: {known})")
        action = spec.get("action", "observe")
        if action not in description.actions:
            raise ValueError(f"unknown {protocol} action {action!r} (known: {', '.join(description.actions)})")
        spec["action"] = action
        option_keys = description.actions[action]
        unknown = set(spec) - set(_COMMON_KEYS) - set(description.match_keys) - set(option_keys)
        if unknown:
            raise ValueError(f"unknown key(s) for a {protocol} {action} rule: {', '.join(sorted(unknown))}")
        for key in description.required_match:
            if spec.get(key) is None:
                raise ValueError(f"a {protocol} rule needs {key!r}")
        times = spec.get("times", None if action == "observe" else 1)
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError(f"times must be a positive integer or null, not {times!r}")
        after = spec.get("after", 0)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValueError(f"after must be a non-negative integer, not {after!r}")
        spec["times"] = times
        spec["after"] = after
        description.normalize(spec)
        rule = FaultRule(next(self._ids), spec, description.match_keys, option_keys)
        self._rules[rule.id] = rule
        self.active.setdefault(protocol, []).append(rule)  # type: ignore[arg-type]
        return rule

    def remove(self, rule_id: int) -> bool:
        """Remove a rule; returns False when there was none with that id."""
        rule = self._rules.pop(rule_id, None)
        if rule is None:
            return False
        rules = self.active[rule.protocol]
        rules.remove(rule)
        if not rules:
            del self.active[rule.protocol]
        return True

    def clear(self) -> None:
        """Remove every rule (listeners stay)."""
        self._rules.clear()
        self.active.clear()

    def get(self, rule_id: int) -> FaultRule | None:
        return self._rules.get(rule_id)

    def describe(self) -> list[dict[str, Any]]:
        """Every rule, oldest first, as JSON-able data."""
        return [rule.describe() for rule in self._rules.values()]

    # ------------------------------------------------------------ matching
    def match(self, protocol: str, fields: Mapping[str, Any], peer: str = "") -> FaultRule | None:
        """Find the first rule for this request and count the match.

        Every matching rule records the request; the first one whose
        ``after`` has run out and that has firings left *fires*: it is
        returned (an observing rule is returned too, the caller does
        nothing for it) and listeners hear of it.  A rule whose ``times``
        runs out is removed.

        Args:
            protocol: ``"amqp"`` or ``"kafka"``.
            fields: The request as the protocol layer describes it.
            peer: The client's address, for the record and listeners.

        Returns:
            The rule that fired, or None.
        """
        rules = self.active.get(protocol)
        if not rules:
            return None
        fired: FaultRule | None = None
        # Keys starting with "_" are for matching only (Kafka's topic-partition pairs).
        record = {"peer": peer, **{key: value for key, value in fields.items() if not key.startswith("_")}}
        for rule in list(rules):
            if not rule.matches(fields):
                continue
            rule.matched.append(record)
            if fired is not None:
                continue
            if rule.after > 0:
                rule.after -= 1
                continue
            fired = rule
            rule.hits += 1
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self.remove(rule.id)
        if fired is not None:
            hit = {"rule": fired.id, "protocol": protocol, "action": fired.action, **fired.options, **_jsonable(record)}
            for listener in list(self._listeners):
                listener(hit)
        return fired

    # ------------------------------------------------------------ listeners
    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(hit)`` whenever a rule fires (synchronously; be quick)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(item) for item in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
