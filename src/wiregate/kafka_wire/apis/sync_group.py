"""SyncGroup (key 14), v0-v5: the leader's assignment reaches every member.

Behavior:
- A follower's SyncGroup is deferred until the leader's arrives (or a new
  rebalance starts: REBALANCE_IN_PROGRESS); the leader's is answered at
  once.  Members the leader gave nothing get an empty assignment.
- v5: a protocol type or name that differs from the group's is
  INCONSISTENT_GROUP_PROTOCOL; the response carries both.
"""

from __future__ import annotations

from typing import Any

from wiregate.core.groups import SyncResult

from ..registry import handles
from .join_group import error_code


@handles(14, "SyncGroup", 0, 5)
def sync_group(ctx: Any, request: Any) -> Any:
    deferred = ctx.defer()

    def reply(result: SyncResult) -> None:
        deferred.resolve(
            ctx.respond(
                error_code=error_code(result.error),
                protocol_type=result.protocol_type,
                protocol_name=result.protocol_name,
                assignment=result.assignment,
            )
        )

    ctx.broker.groups.sync(
        request.group_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        request.generation_id,
        getattr(request, "protocol_type", None),
        getattr(request, "protocol_name", None),
        {a.member_id: a.assignment for a in request.assignments},
        reply,
    )
    return deferred
