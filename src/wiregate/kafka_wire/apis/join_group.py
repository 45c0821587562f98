"""JoinGroup (key 11), v2-v9: the classic group protocol's first phase.

Behavior:
- The group coordinator in ``wiregate.core.groups`` does the work; this
  module turns the request into a :class:`~wiregate.core.groups.JoinRequest`
  and the (possibly later) result into the response.  The response is
  deferred until the join phase completes (every known member rejoined, or
  the rebalance timeout passed), so one parked JoinGroup holds back only the
  later responses of its own connection.
- v4+: a member without an id gets MEMBER_ID_REQUIRED with a new id first
  (KIP-394); v9+: a static leader rejoining a Stable group may skip the
  assignment (KIP-814).
- The initial rebalance delay is the broker config
  ``group.initial.rebalance.delay.ms`` (Kafka's default 3000 ms).
- The member's client host is shown as Kafka shows it: ``/`` + address.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core.groups import GroupError, JoinRequest, JoinResult

from ..registry import handles


def error_code(error: GroupError) -> ErrorCode:
    """The Kafka error code of a group coordinator outcome (the names are Kafka's)."""
    return ErrorCode[error.name.lower()]


def milliseconds(value: Any) -> int:
    """A kio duration field as integer milliseconds."""
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(milliseconds=1)
    return int(value)


def client_host(ctx: Any) -> str:
    """Kafka's ``InetAddress.toString()`` of the peer: ``/127.0.0.1``."""
    peer = ctx.connection.peer
    host = peer.rsplit(":", 1)[0] if peer else ""
    return "/" + host.strip("[]")


@handles(11, "JoinGroup", 2, 9)
def join_group(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    join = JoinRequest(
        group_id=request.group_id,
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.client_id or "",
        client_host=client_host(ctx),
        session_timeout_ms=milliseconds(request.session_timeout),
        rebalance_timeout_ms=milliseconds(request.rebalance_timeout),
        protocol_type=request.protocol_type,
        protocols=tuple((p.name, p.metadata) for p in request.protocols),
        require_known_member_id=version >= 4,
        supports_skip_assignment=version >= 9,
    )
    deferred = ctx.defer()

    def reply(result: JoinResult) -> None:
        deferred.resolve(
            ctx.respond(
                error_code=error_code(result.error),
                generation_id=result.generation_id,
                protocol_type=result.protocol_type,
                protocol_name=result.protocol_name if version >= 7 else result.protocol_name or "",
                leader=result.leader,
                skip_assignment=result.skip_assignment,
                member_id=result.member_id,
                members=[
                    dict(member_id=m.member_id, group_instance_id=m.group_instance_id, metadata=m.metadata)
                    for m in result.members
                ],
            )
        )

    ctx.broker.groups.join(join, reply)
    return deferred
