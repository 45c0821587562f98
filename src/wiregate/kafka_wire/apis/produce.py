"""Produce (key 0), v3-v12.

Behavior:
- Each partition's records must be one record batch v2; only its 61-byte
  header is read (``records.validate``), in Kafka 4.0's order of checks:
  INVALID_RECORD (no batch, magic other than 2, more than one batch, base
  offset not 0, offset range against record count, control batch, producer
  id without sequence), UNSUPPORTED_COMPRESSION_TYPE (zstd before v7),
  MESSAGE_TOO_LARGE (batch over the topic's ``max.message.bytes``),
  CORRUPT_MESSAGE (bad CRC-32C or length).  Records are never decoded:
  compressed batches are stored as sent, and per-record checks Kafka makes
  while decoding (timestamp bounds, record framing) are not made.
- The base offset and partition leader epoch are patched into the stored
  bytes.  A topic with ``message.timestamp.type=LogAppendTime`` gets the
  timestamp type bit and maxTimestamp rewritten, and a new CRC.
  ``compression.type`` other than ``producer`` is not applied (Kafka would
  recompress).
- The append rolls segments by the topic's ``segment.bytes``/``segment.ms``
  (by the batch's maxTimestamp, as Kafka) and may apply retention
  (``core/retention.py``); the first Produce attaches the broker's cleaner.
- Idempotent batches (producer id >= 0) are checked against the
  partition's producer state (``core.producers``): a retried batch answers
  with its original base offset and is not appended again.
- A missing topic is auto-created when ``auto.create.topics.enable`` is
  true (as a Metadata request would create it); otherwise, or for a
  partition the topic lacks, UNKNOWN_TOPIC_OR_PARTITION.  An illegal name
  is INVALID_TOPIC_EXCEPTION.
- acks 0, 1 and -1 all answer once the batch is in memory; other values get
  INVALID_REQUIRED_ACKS.  With acks=0 nothing is sent; a failed partition
  closes the connection instead, as Kafka does so the client notices.
- Transactions are not supported: a transactional id, or a batch with the
  transactional bit, gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED (what
  Kafka answers a client not allowed to use transactions).
- While the broker's resource alarm is raised (the memory high watermark,
  ``gateway/memory.py``), Produce is throttled as Kafka throttles a client
  over its quota: the request is carried out, the response carries
  ``throttle_time_ms`` (:data:`ALARM_THROTTLE_MS`) and the connection is
  muted for that long (KIP-219; acks=0 is muted too).  Before v6, whose
  clients do not back off by themselves, the response itself is held back
  for the throttle time, as Kafka did before KIP-219.
"""

from __future__ import annotations

import datetime
from typing import Any

from kio.schema.errors import ErrorCode

from wiregate.core import producers
from wiregate.core.producers import BatchMetadata, InvalidProducerEpoch, OutOfOrderSequence

from .. import connection, records
from ..protocol import ProtocolError
from ..configs import topic_value
from ..registry import handles
from ..retention import ensure_cleaner
from .metadata import auto_create, topic_name_error

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

_PRODUCER_ERRORS = {
    InvalidProducerEpoch: ErrorCode.invalid_producer_epoch,
    OutOfOrderSequence: ErrorCode.out_of_order_sequence_number,
}


def append_time(ms: int) -> datetime.datetime | None:
    """A Kafka millisecond timestamp as kio's datetime; None (-1 on the wire) when negative."""
    if ms < 0:
        return None
    return _EPOCH + datetime.timedelta(milliseconds=ms)


def _failed(index: int, error: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return dict(index=index, error_code=error, base_offset=-1, log_append_time=None, log_start_offset=-1, error_message=message)


LONG_MAX = 2**63 - 1

#: throttle_time_ms of every Produce answered during a resource alarm: each
#: producing connection gets one request per second through, so memory grows
#: by at most one request (max.request.size, 1 MiB by default) per producer
#: and second while the alarm lasts
ALARM_THROTTLE_MS = 1000

#: the first Produce version whose clients throttle themselves (KIP-219)
_CLIENT_SIDE_THROTTLE_VERSION = 6


def _topic_policy_refusal(ctx: Any, topic: Any, partition: Any, header: Any, data: bytes, acks: int) -> dict[str, Any] | None:
    """The checks Kafka's LogValidator and Partition make against topic configs.

    Records are decoded only when a config needs them: a compacted topic
    (every record needs a key) or a lower timestamp bound.  The upper
    timestamp bound is checked on the header's maxTimestamp.
    """
    broker = ctx.broker
    index = partition.index
    if acks == -1:
        required = int(topic_value(broker, topic, "min.insync.replicas") or 1)
        if required > 1:
            return _failed(
                index,
                ErrorCode.not_enough_replicas,
                f"The size of the current ISR Set(0) is insufficient to satisfy the min.isr requirement of {required} "
                f"for partition {topic.name}-{index}",
            )
    compacted = "compact" in (topic_value(broker, topic, "cleanup.policy") or "")
    log_append = topic_value(broker, topic, "message.timestamp.type") == "LogAppendTime"
    after = int(topic_value(broker, topic, "message.timestamp.after.max.ms") or LONG_MAX)
    before = int(topic_value(broker, topic, "message.timestamp.before.max.ms") or LONG_MAX)
    now = int(broker.scheduler.wall() * 1000)
    check_before = not log_append and before < LONG_MAX
    if not (not log_append and header.max_timestamp > now + after or compacted or check_before):
        return None
    # Kafka's LogValidator checks every record and lists each culprit
    # (KIP-467), so a client can fail just those records
    record_errors: list[tuple[int, str]] = []
    bad_timestamp = False
    for offset_delta, timestamp, null_key in records.iter_records(data[: header.size]):
        if compacted and null_key:
            record_errors.append(
                (offset_delta, f"Compacted topic cannot accept message without key in topic partition {topic.name}-{index}.")
            )
        elif not log_append and (timestamp > now + after or (check_before and timestamp < now - before)):
            bad_timestamp = True
            low = now - before if check_before else -LONG_MAX - 1
            record_errors.append(
                (
                    offset_delta,
                    f"Timestamp {timestamp} of message with offset {offset_delta} is out of range. "
                    f"The timestamp should be within [{low}, {now + after}]",
                )
            )
    if not record_errors:
        return None
    if bad_timestamp:
        error, message = ErrorCode.invalid_timestamp, "One or more records have been rejected due to invalid timestamp"
    else:
        shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in record_errors[:3])
        error = ErrorCode.invalid_record
        message = (
            f"One or more records have been rejected due to {len(record_errors)} record errors in total, "
            f"and only showing the first three errors at most: [{shown}]"
        )
    refusal = _failed(index, error, message)
    refusal["record_errors"] = [dict(batch_index=i, batch_index_error_message=m) for i, m in record_errors]
    return refusal


def produce_partition(ctx: Any, topic: Any, index: int, data: bytes | None, acks: int = 1) -> dict[str, Any]:
    """Validate and append one partition's batch; returns its response entry."""
    if index < 0 or index >= len(topic.partitions):
        return _failed(index, ErrorCode.unknown_topic_or_partition)
    partition = topic.partitions[index]
    try:
        header = records.validate(
            data or b"",
            max_message_bytes=int(topic_value(ctx.broker, topic, "max.message.bytes")),
            api_version=ctx.api_version,
        )
    except records.InvalidBatch as error:
        return _failed(index, error.error_code, str(error))
    if header.is_transactional:
        return _failed(index, ErrorCode.transactional_id_authorization_failed)
    assert data is not None
    refusal = _topic_policy_refusal(ctx, topic, partition, header, data, acks)
    if refusal is not None:
        return refusal
    if header.has_producer_id:
        try:
            duplicate = producers.check(
                partition.producers, header.producer_id, header.producer_epoch, header.base_sequence, header.last_sequence
            )
        except (InvalidProducerEpoch, OutOfOrderSequence) as error:
            return _failed(index, _PRODUCER_ERRORS[type(error)], error.text)
        if duplicate is not None:
            return dict(
                index=index,
                base_offset=duplicate.first_offset,
                log_append_time=append_time(duplicate.timestamp),
                log_start_offset=partition.log_start_offset,
            )
    base = partition.high_watermark
    wall = ctx.broker.scheduler.wall()
    log_append_time = -1
    max_timestamp = header.max_timestamp
    if topic_value(ctx.broker, topic, "message.timestamp.type") == "LogAppendTime":
        batch = bytearray(memoryview(data)[: header.size])
        records.assign(batch, base, partition.leader_epoch)
        log_append_time = max_timestamp = int(wall * 1000)
        records.set_log_append_time(batch, log_append_time)
        stored = bytes(batch)
    else:
        stored = records.assigned(data, header.size, base, partition.leader_epoch)
    partition.append_batch(stored, header.record_count, timestamp=wall, max_timestamp=max_timestamp)
    if header.has_producer_id:
        last = base + header.last_offset_delta
        metadata = BatchMetadata(header.base_sequence, header.last_sequence, base, last, max_timestamp)
        producers.record(partition.producers, header.producer_id, header.producer_epoch, metadata)
    return dict(
        index=index,
        base_offset=base,
        log_append_time=append_time(log_append_time),
        log_start_offset=partition.log_start_offset,
    )


@handles(0, "Produce", 3, 12, advertised_min=0)
def produce(ctx: Any, request: Any) -> Any:
    broker = ctx.broker
    ensure_cleaner(broker)
    acks = request.acks
    mark = ctx.durable_mark()
    responses = []
    for topic_data in request.topic_data:
        name = topic_data.name
        results: list[dict[str, Any]]
        topic = broker.topics.get(name)
        if acks not in (-1, 0, 1):
            results = [_failed(p.index, ErrorCode.invalid_required_acks) for p in topic_data.partition_data]
        elif request.transactional_id is not None:
            results = [_failed(p.index, ErrorCode.transactional_id_authorization_failed) for p in topic_data.partition_data]
        else:
            if topic is None and topic_name_error(name) is None:
                topic = auto_create(broker, name)
            if topic is None:
                error = topic_name_error(name) or ErrorCode.unknown_topic_or_partition
                results = [_failed(p.index, error) for p in topic_data.partition_data]
            else:
                results = [produce_partition(ctx, topic, p.index, p.records, acks) for p in topic_data.partition_data]
        responses.append(dict(name=name, partition_responses=results))
    throttle_ms = ALARM_THROTTLE_MS if broker.blocked_reason is not None else 0
    if throttle_ms:
        ctx.connection.throttle(throttle_ms)
    if acks == 0:
        failed = [r for t in responses for r in t["partition_responses"] if r.get("error_code", ErrorCode.none) != ErrorCode.none]
        if failed:
            # Kafka closes the connection so that an acks=0 client, which reads
            # no response, notices the failure and refreshes its metadata.
            raise ProtocolError(f"acks=0 produce failed with {failed[0]['error_code'].name}")
        return connection.NO_RESPONSE
    response = ctx.respond(responses=responses, throttle_time=throttle_ms)
    # acks=all: answered once the batches are durable under --fsync (acks=1,
    # like Kafka's leader ack, once they are written)
    if acks == -1:
        response = ctx.when_durable(mark, response)
    if throttle_ms and ctx.api_version < _CLIENT_SIDE_THROTTLE_VERSION and not isinstance(response, connection.Deferred):
        deferred = ctx.defer()
        scheduler = broker.scheduler
        scheduler.call_at(scheduler.now() + throttle_ms / 1000, lambda: deferred.resolve(response))
        return deferred
    return response
