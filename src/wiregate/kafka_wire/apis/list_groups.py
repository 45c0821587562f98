"""ListGroups (key 16), v0-v5.

Behavior:
- Every group of the broker, with its protocol type ("" for a simple group
  made by offset commits), its state (v4+) and type "classic" (v5+).
- ``states_filter`` (v4+, KIP-518) and ``types_filter`` (v5+) match
  case-insensitively; empty filters match everything.
"""

from __future__ import annotations

from typing import Any

from ..registry import handles


@handles(16, "ListGroups", 0, 5)
def list_groups(ctx: Any, request: Any) -> Any:
    groups = ctx.broker.groups.list_groups(getattr(request, "states_filter", ()), getattr(request, "types_filter", ()))
    return ctx.respond(
        groups=[
            dict(group_id=g.group_id, protocol_type=g.protocol_type or "", group_state=g.state.value, group_type="classic")
            for g in groups
        ]
    )
