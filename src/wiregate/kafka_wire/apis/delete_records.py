"""DeleteRecords (key 21), v0-v2.

Behavior:
- Moves the partition's log start offset up to the requested offset; -1
  means the high watermark.  An offset below the current start changes
  nothing.  Batches wholly before the new start are dropped; one that
  straddles it stays (fetches return it whole, clients skip the deleted
  records), as Kafka keeps a segment holding the new start.
- POLICY_VIOLATION for a topic whose ``cleanup.policy`` lacks ``delete``
  (a compacted topic), checked first, as Kafka's
  ``Partition.deleteRecordsOnLeader`` does; OFFSET_OUT_OF_RANGE for an
  offset above the high watermark or below -1; UNKNOWN_TOPIC_OR_PARTITION
  for a missing topic or partition.
- ``low_watermark`` is the log start offset after the deletion (-1 on
  errors).  The timeout is ignored: there are no replicas to wait for.
- Idempotent producer state is kept, as Kafka keeps it.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from ..retention import ensure_cleaner, log_policy


def _delete(broker: Any, topic: Any, index: int, offset: int) -> dict[str, Any]:
    if topic is None or index < 0 or index >= len(topic.partitions):
        return dict(partition_index=index, low_watermark=-1, error_code=ErrorCode.unknown_topic_or_partition)
    partition = topic.partitions[index]
    if not log_policy(broker, topic).delete:
        return dict(partition_index=index, low_watermark=-1, error_code=ErrorCode.policy_violation)
    if offset == -1:
        offset = partition.high_watermark
    if offset < 0 or offset > partition.high_watermark:
        return dict(partition_index=index, low_watermark=-1, error_code=ErrorCode.offset_out_of_range)
    return dict(partition_index=index, low_watermark=partition.delete_records(offset), error_code=ErrorCode.none)


@handles(21, "DeleteRecords", 0, 2)
def delete_records(ctx: Any, request: Any) -> Any:
    ensure_cleaner(ctx.broker)
    topics = ctx.broker.topics
    results = []
    for item in request.topics:
        topic = topics.get(item.name)
        results.append(dict(name=item.name, partitions=[_delete(ctx.broker, topic, p.partition_index, p.offset) for p in item.partitions]))
    return ctx.respond(topics=results)
