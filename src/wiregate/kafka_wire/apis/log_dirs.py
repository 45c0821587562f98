"""DescribeLogDirs (key 35), v1-v4, and AlterReplicaLogDirs (key 34), v1-v2.

Behavior (a Kafka 4.0 broker with one log directory):
- One log directory, ``/var/lib/wiregate`` (``configs.LOG_DIR``), holding
  every partition; a partition's size is the bytes of the batches its log
  holds; offset lag 0 (no future replica); total and usable bytes are
  reported as -1 (unknown), since wiregate's logs live in memory.
- A null topic list describes every partition; requested partitions that do
  not exist are left out, as Kafka lists only partitions it hosts.
- AlterReplicaLogDirs: moving a replica to the one directory is a no-op
  answered with NONE (also for partitions not hosted, which Kafka remembers
  for later creation); any other path is LOG_DIR_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .. import configs
from ..registry import handles

UNKNOWN_VOLUME_BYTES = -1


def _size(partition: Any) -> int:
    return int(getattr(partition.log, "bytes", 0) or 0)


@handles(35, "DescribeLogDirs", 1, 4)
def describe_log_dirs(ctx: Any, request: Any) -> Any:
    topics = ctx.broker.topics
    if request.topics is None:
        wanted = {name: None for name in topics.by_name}
    else:
        wanted = {}
        for item in request.topics:
            wanted.setdefault(item.topic, set()).update(item.partitions)  # type: ignore[union-attr]
    described = []
    for name, indexes in wanted.items():
        topic = topics.get(name)
        if topic is None:
            continue
        partitions = [
            dict(partition_index=p.index, partition_size=_size(p), offset_lag=0, is_future_key=False)
            for p in topic.partitions
            if indexes is None or p.index in indexes
        ]
        if partitions:
            described.append(dict(name=name, partitions=partitions))
    return ctx.respond(
        error_code=ErrorCode.none,
        results=[
            dict(
                error_code=ErrorCode.none,
                log_dir=configs.LOG_DIR,
                topics=described,
                total_bytes=UNKNOWN_VOLUME_BYTES,
                usable_bytes=UNKNOWN_VOLUME_BYTES,
            )
        ],
    )


@handles(34, "AlterReplicaLogDirs", 1, 2)
def alter_replica_log_dirs(ctx: Any, request: Any) -> Any:
    results: dict[str, list[dict[str, Any]]] = {}
    for directory in request.dirs:
        code = ErrorCode.none if directory.path == configs.LOG_DIR else ErrorCode.log_dir_not_found
        for topic in directory.topics:
            results.setdefault(topic.name, []).extend(dict(partition_index=index, error_code=code) for index in topic.partitions)
    return ctx.respond(results=[dict(topic_name=name, partitions=partitions) for name, partitions in results.items()])
