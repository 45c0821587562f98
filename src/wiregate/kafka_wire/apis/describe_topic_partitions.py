"""DescribeTopicPartitions (key 75), v0.

Behavior (Kafka 4.0's DescribeTopicPartitionsRequestHandler):
- Topics named in the request (all topics when the list is empty), sorted
  by name, each with its partitions (leader 1, replicas and ISR [1], null
  ELR lists) and every topic operation as authorized.
- Unknown topics: UNKNOWN_TOPIC_OR_PARTITION with a zero topic id.
- ``response_partition_limit`` caps the partitions answered; when it cuts
  the listing short, ``next_cursor`` names the topic and partition to resume
  from.  A cursor starts the listing at its topic and partition; a cursor
  topic missing from a non-empty request list is INVALID_REQUEST for every
  topic.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from .metadata import BROKER_ID, INTERNAL_TOPICS, TOPIC_AUTHORIZED_OPERATIONS

DEFAULT_PARTITION_LIMIT = 2000


@handles(75, "DescribeTopicPartitions", 0, 0)
def describe_topic_partitions(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    cursor = request.cursor
    requested = sorted({t.name for t in request.topics})
    if cursor is not None and requested and cursor.topic_name not in requested:
        # Kafka fails the whole request (InvalidRequestException): every topic gets the error
        return ctx.respond(
            topics=[dict(error_code=ErrorCode.invalid_request, name=n, topic_id=uuid.UUID(int=0), is_internal=False, partitions=[]) for n in requested],
            next_cursor=None,
        )
    names = requested or sorted(topics.by_name)
    if cursor is not None:
        names = [n for n in names if n >= cursor.topic_name]
    remaining = request.response_partition_limit if request.response_partition_limit > 0 else DEFAULT_PARTITION_LIMIT
    results: list[dict[str, Any]] = []
    next_cursor = None
    for name in names:
        topic = topics.get(name)
        if topic is None:
            results.append(dict(error_code=ErrorCode.unknown_topic_or_partition, name=name, topic_id=uuid.UUID(int=0), is_internal=False, partitions=[]))
            continue
        if remaining == 0:
            next_cursor = dict(topic_name=name, partition_index=0)
            break
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        end = min(len(topic.partitions), start + remaining)
        partitions = [
            dict(
                error_code=ErrorCode.none,
                partition_index=p.index,
                leader_id=BROKER_ID,
                leader_epoch=p.leader_epoch,
                replica_nodes=[BROKER_ID],
                isr_nodes=[BROKER_ID],
                # ELR is off by default in Kafka 4.0 (KIP-966): the fields stay null
                eligible_leader_replicas=None,
                last_known_elr=None,
                offline_replicas=[],
            )
            for p in topic.partitions[start:end]
        ]
        remaining -= len(partitions)
        results.append(
            dict(
                error_code=ErrorCode.none,
                name=name,
                topic_id=topic.id,
                is_internal=name in INTERNAL_TOPICS,
                partitions=partitions,
                topic_authorized_operations=TOPIC_AUTHORIZED_OPERATIONS,
            )
        )
        if end < len(topic.partitions):
            next_cursor = dict(topic_name=name, partition_index=end)
            break
    return ctx.respond(topics=results, next_cursor=next_cursor)
