"""DescribeProducers (key 61), v0.

Behavior (Kafka 4.0's ReplicaManager.activeProducerState):
- For each requested partition, the idempotent producers the partition
  holds state for: id, epoch, last sequence, the last batch's timestamp;
  coordinator epoch and transaction start offset are -1 (no transactions).
- Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles


def _producer(entry: Any) -> dict[str, Any]:
    batches = getattr(entry, "batches", ())
    return dict(
        producer_id=entry.producer_id,
        producer_epoch=entry.epoch,
        last_sequence=entry.last_seq,
        last_timestamp=int(batches[-1].timestamp) if batches else -1,
        coordinator_epoch=-1,
        current_txn_start_offset=-1,
    )


@handles(61, "DescribeProducers", 0, 0)
def describe_producers(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    results = []
    for item in request.topics:
        topic = topics.get(item.name)
        partitions = []
        for index in item.partition_indexes:
            if topic is None or not 0 <= index < len(topic.partitions):
                partitions.append(dict(partition_index=index, error_code=ErrorCode.unknown_topic_or_partition, error_message=None, active_producers=[]))
                continue
            producers = topic.partitions[index].producers
            partitions.append(
                dict(partition_index=index, error_code=ErrorCode.none, error_message=None, active_producers=[_producer(e) for e in producers.values()])
            )
        results.append(dict(name=item.name, partitions=partitions))
    return ctx.respond(topics=results)
