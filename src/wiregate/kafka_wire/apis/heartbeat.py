"""Heartbeat (key 12), v0-v4.

Behavior:
- Resets the member's session timer.  REBALANCE_IN_PROGRESS while the group
  prepares a rebalance (the member must rejoin), ILLEGAL_GENERATION for an
  old generation, UNKNOWN_MEMBER_ID for a member (or group) the coordinator
  does not know, FENCED_INSTANCE_ID for a static member replaced by a newer
  instance.
"""

from __future__ import annotations

from typing import Any

from ..registry import handles
from .join_group import error_code


@handles(12, "Heartbeat", 0, 4)
def heartbeat(ctx: Any, request: Any) -> Any:
    error = ctx.broker.groups.heartbeat(
        request.group_id,
        request.member_id,
        getattr(request, "group_instance_id", None),
        request.generation_id,
    )
    return ctx.respond(error_code=error_code(error))
