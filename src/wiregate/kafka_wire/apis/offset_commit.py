"""OffsetCommit (key 8), v2-v9.

Behavior:
- Partitions of unknown topics, or beyond a topic's partitions, get
  UNKNOWN_TOPIC_OR_PARTITION and are not stored (Kafka checks its metadata
  cache first); the rest go to the group coordinator.
- Group checks are Kafka's classic ones: a member of the current generation
  commits in Stable or PreparingRebalance; CompletingRebalance answers
  REBALANCE_IN_PROGRESS; a wrong generation ILLEGAL_GENERATION; an unknown
  member UNKNOWN_MEMBER_ID; a replaced static member FENCED_INSTANCE_ID.
  Generation -1 without a member id is a commit from outside group
  management, accepted while the group has no members (and creating a
  simple group if there is none).  A commit with a generation to a group
  that does not exist: ILLEGAL_GENERATION, GROUP_ID_NOT_FOUND from v9.
- Metadata is kept as sent (null becomes ""); longer than
  ``offset.metadata.max.bytes`` (4096) is OFFSET_METADATA_TOO_LARGE.
- ``retention_time`` (v2-v4) is ignored: offsets do not expire.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core.groups import GroupError, OffsetCommit

from ..registry import handles
from .join_group import error_code


@handles(8, "OffsetCommit", 2, 9)
def offset_commit(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    #: per request partition: an error decided here, or None for the coordinator to decide
    decided: list[list[ErrorCode | None]] = []
    commits: list[OffsetCommit] = []
    for topic in request.topics:
        known = topics.get(topic.name)
        row: list[ErrorCode | None] = []
        for partition in topic.partitions:
            if known is None or not 0 <= partition.partition_index < len(known.partitions):
                row.append(ErrorCode.unknown_topic_or_partition)
                continue
            row.append(None)
            commits.append(
                OffsetCommit(
                    topic.name,
                    partition.partition_index,
                    partition.committed_offset,
                    getattr(partition, "committed_leader_epoch", -1),
                    partition.committed_metadata,
                )
            )
        decided.append(row)
    outcomes: list[GroupError] = []
    mark = ctx.durable_mark()
    if commits:
        outcomes = ctx.broker.groups.commit_offsets(
            request.group_id,
            request.member_id,
            getattr(request, "group_instance_id", None),
            request.generation_id_or_member_epoch,
            commits,
            missing_group_error=GroupError.GROUP_ID_NOT_FOUND if ctx.api_version >= 9 else GroupError.ILLEGAL_GENERATION,
        )
    results = iter(outcomes)
    # answered once the offsets are durable (--fsync), as Kafka answers once
    # __consumer_offsets has them
    return ctx.when_durable(mark, ctx.respond(
        topics=[
            dict(
                name=topic.name,
                partitions=[
                    dict(partition_index=p.partition_index, error_code=error if error is not None else error_code(next(results)))
                    for p, error in zip(topic.partitions, row)
                ],
            )
            for topic, row in zip(request.topics, decided)
        ]
    ))
