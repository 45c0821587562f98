"""LeaveGroup (key 13), v0-v5.

Behavior:
- v0-v2 name one member; v3+ a batch of members with instance ids (KIP-345),
  each answered on its own.  A static member can be removed by instance id
  with an empty member id (admin removal).
- Before v3 the response carries only one error code: the request-level one,
  else the member's (Kafka's LeaveGroupResponse does the same folding).
- An unknown group answers each member UNKNOWN_MEMBER_ID.
"""

from __future__ import annotations

from typing import Any

from wiregate.core.groups import GroupError

from ..registry import handles
from .join_group import error_code


@handles(13, "LeaveGroup", 0, 5)
def leave_group(ctx: Any, request: Any) -> Any:
    if ctx.api_version < 3:
        members = [(request.member_id, None)]
    else:
        members = [(m.member_id, m.group_instance_id) for m in request.members]
    error, results = ctx.broker.groups.leave(request.group_id, members)
    if ctx.api_version < 3:
        if error is GroupError.NONE:
            error = next((r.error for r in results if r.error is not GroupError.NONE), GroupError.NONE)
        return ctx.respond(error_code=error_code(error))
    return ctx.respond(
        error_code=error_code(error),
        members=[
            dict(member_id=r.member_id, group_instance_id=r.group_instance_id, error_code=error_code(r.error))
            for r in results
        ],
    )
