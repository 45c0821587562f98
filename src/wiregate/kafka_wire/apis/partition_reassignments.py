"""AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46), v0.

Behavior (Kafka 4.0's ReplicationControlManager, one broker):
- No reassignment is ever in progress: a reassignment to ``[1]`` (the
  current replicas) completes at once with NONE; cancelling (null replicas)
  gets NO_REASSIGNMENT_IN_PROGRESS.
- Replicas naming another broker: INVALID_REPLICA_ASSIGNMENT (no such
  broker is registered); an empty list: INVALID_REPLICA_ASSIGNMENT.
- Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION with Kafka's texts.
- ListPartitionReassignments lists nothing, for every topic or the named ones.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from .create_topics import _Refused, validate_assignment


def _alter_one(topics: Any, name: str, target: Any) -> None:
    topic = topics.get(name)
    if topic is None:
        raise _Refused(ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {name}.")
    if not 0 <= target.partition_index < len(topic.partitions):
        raise _Refused(ErrorCode.unknown_topic_or_partition, f"Unable to find partition {name}:{target.partition_index}.")
    if target.replicas is None:
        raise _Refused(ErrorCode.no_reassignment_in_progress, "No partition reassignment is in progress.")
    validate_assignment(list(target.replicas), None)


@handles(45, "AlterPartitionReassignments", 0, 0)
def alter_partition_reassignments(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    responses = []
    for topic in request.topics:
        partitions = []
        for target in topic.partitions:
            try:
                _alter_one(topics, topic.name, target)
                code, message = ErrorCode.none, None
            except _Refused as refused:
                code, message = refused.code, refused.message
            partitions.append(dict(partition_index=target.partition_index, error_code=code, error_message=message))
        responses.append(dict(name=topic.name, partitions=partitions))
    return ctx.respond(error_code=ErrorCode.none, error_message=None, responses=responses)


@handles(46, "ListPartitionReassignments", 0, 0)
def list_partition_reassignments(ctx: Any, request: Any) -> Any:
    return ctx.respond(error_code=ErrorCode.none, error_message=None, topics=[])
