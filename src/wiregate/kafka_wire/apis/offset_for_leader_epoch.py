"""OffsetForLeaderEpoch (key 23), v2-v4.

Behavior:
- Every partition has had one leader, with epoch 0, since it was created:
  asking for epoch 0 answers epoch 0 and the high watermark as its end
  offset, which is what librdkafka and the Java client check their
  position against after a reset or a leader change.
- A requested epoch newer than the partition's, or -1, answers epoch -1
  and end offset -1 (Kafka's UNDEFINED_EPOCH_OFFSET).
- FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for a stale / future
  ``current_leader_epoch``; UNKNOWN_TOPIC_OR_PARTITION for a missing topic
  or partition.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles


def _end_offset(topic: Any, request_partition: Any) -> dict[str, Any]:
    index = request_partition.partition
    if topic is None or index < 0 or index >= len(topic.partitions):
        return dict(partition=index, error_code=ErrorCode.unknown_topic_or_partition, leader_epoch=-1, end_offset=-1)
    partition = topic.partitions[index]
    current = request_partition.current_leader_epoch
    if 0 <= current != partition.leader_epoch:
        code = ErrorCode.fenced_leader_epoch if current < partition.leader_epoch else ErrorCode.unknown_leader_epoch
        return dict(partition=index, error_code=code, leader_epoch=-1, end_offset=-1)
    if not 0 <= request_partition.leader_epoch <= partition.leader_epoch:
        return dict(partition=index, error_code=ErrorCode.none, leader_epoch=-1, end_offset=-1)
    return dict(partition=index, error_code=ErrorCode.none, leader_epoch=partition.leader_epoch, end_offset=partition.high_watermark)


@handles(23, "OffsetForLeaderEpoch", 2, 4)
def offset_for_leader_epoch(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    results = []
    for item in request.topics:
        topic = topics.get(item.topic)
        results.append(dict(topic=item.topic, partitions=[_end_offset(topic, p) for p in item.partitions]))
    return ctx.respond(topics=results)
