"""OffsetDelete (key 47), v0.

Behavior:
- Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION (checked
  first, as Kafka does).
- Offsets of a topic the group's consumers subscribe to cannot be deleted:
  GROUP_SUBSCRIBED_TO_TOPIC for its partitions.  A group with members that
  is not a consumer group: NON_EMPTY_GROUP; an unknown group:
  GROUP_ID_NOT_FOUND (request-level errors, no topics in the answer).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core.groups import GroupError

from ..registry import handles
from .join_group import error_code


@handles(47, "OffsetDelete", 0, 0)
def offset_delete(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    #: topic -> partition -> answer, in request order (None: the coordinator's to give)
    answers: dict[str, dict[int, ErrorCode | None]] = {}
    valid: list[tuple[str, list[int]]] = []
    for topic in request.topics:
        known = topics.get(topic.name)
        row = answers.setdefault(topic.name, {})
        partitions = []
        for p in topic.partitions:
            if known is None or not 0 <= p.partition_index < len(known.partitions):
                row[p.partition_index] = ErrorCode.unknown_topic_or_partition
            else:
                row[p.partition_index] = None
                partitions.append(p.partition_index)
        if partitions:
            valid.append((topic.name, partitions))
    error, results = ctx.broker.groups.delete_offsets(request.group_id, valid)
    if error is not GroupError.NONE:
        return ctx.respond(error_code=error_code(error), topics=[])
    for (name, partitions), errors in zip(valid, results):
        for partition, outcome in zip(partitions, errors):
            answers[name][partition] = error_code(outcome)
    return ctx.respond(
        error_code=ErrorCode.none,
        topics=[
            dict(name=name, partitions=[dict(partition_index=i, error_code=e) for i, e in row.items()])
            for name, row in answers.items()
        ],
    )
