"""DescribeQuorum (key 55), v0-v2.

Behavior (Kafka 4.0 in combined mode: node 0 is the only voter and leader):
- The metadata log ``__cluster_metadata`` partition 0: leader 1, epoch 1,
  the high watermark counts wiregate's metadata changes (one per topic
  created), one voter (node 0, caught up now), no observers; v2 lists
  node 0's CONTROLLER listener at the advertised address.
- Any other topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from .metadata import BROKER_ID

METADATA_TOPIC = "__cluster_metadata"
#: the voter's directory id (KIP-853); fixed, as the one voter never moves
DIRECTORY_ID = uuid.UUID("5d3b8c3e-8f0e-4a43-9a25-7c3c9f0a2b11")


@handles(55, "DescribeQuorum", 0, 2)
def describe_quorum(ctx: Any, request: Any) -> Any:
    requested = [(t.topic_name, p.partition_index) for t in request.topics for p in t.partitions]
    if requested != [(METADATA_TOPIC, 0)]:
        return ctx.respond(
            error_code=ErrorCode.none,
            topics=[
                dict(
                    topic_name=METADATA_TOPIC,
                    partitions=[dict(partition_index=0, error_code=ErrorCode.unknown_topic_or_partition, error_message=None, leader_id=-1, leader_epoch=-1)],
                )
            ],
        )
    now = int(ctx.broker.scheduler.wall() * 1000)
    high_watermark = len(ctx.broker.topics.by_name) + 1
    voter = dict(
        replica_id=BROKER_ID,
        replica_directory_id=DIRECTORY_ID,
        log_end_offset=high_watermark,
        last_fetch_timestamp=now,
        last_caught_up_timestamp=now,
    )
    host, port = ctx.connection.advertised
    return ctx.respond(
        error_code=ErrorCode.none,
        error_message=None,
        topics=[
            dict(
                topic_name=METADATA_TOPIC,
                partitions=[
                    dict(
                        partition_index=0,
                        error_code=ErrorCode.none,
                        error_message=None,
                        leader_id=BROKER_ID,
                        leader_epoch=1,
                        high_watermark=high_watermark,
                        current_voters=[voter],
                        observers=[],
                    )
                ],
            )
        ],
        nodes=[dict(node_id=BROKER_ID, listeners=[dict(name="CONTROLLER", host=host, port=port)])],
    )
