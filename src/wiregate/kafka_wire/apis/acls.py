"""CreateAcls (key 30), DescribeAcls (key 29), DeleteAcls (key 31), v1-v3.

Behavior (Kafka 4.0 with StandardAuthorizer: AclApis and AclControlManager):
- Bindings are stored in the core (``broker.kafka_acls``) and listed and
  matched with Kafka's filter rules: resource type ANY, pattern types ANY
  (any pattern, exact name) and MATCH (literal name, the ``*`` wildcard, and
  prefixed patterns the name starts with), null principal/host/name for any.
- CreateAcls refuses, per binding, with INVALID_REQUEST and Kafka's text:
  resource type UNKNOWN/ANY, pattern type other than LITERAL/PREFIXED,
  operation UNKNOWN/ANY, permission other than ALLOW/DENY, an empty name, a
  principal without a colon, a CLUSTER resource not named ``kafka-cluster``.
  An identical binding is stored once.
- DescribeAcls groups the bindings by resource pattern; a filter with an
  UNKNOWN element gets INVALID_REQUEST.
- DeleteAcls answers each filter with the bindings it removed.
- Bindings are not enforced: every request is authorized.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core import acls as core

from ..registry import handles

CLUSTER_NAME = "kafka-cluster"


def _binding(creation: Any) -> core.AclBinding:
    return core.AclBinding(
        resource_type=creation.resource_type,
        resource_name=creation.resource_name,
        pattern_type=creation.resource_pattern_type,
        principal=creation.principal,
        host=creation.host,
        operation=creation.operation,
        permission_type=creation.permission_type,
    )


def _filter(item: Any) -> core.AclBindingFilter:
    return core.AclBindingFilter(
        resource_type=item.resource_type_filter,
        resource_name=item.resource_name_filter,
        pattern_type=item.pattern_type_filter,
        principal=item.principal_filter,
        host=item.host_filter,
        operation=item.operation,
        permission_type=item.permission_type,
    )


@handles(30, "CreateAcls", 1, 3)
def create_acls(ctx: Any, request: Any) -> Any:
    store = ctx.broker.kafka_acls
    results = []
    for creation in request.creations:
        binding = _binding(creation)
        problem = core.validate_new_binding(binding)
        if problem is None and binding.resource_type == core.CLUSTER and binding.resource_name != CLUSTER_NAME:
            problem = f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        if problem is not None:
            results.append(dict(error_code=ErrorCode.invalid_request, error_message=problem))
            continue
        store.add(binding)
        results.append(dict(error_code=ErrorCode.none, error_message=None))
    return ctx.respond(results=results)


@handles(29, "DescribeAcls", 1, 3)
def describe_acls(ctx: Any, request: Any) -> Any:
    acl_filter = _filter(request)
    problem = acl_filter.unknown_component()
    if problem is not None:
        return ctx.respond(error_code=ErrorCode.invalid_request, error_message=problem, resources=[])
    grouped: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for binding in ctx.broker.kafka_acls.matching(acl_filter):
        key = (binding.resource_type, binding.resource_name, binding.pattern_type)
        grouped.setdefault(key, []).append(
            dict(principal=binding.principal, host=binding.host, operation=binding.operation, permission_type=binding.permission_type)
        )
    resources = [dict(resource_type=t, resource_name=n, pattern_type=p, acls=entries) for (t, n, p), entries in grouped.items()]
    return ctx.respond(error_code=ErrorCode.none, error_message=None, resources=resources)


@handles(31, "DeleteAcls", 1, 3)
def delete_acls(ctx: Any, request: Any) -> Any:
    store = ctx.broker.kafka_acls
    results = []
    for item in request.filters:
        acl_filter = _filter(item)
        problem = acl_filter.unknown_component()
        if problem is not None:
            results.append(dict(error_code=ErrorCode.invalid_request, error_message=problem, matching_acls=[]))
            continue
        removed = store.delete(acl_filter)
        results.append(
            dict(
                error_code=ErrorCode.none,
                error_message=None,
                matching_acls=[
                    dict(
                        error_code=ErrorCode.none,
                        error_message=None,
                        resource_type=b.resource_type,
                        resource_name=b.resource_name,
                        pattern_type=b.pattern_type,
                        principal=b.principal,
                        host=b.host,
                        operation=b.operation,
                        permission_type=b.permission_type,
                    )
                    for b in removed
                ],
            )
        )
    return ctx.respond(filter_results=results)
