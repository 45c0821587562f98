"""DescribeGroups (key 15), v0-v5.

Behavior:
- State names are Kafka's ("Empty", "PreparingRebalance",
  "CompletingRebalance", "Stable", "Dead").  A group that does not exist is
  described as Kafka does before v6: state "Dead", no error, no members.
- Members carry their client id, ``/host``, instance id (v4+) and
  assignment; their metadata and the protocol name only in a Stable group.
- v3+ with ``include_authorized_operations``: every group operation is
  allowed (no authorizer): READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS,
  ALTER_CONFIGS; otherwise Kafka's "not requested" value, INT32_MIN.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core.groups import GroupState

from ..registry import handles

NOT_REQUESTED = -2147483648
#: AclOperation codes READ 3, DELETE 6, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11
GROUP_OPERATIONS = sum(1 << op for op in (3, 6, 8, 10, 11))


def describe(group: Any) -> dict[str, Any]:
    if group is None:
        return dict(group_state=GroupState.DEAD.value, protocol_type="", protocol_data="", members=[])
    stable = group.state is GroupState.STABLE
    return dict(
        group_state=group.state.value,
        protocol_type=group.protocol_type or "",
        protocol_data=group.protocol_name if stable else "",
        members=[
            dict(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                member_metadata=m.metadata(group.protocol_name) if stable else b"",
                member_assignment=m.assignment,
            )
            for m in group.members.values()
        ],
    )


@handles(15, "DescribeGroups", 0, 5)
def describe_groups(ctx: Any, request: Any) -> Any:
    operations = GROUP_OPERATIONS if getattr(request, "include_authorized_operations", False) else NOT_REQUESTED
    groups = ctx.broker.groups
    return ctx.respond(
        groups=[
            dict(error_code=ErrorCode.none, group_id=group_id, authorized_operations=operations, **describe(groups.get(group_id)))
            for group_id in request.groups
        ]
    )
