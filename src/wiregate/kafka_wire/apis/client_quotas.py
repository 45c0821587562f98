"""DescribeClientQuotas (key 48) and AlterClientQuotas (key 49), v0-v1.

Behavior (Kafka 4.0's ClientQuotaControlManager):
- Quotas are stored per entity (``broker.kafka_client_quotas``), an entity
  being a set of (type, name) with types ``user``, ``client-id`` and ``ip``
  and a null name for the default entity.  They are stored, not enforced.
- AlterClientQuotas checks, with INVALID_REQUEST and Kafka's texts: an
  empty entity, an unknown entity type, ``ip`` combined with another type,
  a key not valid for the entity, a value not above 0, a fractional value
  for an integer quota.  ``remove`` deletes a key; validate_only changes
  nothing.
- DescribeClientQuotas matches components EXACT (a name; null is the
  default entity), DEFAULT and SPECIFIED (any non-default name); with
  ``strict`` the entity must have no other types.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles

USER, CLIENT_ID, IP = "user", "client-id", "ip"
EXACT, DEFAULT, SPECIFIED = 0, 1, 2

#: QuotaConfig's keys and their ConfigDef types
_USER_CLIENT_KEYS = {
    "producer_byte_rate": "LONG",
    "consumer_byte_rate": "LONG",
    "request_percentage": "DOUBLE",
    "controller_mutation_rate": "DOUBLE",
}
_IP_KEYS = {"connection_creation_rate": "INT"}
_LIMITS = {"INT": 2**31 - 1, "LONG": 2**63 - 1}

Entity = tuple[tuple[str, "str | None"], ...]


class _Invalid(Exception):
    pass


def _entity(entity_data: Any) -> Entity:
    entity: dict[str, str | None] = {}
    for item in entity_data:
        # AlterClientQuotasRequest.entries() builds a map: a repeated type keeps the last name
        entity[item.entity_type] = item.entity_name
    if not entity:
        raise _Invalid("Invalid empty client quota entity")
    for kind in entity:
        if kind not in (USER, CLIENT_ID, IP):
            raise _Invalid(f"Unhandled client quota entity type: {kind}")
    if IP in entity and len(entity) > 1:
        raise _Invalid("Invalid quota entity combination, IP entity should not be combined with User or ClientId")
    if IP in entity and entity[IP] is not None:
        try:
            ipaddress.ip_address(entity[IP])
        except ValueError:
            raise _Invalid(f"{entity[IP]} is not a valid IP or resolvable host.") from None
    return tuple(sorted(entity.items()))


def _check_value(keys: dict[str, str], key: str, value: float) -> None:
    kind = keys.get(key)
    if kind is None:
        raise _Invalid(f"Invalid configuration key {key}")
    if value <= 0.0:
        raise _Invalid(f"Quota {key} must be greater than 0")
    if kind in _LIMITS:
        article = "an" if kind == "INT" else "a"
        if value > _LIMITS[kind]:
            raise _Invalid(f"Proposed value for {key} is too large for {article} {kind}.")
        if value != int(value):
            raise _Invalid(f"Proposed value for {key} is not {article} {kind}.")


@handles(49, "AlterClientQuotas", 0, 1)
def alter_client_quotas(ctx: Any, request: Any) -> Any:
    store = ctx.broker.kafka_client_quotas
    results = []
    for entry in request.entries:
        echoed = [dict(entity_type=e.entity_type, entity_name=e.entity_name) for e in entry.entity]
        try:
            entity = _entity(entry.entity)
            keys = _IP_KEYS if dict(entity).keys() == {IP} else _USER_CLIENT_KEYS
            for op in entry.ops:
                if op.remove:
                    if op.key not in keys:
                        raise _Invalid(f"Invalid configuration key {op.key}")
                else:
                    _check_value(keys, op.key, op.value)
        except _Invalid as invalid:
            results.append(dict(error_code=ErrorCode.invalid_request, error_message=str(invalid), entity=echoed))
            continue
        if not request.validate_only:
            values = dict(store.get(entity, {}))
            for op in entry.ops:
                if op.remove:
                    values.pop(op.key, None)
                else:
                    values[op.key] = op.value
            if values:
                store[entity] = values
            else:
                store.pop(entity, None)
        results.append(dict(error_code=ErrorCode.none, error_message=None, entity=echoed))
    return ctx.respond(entries=results)


def _matches(entity: Entity, components: list[Any], strict: bool) -> bool:
    names = dict(entity)
    for component in components:
        if component.entity_type not in names:
            return False
        name = names[component.entity_type]
        if component.match_type == EXACT and name != component.match:
            return False
        if component.match_type == DEFAULT and name is not None:
            return False
        if component.match_type == SPECIFIED and name is None:
            return False
    return not strict or len(names) == len(components)


@handles(48, "DescribeClientQuotas", 0, 1)
def describe_client_quotas(ctx: Any, request: Any) -> Any:
    components = list(request.components)
    types = [c.entity_type for c in components]
    problem = None
    if len(set(types)) != len(types):
        problem = "Duplicate entity type in filter"
    elif IP in types and len(types) > 1:
        problem = "Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component."
    elif any(c.match_type not in (EXACT, DEFAULT, SPECIFIED) for c in components):
        problem = "Unknown match type"
    if problem is not None:
        return ctx.respond(error_code=ErrorCode.invalid_request, error_message=problem, entries=None)
    entries = [
        dict(
            entity=[dict(entity_type=kind, entity_name=name) for kind, name in entity],
            values=[dict(key=key, value=value) for key, value in sorted(values.items())],
        )
        for entity, values in ctx.broker.kafka_client_quotas.items()
        if _matches(entity, components, request.strict)
    ]
    return ctx.respond(error_code=ErrorCode.none, error_message=None, entries=entries)
