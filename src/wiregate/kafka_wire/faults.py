"""Kafka fault injection: describe requests for the core's fault rules, build error answers.

A rule matches a request by ``api`` (name such as ``"Produce"`` or key),
optionally ``version``, ``topic``, ``partition`` and ``client_id``, and
then:

- ``error``: answers with ``error`` (a code or its name, e.g.
  ``"NOT_LEADER_OR_FOLLOWER"``) *instead of* running the request, as a
  broker that refused it would: nothing is appended, committed or created.
  The answer mirrors the request — every topic and partition it named gets
  the error code, offsets are -1 — so clients see exactly the error they
  would get from Kafka.  Metadata is the exception: it is answered for
  real and the error is set on the matched topics (or every topic), since
  a Metadata answer without brokers would not be one a broker sends.
- ``delay``: holds the request ``delay_ms`` milliseconds before handling
  it.  Like Kafka, which handles one request per connection at a time,
  nothing behind it on that connection is answered in the meantime.
- ``drop``: closes the connection without answering.
- ``observe``: only records the request.

A rule matching a request with several partitions acts on the whole
request.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core.faults import PROTOCOLS, ProtocolFaults

from .protocol import _fields, build, field_class
from .registry import APIS

__all__ = ["error_response", "request_fields", "with_topic_errors"]


def _api_name(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        api = APIS.get(value)
        if api is None:
            raise ValueError(f"unknown Kafka API key {value}")
        return api.name
    if isinstance(value, str):
        wanted = value.replace("_", "").lower()
        for api in APIS.values():
            if api.name.lower() == wanted:
                return api.name
        if value.isdigit():
            return _api_name(int(value))
    raise ValueError(f"unknown Kafka API {value!r} (e.g. 'Produce', 'Fetch', 'Metadata' or an API key)")


def error_code(value: Any) -> int:
    """The numeric Kafka error code for a code or a name (any case).

    Raises:
        ValueError: No such error.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(ErrorCode(value))
        except ValueError:
            raise ValueError(f"unknown Kafka error code {value}") from None
    if isinstance(value, str):
        try:
            return int(ErrorCode[value.lower()])
        except KeyError:
            if value.lstrip("-").isdigit():
                return error_code(int(value))
            raise ValueError(f"unknown Kafka error {value!r} (e.g. 'NOT_LEADER_OR_FOLLOWER' or a code)") from None
    raise ValueError(f"a Kafka error is a code or a name, not {value!r}")


def _normalize(spec: dict[str, Any]) -> None:
    spec["api"] = _api_name(spec["api"])
    for key in ("version", "partition"):
        if spec.get(key) is not None and (not isinstance(spec[key], int) or isinstance(spec[key], bool)):
            raise ValueError(f"{key} must be an integer")
    if spec["action"] == "error":
        if "error" not in spec:
            raise ValueError("an error rule needs 'error' (a Kafka error code or name)")
        spec["error"] = error_code(spec["error"])
        if spec["error"] == 0:
            raise ValueError("error 0 (NONE) is not a fault")
    if spec["action"] == "delay":
        delay = spec.get("delay_ms")
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay <= 0:
            raise ValueError("a delay rule needs delay_ms > 0")
    # A partition narrowed by a topic matches that topic's partition only.
    if spec.get("topic") is not None and spec.get("partition") is not None:
        spec["_topic_partition"] = (spec["topic"], spec["partition"])


PROTOCOLS["kafka"] = ProtocolFaults(
    match_keys=("api", "version", "topic", "partition", "client_id", "_topic_partition"),
    actions={"error": ("error",), "delay": ("delay_ms",), "drop": (), "observe": ()},
    normalize=_normalize,
    required_match=("api",),
)


# ------------------------------------------------------------------ describe
_TOPIC_ARRAYS = ("topic_data", "topics", "topic_names")
_PARTITION_ARRAYS = ("partition_data", "partitions", "partition_indexes")
_TOPIC_NAME_FIELDS = ("name", "topic")
_PARTITION_FIELDS = ("index", "partition", "partition_index")


def request_fields(api_key: int, version: int, client_id: str | None, request: Any) -> dict[str, Any]:
    """What a fault rule can match in one request.

    Returns:
        ``{"api", "api_key", "version", "client_id", "topic": {names},
        "partition": {indexes}, "_topic_partition": {(name, index)}}``;
        the topics and partitions are found in the request's topic arrays
        (``topic_data``, ``topics``, ``topic_names``; OffsetFetch v8+ inside
        ``groups``).
    """
    topics: set[str] = set()
    partitions: set[int] = set()
    pairs: set[tuple[str, int]] = set()
    containers = [request]
    groups = getattr(request, "groups", None)
    if isinstance(groups, tuple):
        containers.extend(group for group in groups if dataclasses.is_dataclass(group))
    for container in containers:
        for array_name in _TOPIC_ARRAYS:
            for topic in getattr(container, array_name, None) or ():
                name = topic if isinstance(topic, str) else _first(topic, _TOPIC_NAME_FIELDS)
                if not isinstance(name, str):
                    continue
                topics.add(name)
                if isinstance(topic, str):
                    continue
                for partition_array in _PARTITION_ARRAYS:
                    for partition in getattr(topic, partition_array, None) or ():
                        index = partition if isinstance(partition, int) else _first(partition, _PARTITION_FIELDS)
                        if isinstance(index, int):
                            partitions.add(index)
                            pairs.add((name, index))
    return {
        "api": APIS[api_key].name,
        "api_key": api_key,
        "version": version,
        "client_id": client_id,
        "topic": topics,
        "partition": partitions,
        "_topic_partition": pairs,
    }


def _first(entity: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = getattr(entity, name, None)
        if value is not None:
            return value
    return None


# ------------------------------------------------------------------ answers
#: response array -> the request arrays it answers, element for element
_ARRAY_SOURCES = {
    "responses": ("topic_data", "topics", "topic_names"),
    "partition_responses": ("partition_data",),
    "partitions": ("partitions", "partition_data", "partition_indexes"),
    "topics": ("topics",),
    "results": ("topics", "groups_names", "resources"),
    "coordinators": ("coordinator_keys",),
    "groups": ("groups",),
}
#: response field -> the request fields that identify the same thing
_IDENTITY = {
    "name": ("name", "topic"),
    "topic": ("topic", "name"),
    "topic_id": ("topic_id",),
    "index": ("index", "partition", "partition_index"),
    "partition_index": ("partition_index", "partition", "index"),
    "partition": ("partition", "partition_index", "index"),
    "group_id": ("group_id",),
    "key": ("key",),
    "resource_type": ("resource_type",),
    "resource_name": ("resource_name",),
}
#: what an identifying field is called when the request element is a bare value
_BARE_STR = ("name", "topic", "key", "group_id", "resource_name")
_BARE_INT = ("partition_index", "index", "partition")
#: integer fields Kafka answers with -1 when there is no value (an error)
_MINUS_ONE = frozenset(
    {
        "base_offset", "log_start_offset", "high_watermark", "last_stable_offset", "offset", "timestamp",
        "end_offset", "leader_epoch", "committed_offset", "committed_leader_epoch", "low_watermark", "node_id",
        "leader_id", "preferred_read_replica", "producer_id", "producer_epoch", "generation_id", "port",
    }
)


def error_response(response_cls: type, request: Any, code: int) -> Any:
    """The answer of a broker that refused ``request`` with ``code``.

    Every topic and partition the request named is answered with the error
    code, as are top-level ``error_code`` fields; offsets and ids are -1,
    everything else empty.
    """
    return build(response_cls, **_mirror(response_cls, request, code))


def _mirror(cls: type, source: Any, code: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind, _ in _fields(cls):
        if name == "error_code":
            values[name] = code
            continue
        if isinstance(source, str):
            if name in _BARE_STR:
                values[name] = source
                continue
        elif isinstance(source, int):
            if name in _BARE_INT:
                values[name] = source
                continue
        elif source is not None and name in _IDENTITY:
            value = _first(source, _IDENTITY[name])
            if value is not None:
                values[name] = value
                continue
        element = _array_element(kind)
        if element is not None and name in _ARRAY_SOURCES and source is not None and not isinstance(source, (str, int)):
            items = None
            for source_name in _ARRAY_SOURCES[name]:
                items = getattr(source, source_name, None)
                if items is not None:
                    break
            if items:
                element_cls = field_class(cls, name)
                values[name] = [_mirror(element_cls, item, code) for item in items]
            continue
        if name in _MINUS_ONE and _is_int(kind):
            values[name] = -1
    return values


def _array_element(kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(inner) != 1:
            return None
        kind = inner[0]
        origin = typing.get_origin(kind)
    if origin is tuple:
        element = typing.get_args(kind)[0]
        return element if dataclasses.is_dataclass(element) else None
    return None


def _is_int(kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        return any(_is_int(a) for a in typing.get_args(kind) if a is not type(None))
    return isinstance(kind, type) and issubclass(kind, int) and not issubclass(kind, bool)


def with_topic_errors(response: Any, code: int, topic: str | None) -> Any:
    """A real Metadata answer with ``code`` set on ``topic``'s entry (every topic's when None)."""
    topics = tuple(
        dataclasses.replace(entry, error_code=ErrorCode(code)) if topic is None or entry.name == topic else entry
        for entry in response.topics
    )
    return dataclasses.replace(response, topics=topics)
