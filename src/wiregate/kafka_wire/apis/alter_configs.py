"""AlterConfigs (key 33), v0-v2: the legacy API that replaces a resource's whole set.

Behavior (Kafka 4.0's ConfigAdminManager.preprocess, then the controller's
legacyAlterConfigs):
- A resource given twice: INVALID_REQUEST "Each resource must appear at most
  once." for both; a config name given twice: INVALID_REQUEST "Error due to
  duplicate config keys"; a null value: INVALID_REQUEST.
- Topics: the given configs become the topic's overrides (the others are
  deleted), validated as CreateTopics does (INVALID_CONFIG); then
  UNKNOWN_TOPIC_OR_PARTITION "The topic 'x' does not exist." for a missing
  topic; "" is INVALID_REQUEST "Default topic resources are not allowed.".
- Broker "0" (per broker) or "" (cluster default): the dynamic configs of
  that level are replaced; read-only configs are refused with INVALID_REQUEST
  "Cannot update these configs dynamically: Set(...)"; names wiregate does
  not know are stored, as Kafka stores unknown dynamic configs.
- validate_only checks everything and changes nothing.
- Other resource types: INVALID_REQUEST "Unknown resource type N".
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from kio.schema.errors import ErrorCode

from .. import configs
from ..registry import handles
from .metadata import BROKER_ID, topic_name_problem


def current_overrides(broker: Any, resource_type: int, name: str) -> dict[str, str]:
    """The resource's overrides now (topic configs or a broker level's dynamic configs)."""
    if resource_type == configs.TOPIC_RESOURCE:
        topic = broker.topics.get(name)
        return dict(topic.configs) if topic is not None else {}
    return dict(_broker_level(broker, name))


def _broker_level(broker: Any, name: str) -> dict[str, str]:
    return broker.kafka_dynamic_broker_configs if name else broker.kafka_dynamic_default_configs


def alter_resource(
    broker: Any,
    resource_type: int,
    name: str,
    config_names: list[str],
    null_names: list[str],
    compute: Callable[[Mapping[str, str]], dict[str, str | None]],
    validate_only: bool,
) -> tuple[ErrorCode, str | None]:
    """Check and apply one resource's change; ``compute`` maps the current overrides to the new ones."""
    if len(set(config_names)) != len(config_names):
        return ErrorCode.invalid_request, "Error due to duplicate config keys"
    if null_names:
        return ErrorCode.invalid_request, "Null value not supported for : " + ", ".join(null_names)
    try:
        if resource_type == configs.TOPIC_RESOURCE:
            if not name:
                return ErrorCode.invalid_request, "Default topic resources are not allowed."
            problem = topic_name_problem(name)
            if problem is not None:
                return ErrorCode.invalid_topic_exception, problem
            new = compute(current_overrides(broker, resource_type, name))
            configs.validate_topic_configs(new)
            topic = broker.topics.get(name)
            if topic is None:
                return ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist."
            if not validate_only:
                topic.set_configs(new)
        elif resource_type == configs.BROKER_RESOURCE:
            if name:
                try:
                    broker_id = int(name)
                except ValueError:
                    return ErrorCode.invalid_request, f"Node id must be an integer, but it is: {name}"
                if broker_id != BROKER_ID:
                    return ErrorCode.invalid_request, f"Unexpected broker id, expected {BROKER_ID}, but received {name}"
            new = compute(current_overrides(broker, resource_type, name))
            configs.validate_broker_change(new, per_broker=bool(name))
            if not validate_only:
                level = _broker_level(broker, name)
                level.clear()
                level.update({k: v for k, v in new.items() if v is not None})
        else:
            return ErrorCode.invalid_request, f"Unknown resource type {resource_type}"
    except configs.ConfigError as error:
        return ErrorCode(error.code), error.message
    return ErrorCode.none, None


def duplicate_resources(resources: Any) -> set[tuple[int, str]]:
    keys = [(r.resource_type, r.resource_name) for r in resources]
    return {key for key in keys if keys.count(key) > 1}


@handles(33, "AlterConfigs", 0, 2)
def alter_configs(ctx: Any, request: Any) -> Any:
    duplicates = duplicate_resources(request.resources)
    responses = []
    for resource in request.resources:
        key = (resource.resource_type, resource.resource_name)
        if key in duplicates:
            code, message = ErrorCode.invalid_request, "Each resource must appear at most once."
        else:
            given = {c.name: c.value for c in resource.configs}
            code, message = alter_resource(
                ctx.broker,
                resource.resource_type,
                resource.resource_name,
                [c.name for c in resource.configs],
                [c.name for c in resource.configs if c.value is None],
                lambda current, given=given: dict(given),
                request.validate_only,
            )
        responses.append(dict(error_code=code, error_message=message, resource_type=resource.resource_type, resource_name=resource.resource_name))
    return ctx.respond(responses=responses)
