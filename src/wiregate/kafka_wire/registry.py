"""The API registry: one handler per Kafka API, with the versions it implements.

The ApiVersions response is generated from this registry, so what wiregate
advertises can never drift from what it implements.  The ranges follow
Kafka 4.0 (kafka-python infers the broker release from them), capped at
what each handler implements; APIs without a handler are not advertised.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

#: Kafka 4.0's ranges for the APIs a single broker answers to clients
#: (from Kafka's JSON schemas; kafka-python's broker_version_data agrees).
KAFKA_4_0_RANGES: dict[int, tuple[int, int]] = {
    0: (0, 12), 1: (4, 17), 2: (1, 10), 3: (0, 13), 8: (2, 9), 9: (1, 9), 10: (0, 6), 11: (2, 9),
    12: (0, 4), 13: (0, 5), 14: (0, 5), 15: (0, 6), 16: (0, 5), 17: (0, 1), 18: (0, 4), 19: (2, 7),
    20: (1, 6), 21: (0, 2), 22: (0, 5), 23: (2, 4), 24: (0, 5), 25: (0, 4), 26: (0, 5), 28: (0, 5),
    29: (1, 3), 30: (1, 3), 31: (1, 3), 32: (1, 4), 33: (0, 2), 34: (1, 2), 35: (1, 4), 36: (0, 2),
    37: (0, 3), 38: (1, 3), 39: (1, 2), 40: (1, 2), 41: (1, 3), 42: (0, 2), 43: (0, 2), 44: (0, 1),
    45: (0, 0), 46: (0, 0), 47: (0, 0), 48: (0, 1), 49: (0, 1), 50: (0, 0), 51: (0, 0), 55: (0, 2),
    57: (0, 2), 60: (0, 2), 61: (0, 0), 64: (0, 0), 65: (0, 0), 66: (0, 1), 68: (0, 1), 69: (0, 1),
    74: (0, 0), 75: (0, 0),
}


@dataclasses.dataclass(frozen=True)
class Api:
    key: int
    name: str
    min_version: int
    max_version: int
    handler: Callable[..., Any]
    #: the lowest version announced in ApiVersions when it differs from
    #: min_version (Produce: see KAFKA-18659)
    advertised_min: int | None = None


#: api key -> registered handler
APIS: dict[int, Api] = {}


def handles(
    key: int, name: str, min_version: int, max_version: int, *, advertised_min: int | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a handler for ``key`` in ``min_version..max_version``.

    ``advertised_min`` announces a lower version than is implemented, for
    the one place Kafka 4.0 does so itself: Produce is advertised from v0
    (KAFKA-18659) because librdkafka decides whether the broker supports
    compression by checking that Produce v0 is supported; requests below
    ``min_version`` still close the connection, as Kafka 4.0 rejects them.

    The handler is called as ``handler(ctx, request)`` and returns a
    response entity (built with :func:`wiregate.kafka_wire.protocol.build`
    for ``ctx.response_class``), a :class:`~wiregate.kafka_wire.connection.Deferred`
    it will resolve later, or ``NO_RESPONSE`` (Produce with acks=0).

    Raises:
        ValueError: the range is outside Kafka 4.0's for that API.
    """
    lo, hi = KAFKA_4_0_RANGES.get(key, (min_version, max_version))
    if (advertised_min if advertised_min is not None else min_version) < lo or max_version > hi:
        raise ValueError(f"API {key} {min_version}-{max_version} is outside Kafka 4.0's {lo}-{hi}")

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        APIS[key] = Api(key, name, min_version, max_version, handler, advertised_min)
        return handler

    return register


def supported(key: int, version: int) -> bool:
    api = APIS.get(key)
    return api is not None and api.min_version <= version <= api.max_version


def advertised() -> list[tuple[int, int, int]]:
    """(api_key, min_version, max_version) for the ApiVersions response."""
    return [
        (api.key, api.min_version if api.advertised_min is None else api.advertised_min, api.max_version)
        for api in sorted(APIS.values(), key=lambda a: a.key)
    ]
