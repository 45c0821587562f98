"""DescribeConfigs (key 32), v1-v4.

Behavior (Kafka 4.0's ConfigHelper.describeConfigs):
- Topics (resource type 2): every LogConfig config, sorted by name, with
  its effective value and source (DYNAMIC_TOPIC_CONFIG for an override,
  the broker layer holding a synonym, else DEFAULT_CONFIG).  Unknown topic:
  UNKNOWN_TOPIC_OR_PARTITION; illegal name: INVALID_TOPIC_EXCEPTION.
- Broker (resource type 4): name "0" lists every broker config wiregate
  knows (see ``configs.BROKER_CONFIGS``) plus any set at run time; ""
  lists only the cluster-level dynamic defaults.  Another number:
  INVALID_REQUEST "Unexpected broker id, expected 1 or empty string, but
  received N"; not a number: INVALID_REQUEST.
- Broker loggers (type 8, name "0"): the root logger at INFO.
- ``configuration_keys`` restricts the list; ``include_synonyms`` adds the
  synonym chain; documentation is never included (null).
- Other resource types (GROUP, CLIENT_METRICS): INVALID_REQUEST.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .. import configs
from ..registry import handles
from .metadata import BROKER_ID, topic_name_problem

BROKER_LOGGER_RESOURCE = 8
DYNAMIC_BROKER_LOGGER_CONFIG = 6


def describe_resource(ctx: Any, resource_type: int, name: str, keys: Any, include_synonyms: bool) -> dict[str, Any]:
    """One DescribeConfigsResult as a dict."""
    broker = ctx.broker
    static = configs.static_configs(broker, ctx.connection.advertised)
    result: dict[str, Any] = dict(resource_type=resource_type, resource_name=name, error_code=ErrorCode.none, error_message=None, configs=[])
    if resource_type == configs.TOPIC_RESOURCE:
        problem = topic_name_problem(name)
        if problem is not None:
            return {**result, "error_code": ErrorCode.invalid_topic_exception, "error_message": problem}
        topic = broker.topics.get(name)
        if topic is None:
            return {**result, "error_code": ErrorCode.unknown_topic_or_partition}
        result["configs"] = configs.describe_topic_configs(broker, topic, keys, include_synonyms, static)
    elif resource_type == configs.BROKER_RESOURCE:
        if name:
            error = _broker_id_error(name)
            if error is not None:
                return {**result, "error_code": ErrorCode.invalid_request, "error_message": error}
        result["configs"] = configs.describe_broker_configs(broker, keys, include_synonyms, per_broker=bool(name), static=static)
    elif resource_type == BROKER_LOGGER_RESOURCE:
        error = "Broker id must not be empty" if not name else _broker_id_error(name, logger=True)
        if error is not None:
            return {**result, "error_code": ErrorCode.invalid_request, "error_message": error}
        result["configs"] = [
            dict(name="root", value="INFO", read_only=False, config_source=DYNAMIC_BROKER_LOGGER_CONFIG, is_sensitive=False, synonyms=[], config_type=0, documentation=None)
        ]
    else:
        return {**result, "error_code": ErrorCode.invalid_request, "error_message": f"Unsupported resource type: {resource_type}"}
    return result


def _broker_id_error(name: str, logger: bool = False) -> str | None:
    try:
        broker_id = int(name)
    except ValueError:
        return f"Broker id must be an integer, but it is: {name}"
    if broker_id != BROKER_ID:
        if logger:
            return f"Unexpected broker id, expected {BROKER_ID} but received {name}"
        return f"Unexpected broker id, expected {BROKER_ID} or empty string, but received {name}"
    return None


@handles(32, "DescribeConfigs", 1, 4)
def describe_configs(ctx: Any, request: Any) -> Any:
    include_synonyms = bool(getattr(request, "include_synonyms", False))
    results = [describe_resource(ctx, r.resource_type, r.resource_name, r.configuration_keys, include_synonyms) for r in request.resources]
    return ctx.respond(results=results)
