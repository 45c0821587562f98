"""OffsetFetch (key 9), v1-v9.

Behavior:
- v1-v7 ask for one group, v8+ for a batch of groups (KIP-709), each with
  its own error.  A null topic list (v2+) means every committed offset of
  the group.
- A partition without a committed offset answers offset -1, leader epoch
  -1, metadata "" and no error; an unknown group the same for every
  requested partition (no offsets at all for "every topic").  Topics are
  not checked against the topic list, as in Kafka's coordinator.
- ``require_stable`` (v7+) is accepted: without transactional offset
  commits every offset is stable.  ``member_id``/``member_epoch`` (v9) are
  for KIP-848 groups and ignored for classic groups, as Kafka does.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles


def _partition(partition: int, committed: Any) -> dict[str, Any]:
    if committed is None:
        return dict(partition_index=partition, committed_offset=-1, committed_leader_epoch=-1, metadata="", error_code=ErrorCode.none)
    return dict(
        partition_index=partition,
        committed_offset=committed.offset,
        committed_leader_epoch=committed.leader_epoch,
        metadata=committed.metadata,
        error_code=ErrorCode.none,
    )


def fetch_group(broker: Any, group_id: str, topics: Any) -> list[dict[str, Any]]:
    """The topics part of one group's answer; ``topics`` None means all committed."""
    offsets = broker.groups.committed(group_id)
    if topics is None:
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), committed in sorted(offsets.items()):
            by_topic.setdefault(topic, []).append(_partition(partition, committed))
        return [dict(name=name, partitions=partitions) for name, partitions in by_topic.items()]
    return [
        dict(name=t.name, partitions=[_partition(p, offsets.get((t.name, p))) for p in t.partition_indexes])
        for t in topics
    ]


@handles(9, "OffsetFetch", 1, 9)
def offset_fetch(ctx: Any, request: Any) -> Any:
    broker = ctx.broker
    if ctx.api_version >= 8:
        return ctx.respond(
            groups=[
                dict(group_id=g.group_id, topics=fetch_group(broker, g.group_id, g.topics), error_code=ErrorCode.none)
                for g in request.groups
            ]
        )
    return ctx.respond(topics=fetch_group(broker, request.group_id, request.topics), error_code=ErrorCode.none)
