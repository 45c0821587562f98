"""ListOffsets (key 2), v1-v10.

Behavior:
- Timestamp -2 (earliest) and -4 (earliest local, KIP-405) answer the log
  start offset (moved by DeleteRecords and retention); -1 (latest) the high watermark, which is also the last
  stable offset for READ_COMMITTED (no transactions); both with
  timestamp -1.
- -3 (max timestamp, KIP-734) finds the first batch carrying the largest
  maxTimestamp from the batch headers, then the first record in it with
  that timestamp, as Kafka 4.0 does.
- A timestamp >= 0 finds the first record at or after the log start whose
  timestamp is >= it: batches are skipped by their header's maxTimestamp
  and only the first candidate batch's records are decoded (compressed
  ones too: gzip from the standard library, snappy/lz4/zstd through
  ``cramjam``; without cramjam such a batch answers its base offset).
  None found: offset and timestamp -1.
- leader_epoch is the partition's epoch (0): Kafka records the leader's
  epoch from offset 0 when it becomes leader, and stamps every batch
  with it; -1 when no offset is found.
- UNKNOWN_TOPIC_OR_PARTITION for a missing topic or partition;
  FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for a stale / future
  ``current_leader_epoch``.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .. import records
from ..registry import handles
from ..retention import ensure_cleaner

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4


def _first_record_at_or_after(batch: bytes, target: int, start: int) -> tuple[int, int] | None:
    """(offset, timestamp) of the first record of ``batch`` with timestamp >= target and offset >= start."""
    try:
        for offset, timestamp in records.iter_record_timestamps(batch):
            if timestamp >= target and offset >= start:
                return offset, timestamp
    except ValueError:
        # a codec we cannot decode here: the batch's base offset is the
        # closest answer its header gives
        return max(records.base_offset(batch), start), records.max_timestamp(batch)
    return None


def offset_for_time(partition: Any, target: int) -> tuple[int, int]:
    """(offset, timestamp) answering a ListOffsets timestamp; (-1, -1) when none."""
    log = partition.log
    if target in (EARLIEST, EARLIEST_LOCAL):
        return log.start_offset, -1
    if target == LATEST:
        return log.next_offset, -1
    start = log.start_offset
    if target == MAX_TIMESTAMP:
        best = None
        best_time = -1
        for batch in log.read(start):
            if records.record_count(batch.payload) == 0:
                continue  # left empty by the log cleaner
            stamp = records.max_timestamp(batch.payload)
            if best is None or stamp > best_time:
                best, best_time = batch.payload, stamp
        if best is None:
            return -1, -1
        found = _first_record_at_or_after(best, best_time, start)
        return found if found is not None else (-1, -1)
    for batch in log.read(start):
        if records.max_timestamp(batch.payload) >= target:
            found = _first_record_at_or_after(batch.payload, target, start)
            if found is not None:
                return found
    return -1, -1


def _partition(topic: Any, index: int, request_partition: Any) -> dict[str, Any]:
    if topic is None or index < 0 or index >= len(topic.partitions):
        return dict(partition_index=index, error_code=ErrorCode.unknown_topic_or_partition, timestamp=-1, offset=-1, leader_epoch=-1)
    partition = topic.partitions[index]
    current = getattr(request_partition, "current_leader_epoch", -1)
    if 0 <= current != partition.leader_epoch:
        code = ErrorCode.fenced_leader_epoch if current < partition.leader_epoch else ErrorCode.unknown_leader_epoch
        return dict(partition_index=index, error_code=code, timestamp=-1, offset=-1, leader_epoch=-1)
    offset, timestamp = offset_for_time(partition, request_partition.timestamp)
    return dict(
        partition_index=index,
        error_code=ErrorCode.none,
        timestamp=timestamp,
        offset=offset,
        leader_epoch=partition.leader_epoch if offset >= 0 else -1,
    )


@handles(2, "ListOffsets", 1, 10)
def list_offsets(ctx: Any, request: Any) -> Any:
    ensure_cleaner(ctx.broker)
    topics = ctx.broker.topics
    results = []
    for item in request.topics:
        topic = topics.get(item.name)
        results.append(dict(name=item.name, partitions=[_partition(topic, p.partition_index, p) for p in item.partitions]))
    return ctx.respond(topics=results)
