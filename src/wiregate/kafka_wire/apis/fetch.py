"""Fetch (key 1), v4-v17.

Behavior:
- Records are the stored batches' bytes, concatenated: whole batches from
  the one holding the fetch offset (clients skip records below it).
  ``partition_max_bytes`` and ``max_bytes`` limit what is returned, but the
  first partition with data returns at least one whole batch, however
  large (Kafka's ``minOneMessage``); later partitions stop before a batch
  that does not fit (Kafka would send a partial batch the client drops).
  In a compacted log a fetch offset in a gap starts at the next batch.
- Long poll: when fewer than ``min_bytes`` are available and no partition
  has an error, the response is deferred.  Each fetched partition gets a
  waiter that re-reads on every append; a scheduler timer answers with
  what there is after ``max_wait_ms``.  Nothing blocks other connections.
- Errors per partition: UNKNOWN_TOPIC_OR_PARTITION (by name, v4-v12),
  UNKNOWN_TOPIC_ID (v13+), OFFSET_OUT_OF_RANGE (offset below the log start
  — which DeleteRecords and retention move — or above the high watermark;
  a parked fetch left below a new start is answered at once), FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH
  for a ``current_leader_epoch`` older / newer than the partition's.  They
  carry -1 watermarks, as Kafka's do.
- The last stable offset is the high watermark (no transactions);
  ``isolation_level`` is accepted, READ_COMMITTED gets an empty aborted
  transaction list.
- Fetch sessions (KIP-227): none are created.  A full fetch (epoch 0 or
  -1) is answered with session id 0, which tells clients to send full
  fetches again — what Kafka does when its session cache is full.  An
  incremental fetch (epoch > 0) gets FETCH_SESSION_ID_NOT_FOUND, as for a
  session Kafka has evicted.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..protocol import RecordParts
from ..registry import handles
from ..retention import ensure_cleaner


class _Wanted:
    """One requested partition, resolved against the broker."""

    __slots__ = ("key", "topic", "index", "offset", "max_bytes", "leader_epoch", "missing")

    def __init__(self, key: Any, topic: Any, index: int, offset: int, max_bytes: int, leader_epoch: int, missing: ErrorCode) -> None:
        self.key = key
        self.topic = topic
        self.index = index
        self.offset = offset
        self.max_bytes = max_bytes
        self.leader_epoch = leader_epoch
        #: the error when the topic or partition is gone
        self.missing = missing

    @property
    def partition(self) -> Any:
        topic = self.topic
        if topic is None or topic.deleted or self.index < 0 or self.index >= len(topic.partitions):
            return None
        return topic.partitions[self.index]


def _error(index: int, error: ErrorCode) -> dict[str, Any]:
    return dict(
        partition_index=index,
        error_code=error,
        high_watermark=-1,
        last_stable_offset=-1,
        log_start_offset=-1,
        records=b"",
    )


def _read(wanted: list[_Wanted], max_bytes: int, read_committed: bool) -> tuple[list[tuple[_Wanted, dict[str, Any]]], int, bool]:
    """Read every requested partition.

    Returns:
        (wanted, partition response) pairs, the bytes of records read, and
        whether any partition has an error.
    """
    results = []
    total = 0
    errors = False
    min_one = True
    for item in wanted:
        partition = item.partition
        if partition is None:
            results.append((item, _error(item.index, item.missing)))
            errors = True
            continue
        if 0 <= item.leader_epoch != partition.leader_epoch:
            code = ErrorCode.fenced_leader_epoch if item.leader_epoch < partition.leader_epoch else ErrorCode.unknown_leader_epoch
            results.append((item, _error(item.index, code)))
            errors = True
            continue
        log = partition.log
        high_watermark = log.next_offset
        if item.offset < log.start_offset or item.offset > high_watermark:
            results.append((item, _error(item.index, ErrorCode.offset_out_of_range)))
            errors = True
            continue
        limit = min(item.max_bytes, max(0, max_bytes - total))
        chunks: list[bytes] = []
        size = 0
        if item.offset < high_watermark:
            for batch in log.read(item.offset):
                payload = batch.payload
                if size + len(payload) > limit and not (min_one and not chunks):
                    break
                chunks.append(payload)
                size += len(payload)
                if size >= limit:
                    break
        if chunks:
            min_one = False
        total += size
        results.append(
            (
                item,
                dict(
                    partition_index=item.index,
                    error_code=ErrorCode.none,
                    high_watermark=high_watermark,
                    last_stable_offset=high_watermark,
                    log_start_offset=log.start_offset,
                    aborted_transactions=[] if read_committed else None,
                    preferred_read_replica=-1,
                    records=chunks[0] if len(chunks) == 1 else RecordParts(chunks) if chunks else b"",
                ),
            )
        )
    return results, total, errors


def _response(ctx: Any, results: list[tuple[_Wanted, dict[str, Any]]], error: ErrorCode = ErrorCode.none) -> Any:
    topics: list[dict[str, Any]] = []
    last_key: Any = object()
    for item, data in results:
        if item.key != last_key:
            name = item.key if isinstance(item.key, str) else None
            topics.append(dict(topic=name, topic_id=None if name is not None else item.key, partitions=[]))
            last_key = item.key
        topics[-1]["partitions"].append(data)
    return ctx.respond(error_code=error, session_id=0, responses=topics)


def _wanted(ctx: Any, request: Any) -> list[_Wanted]:
    topics = ctx.broker.topics
    by_id = ctx.api_version >= 13
    wanted = []
    for fetch_topic in request.topics:
        if by_id:
            key = fetch_topic.topic_id
            topic = topics.by_id.get(key)
            missing = ErrorCode.unknown_topic_id
        else:
            key = fetch_topic.topic
            topic = topics.get(key)
            missing = ErrorCode.unknown_topic_or_partition
        for p in fetch_topic.partitions:
            wanted.append(
                _Wanted(
                    key, topic, p.partition, p.fetch_offset, p.partition_max_bytes,
                    getattr(p, "current_leader_epoch", -1), missing,
                )
            )
    return wanted


@handles(1, "Fetch", 4, 17)
def fetch(ctx: Any, request: Any) -> Any:
    ensure_cleaner(ctx.broker)
    if getattr(request, "session_epoch", -1) not in (0, -1):
        return _response(ctx, [], ErrorCode.fetch_session_id_not_found)
    wanted = _wanted(ctx, request)
    max_bytes = request.max_bytes
    read_committed = request.isolation_level == 1
    results, total, errors = _read(wanted, max_bytes, read_committed)
    max_wait = request.max_wait.total_seconds()
    if errors or total >= request.min_bytes or max_wait <= 0 or not wanted:
        return _response(ctx, results)
    return _park(ctx, wanted, max_bytes, read_committed, request.min_bytes, max_wait)


def _park(ctx: Any, wanted: list[_Wanted], max_bytes: int, read_committed: bool, min_bytes: int, max_wait: float) -> Any:
    """Answer later: when ``min_bytes`` arrive, a partition fails, or ``max_wait`` passes."""
    deferred = ctx.defer()
    scheduler = ctx.broker.scheduler
    partitions = {id(p): p for p in (item.partition for item in wanted) if p is not None}.values()

    def cleanup() -> None:
        timer.cancel()
        for partition in partitions:
            partition.waiters.discard(on_append)

    def answer(results: list[tuple[_Wanted, dict[str, Any]]]) -> None:
        cleanup()
        deferred.resolve(_response(ctx, results))

    def on_append() -> None:
        if deferred.done:
            return
        results, total, errors = _read(wanted, max_bytes, read_committed)
        if errors or total >= min_bytes:
            answer(results)

    def on_timeout() -> None:
        if not deferred.done:
            answer(_read(wanted, max_bytes, read_committed)[0])

    timer = scheduler.call_at(scheduler.now() + max_wait, on_timeout)
    for partition in partitions:
        partition.waiters.add(on_append)
    deferred.on_cancel(cleanup)
    return deferred
