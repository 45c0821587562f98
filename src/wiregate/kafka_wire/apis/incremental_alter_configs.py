"""IncrementalAlterConfigs (key 44), v0-v1.

Behavior (Kafka 4.0's ConfigAdminManager.preprocess, then the controller's
incrementalAlterConfigs):
- SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) apply to the resource's
  overrides in request order.  APPEND/SUBTRACT on a config whose type is
  not LIST: INVALID_CONFIG "Can't APPEND to key x because its type is not
  LIST." (topics) or "Config value append is not allowed for config key: x"
  (brokers); an unknown operation: INVALID_REQUEST.
- A null value is allowed only for DELETE (else INVALID_REQUEST).
- Otherwise as AlterConfigs: the same resource and validation rules, the
  same texts, validate_only.
- BROKER_LOGGER (type 8) changes are accepted and ignored.
"""

from __future__ import annotations

from typing import Any, Mapping

from kio.schema.errors import ErrorCode

from .. import configs
from ..registry import handles
from .alter_configs import alter_resource, duplicate_resources
from .describe_configs import BROKER_LOGGER_RESOURCE

_VERB = {configs.APPEND: "append", configs.SUBTRACT: "subtract"}


def _broker_list_checks(operations: list[tuple[str, int, str | None]]) -> None:
    # ConfigAdminManager.prepareIncrementalConfigs
    for name, operation, _ in operations:
        if operation in _VERB:
            definition = configs.BROKER_CONFIGS.get(name)
            if definition is None:
                raise configs.ConfigError(f"Unknown config name: {name}")
            if definition.type != "LIST":
                raise configs.ConfigError(f"Config value {_VERB[operation]} is not allowed for config key: {name}")


@handles(44, "IncrementalAlterConfigs", 0, 1)
def incremental_alter_configs(ctx: Any, request: Any) -> Any:
    duplicates = duplicate_resources(request.resources)
    responses = []
    for resource in request.resources:
        key = (resource.resource_type, resource.resource_name)
        operations = [(c.name, c.config_operation, c.value) for c in resource.configs]
        if key in duplicates:
            code, message = ErrorCode.invalid_request, "Each resource must appear at most once."
        elif resource.resource_type == BROKER_LOGGER_RESOURCE:
            code, message = ErrorCode.none, None
        else:
            code, message = _alter(ctx.broker, resource, operations, request.validate_only)
        responses.append(dict(error_code=code, error_message=message, resource_type=resource.resource_type, resource_name=resource.resource_name))
    return ctx.respond(responses=responses)


def _alter(broker: Any, resource: Any, operations: list[tuple[str, int, str | None]], validate_only: bool) -> tuple[ErrorCode, str | None]:
    unknown = [op for _, op, _ in operations if op not in configs.OPERATION_NAMES]
    if unknown:
        return ErrorCode.invalid_request, f"Unknown operations type {unknown[0]}"
    definitions = configs.TOPIC_CONFIGS if resource.resource_type == configs.TOPIC_RESOURCE else configs.BROKER_CONFIGS
    if resource.resource_type == configs.BROKER_RESOURCE:
        try:
            _broker_list_checks(operations)
        except configs.ConfigError as error:
            return ErrorCode(error.code), error.message

    def compute(current: Mapping[str, str]) -> dict[str, str | None]:
        return configs.apply_incremental(current, operations, definitions)

    return alter_resource(
        broker,
        resource.resource_type,
        resource.resource_name,
        [name for name, _, _ in operations],
        [name for name, op, value in operations if value is None and op != configs.DELETE],
        compute,
        validate_only,
    )
