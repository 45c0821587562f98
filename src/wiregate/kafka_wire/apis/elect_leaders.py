"""ElectLeaders (key 43), v0-v2.

Behavior (Kafka 4.0's ReplicationControlManager.electLeaders, one broker):
- Every partition already has its preferred leader (broker 0), so a named
  partition gets ELECTION_NOT_NEEDED "Leader election not needed for topic
  partition." for both PREFERRED (0) and UNCLEAN (1) elections.
- Unknown topic: UNKNOWN_TOPIC_OR_PARTITION "No such topic as x"; unknown
  partition: "No such partition as x-N".
- A null partition list means every partition; partitions that need no
  election are then left out, so each topic is listed with no results.
- An election type other than 0 or 1: INVALID_REQUEST for the whole request.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles

NOT_NEEDED = "Leader election not needed for topic partition."


@handles(43, "ElectLeaders", 0, 2)
def elect_leaders(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    election_type = getattr(request, "election_type", 0)
    if election_type not in (0, 1):
        return ctx.respond(error_code=ErrorCode.invalid_request, replica_election_results=[])
    if request.topic_partitions is None:
        results = [dict(topic=name, partition_result=[]) for name in topics.by_name]
        return ctx.respond(error_code=ErrorCode.none, replica_election_results=results)
    results = []
    for item in request.topic_partitions:
        topic = topics.get(item.topic)
        partition_results = []
        for index in item.partitions:
            if topic is None:
                code, message = ErrorCode.unknown_topic_or_partition, f"No such topic as {item.topic}"
            elif not 0 <= index < len(topic.partitions):
                code, message = ErrorCode.unknown_topic_or_partition, f"No such partition as {item.topic}-{index}"
            else:
                code, message = ErrorCode.election_not_needed, NOT_NEEDED
            partition_results.append(dict(partition_id=index, error_code=code, error_message=message))
        results.append(dict(topic=item.topic, partition_result=partition_results))
    return ctx.respond(error_code=ErrorCode.none, replica_election_results=results)
