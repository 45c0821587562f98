"""CreatePartitions (key 37), v0-v3.

Behavior (Kafka 4.0's ReplicationControlManager.createPartitions):
- A name given twice: INVALID_REQUEST "Duplicate topic name.".
- Unknown topic: UNKNOWN_TOPIC_OR_PARTITION.  A count equal to the current
  one: INVALID_PARTITIONS "Topic already has N partition(s)."; lower:
  INVALID_PARTITIONS "The topic x currently has N partition(s); M would not
  be an increase.".
- Assignments, when given, must number the added partitions and name only
  broker 0 with the topic's replication factor (INVALID_REPLICA_ASSIGNMENT).
- validate_only checks everything and adds nothing.
- More than 10000 partitions added by one request (Kafka 4.0's
  MAX_RECORDS_PER_USER_OP): POLICY_VIOLATION "Unable to perform excessively
  large batch operation." for the topic that crosses it.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from .create_topics import MAX_PARTITIONS_PER_REQUEST, _Refused, validate_assignment


@handles(37, "CreatePartitions", 0, 3)
def create_partitions(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    names = [t.name for t in request.topics]
    duplicates = {name for name in names if names.count(name) > 1}
    results = [dict(name=name, error_code=ErrorCode.invalid_request, error_message="Duplicate topic name.") for name in dict.fromkeys(n for n in names if n in duplicates)]
    added = 0
    for item in request.topics:
        if item.name in duplicates:
            continue
        try:
            topic = topics.get(item.name)
            if topic is None:
                raise _Refused(ErrorCode.unknown_topic_or_partition, None)
            current = len(topic.partitions)
            if item.count == current:
                raise _Refused(ErrorCode.invalid_partitions, f"Topic already has {current} partition(s).")
            if item.count < current:
                raise _Refused(ErrorCode.invalid_partitions, f"The topic {item.name} currently has {current} partition(s); {item.count} would not be an increase.")
            additional = item.count - current
            added += additional
            if added > MAX_PARTITIONS_PER_REQUEST:
                raise _Refused(ErrorCode.policy_violation, "Unable to perform excessively large batch operation.")
            if item.assignments is not None:
                if len(item.assignments) != additional:
                    raise _Refused(
                        ErrorCode.invalid_replica_assignment,
                        f"Attempted to add {additional} additional partition(s), but only {len(item.assignments)} assignment(s) were specified.",
                    )
                for assignment in item.assignments:
                    validate_assignment(list(assignment.broker_ids), 1)
            if not request.validate_only:
                topic.add_partitions(item.count)
            results.append(dict(name=item.name, error_code=ErrorCode.none, error_message=None))
        except _Refused as refused:
            results.append(dict(name=item.name, error_code=refused.code, error_message=refused.message))
    return ctx.respond(results=results)
