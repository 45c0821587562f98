"""DeleteGroups (key 42), v0-v2.

Behavior:
- An Empty group is deleted with its committed offsets; a group with
  members gets NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from ..registry import handles
from .join_group import error_code


@handles(42, "DeleteGroups", 0, 2)
def delete_groups(ctx: Any, request: Any) -> Any:
    results = ctx.broker.groups.delete_groups(request.groups_names)
    return ctx.respond(results=[dict(group_id=group_id, error_code=error_code(error)) for group_id, error in results])
