"""Retention and compaction of logs: Kafka's retention task and log cleaner.

Everything here is synchronous and works on :class:`~wiregate.core.log.Log`
segments; the :class:`Cleaner` runs it on the core :class:`Scheduler`.
What a log's records look like is not known here: compaction asks a
*codec* (the Kafka front end passes ``wiregate.kafka_wire.records``, see
:class:`RecordCodec`), and topic configs arrive as a :class:`LogPolicy`
resolved by the front end's config layers.

Retention (``cleanup.policy`` containing ``delete``), Kafka 4.0's
``UnifiedLog.deleteOldSegments``, in its order:

1. segments wholly below the log start offset (after DeleteRecords);
2. ``retention.bytes``: while the partition is larger than it, the oldest
   segments whose removal keeps it at or above the limit;
3. ``retention.ms``: the oldest segments whose largest record timestamp
   (else their last append time) is more than ``retention.ms`` old.

Only whole segments go, oldest first, stopping at the first that stays;
when every segment goes (an idle partition past retention.ms), an empty
active segment is rolled first, as Kafka does, so the log start offset
becomes the log end offset.  The start offset moves to the first remaining
segment's base offset.  ``-1`` disables a limit.

Compaction (``compact``; with ``compact,delete`` both run), Kafka's
``LogCleanerManager`` and ``Cleaner``:

- The dirty section runs from the cleaner checkpoint (``log.clean_offset``)
  to the first uncleanable offset: the active segment's base, or an
  earlier segment whose largest timestamp is within
  ``min.compaction.lag.ms`` of now.  The active segment is never cleaned.
- A log is cleaned when its dirty bytes are more than
  ``min.cleanable.dirty.ratio`` of its (clean + dirty) bytes, or when a
  dirty segment's first batch is older than ``max.compaction.lag.ms``
  (``segment.ms`` is also capped by it, as Kafka's ``maxSegmentMs``).
- Cleaning maps each key of the dirty section to its last offset, then
  rewrites every segment before that point (grouped up to ``segment.bytes``
  into one segment): a record is kept when it is the latest for its key
  (records without a key go); a tombstone (null value) is kept until its
  batch's *delete horizon* — set, as in KIP-534, to now +
  ``delete.retention.ms`` the first time a cleaning keeps it — has
  passed, and is removed by the next cleaning after that.
- A batch keeps its base offset, offset span and producer fields; an
  unchanged batch keeps its bytes (compressed or not); a changed one is
  re-encoded *uncompressed* by the codec (Kafka re-compresses with the
  original codec; clients cannot tell).  A batch left empty is removed,
  except the last batch of each idempotent producer (its sequence numbers
  must survive) and the last batch of the cleaning round, which stay as
  empty batches, as in Kafka.

Simplified: keys are compared exactly (Kafka hashes them into a bounded
map, so a huge dirty section is cleaned in several rounds); the cleaner
runs every ``log.cleaner.backoff.ms`` and cleans every cleanable log (Kafka
cleans the dirtiest first, one at a time, backing off when none is
cleanable); index-size limits and ``segment.jitter.ms`` are ignored.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Protocol

from .log import Batch, Log, Segment

LONG_MAX = 2**63 - 1
_INT_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class LogPolicy:
    """A log's effective retention and compaction configs (Kafka 4.0's defaults)."""

    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    delete: bool = True
    compact: bool = False
    retention_ms: int = 604800000
    retention_bytes: int = -1
    delete_retention_ms: int = 86400000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX

    @property
    def max_segment_ms(self) -> int:
        """LogConfig.maxSegmentMs: a compacted log rolls by max.compaction.lag.ms too."""
        if self.compact and self.max_compaction_lag_ms > 0:
            return min(self.max_compaction_lag_ms, self.segment_ms)
        return self.segment_ms

    def apply_roll_rules(self, log: Log) -> None:
        log.segment_bytes = self.segment_bytes
        log.segment_ms = self.max_segment_ms


@dataclasses.dataclass(frozen=True, slots=True)
class CleanerSettings:
    """Broker-wide settings: ``log.retention.check.interval.ms``, ``log.cleaner.backoff.ms``, ``log.cleaner.enable``."""

    retention_check_interval_ms: int = 300000
    cleaner_backoff_ms: int = 15000
    cleaner_enabled: bool = True


class RecordCodec(Protocol):
    """What compaction needs to know about a batch payload."""

    def compaction_records(self, payload: Any) -> list[tuple[int, bytes | None, bool]]:
        """(offset, key or None, has a value) of each record; ValueError when it cannot be decoded."""

    def delete_horizon(self, payload: Any) -> int | None:
        """The batch's delete horizon (ms), None when it has none."""

    def rebuild(self, payload: Any, keep: list[int], delete_horizon: int | None) -> Any:
        """The batch with only the records at offsets ``keep`` (same base offset and span)."""

    def max_timestamp(self, payload: Any) -> int:
        """The batch's largest timestamp (ms)."""

    def size(self, payload: Any) -> int:
        """Bytes the payload counts for."""


# ------------------------------------------------------------- retention
def _delete_while(log: Log, predicate: Callable[[Segment, Segment | None], bool]) -> int:
    # UnifiedLog.deletableSegments: oldest first, stop at the first kept;
    # never an empty active segment (it would just be rolled again)
    segments = log.segments
    count = 0
    while count < len(segments):
        segment = segments[count]
        following = segments[count + 1] if count + 1 < len(segments) else None
        if not predicate(segment, following) or (following is None and not segment.batches):
            break
        count += 1
    if count:
        log.drop_segments(count)
    return count


def delete_old_segments(log: Log, policy: LogPolicy, now_ms: int) -> int:
    """Apply retention once (Kafka's ``deleteOldSegments``); returns the segments deleted."""
    deleted = _delete_while(log, lambda segment, following: following is not None and following.base_offset <= log.start_offset)
    if not policy.delete:
        return deleted
    limit = policy.retention_bytes
    if limit >= 0 and log.bytes >= limit:
        excess = log.bytes - limit

        def over_size(segment: Segment, following: Segment | None) -> bool:
            nonlocal excess
            if excess - segment.bytes >= 0:
                excess -= segment.bytes
                return True
            return False

        deleted += _delete_while(log, over_size)
    if policy.retention_ms >= 0:
        deleted += _delete_while(log, lambda segment, following: now_ms - segment.largest_timestamp() > policy.retention_ms)
    return deleted


def retention_due(log: Log, policy: LogPolicy, now_ms: int) -> bool:
    """Cheap check after an append: would :func:`delete_old_segments` delete the oldest segment?"""
    if not policy.delete or len(log.segments) < 2:
        return False
    first = log.segments[0]
    if policy.retention_bytes >= 0 and log.bytes - policy.retention_bytes >= first.bytes:
        return True
    return policy.retention_ms >= 0 and now_ms - first.largest_timestamp() > policy.retention_ms


# ------------------------------------------------------------ compaction
def _segments_between(log: Log, start: int, end: int) -> list[Segment]:
    """UnifiedLog.logSegments(from, to): segments holding offsets in [start, end)."""
    segments = log.segments
    chosen = []
    for index, segment in enumerate(segments):
        following = segments[index + 1].base_offset if index + 1 < len(segments) else LONG_MAX
        if segment.base_offset < end and following > start:
            chosen.append(segment)
    return chosen


def _non_active_from(log: Log, offset: int) -> list[Segment]:
    return [s for s in _segments_between(log, offset, LONG_MAX) if s is not log.segments[-1]]


@dataclasses.dataclass(slots=True)
class ToClean:
    """LogToClean: the dirty range of a log and why it is (not) cleanable."""

    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    cleanable_bytes: int
    need_now: bool

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.cleanable_bytes
        return self.cleanable_bytes / total if total else 0.0


def to_clean(log: Log, policy: LogPolicy, now_ms: int) -> ToClean:
    """LogCleanerManager.cleanableOffsets and calculateCleanableBytes."""
    checkpoint = log.clean_offset
    first_dirty = log.start_offset if checkpoint < log.start_offset or checkpoint > log.next_offset else checkpoint
    uncleanable = min(log.next_offset, log.segments[-1].base_offset)
    lag = max(policy.min_compaction_lag_ms, 0)
    if lag > 0:
        for segment in _non_active_from(log, first_dirty):
            if segment.largest_timestamp() > now_ms - lag:
                uncleanable = min(uncleanable, segment.base_offset)
                break
    uncleanable = max(first_dirty, uncleanable)
    after = _non_active_from(log, uncleanable)
    first_uncleanable = after[0].base_offset if after else log.segments[-1].base_offset
    cleanable = sum(s.bytes for s in _segments_between(log, min(first_dirty, first_uncleanable), first_uncleanable))
    clean = sum(s.bytes for s in log.segments if s.base_offset < first_dirty)
    # maxCompactionDelay: a dirty segment's first batch older than max.compaction.lag.ms
    max_lag = max(policy.max_compaction_lag_ms, 0)
    stamps = [s.first_timestamp for s in _non_active_from(log, first_dirty) if s.first_timestamp > 0]
    need_now = bool(stamps) and max_lag < LONG_MAX and min(stamps) < now_ms - max_lag
    return ToClean(first_dirty, first_uncleanable, clean, cleanable, need_now)


def cleanable(log: Log, policy: LogPolicy, now_ms: int) -> ToClean | None:
    """The dirty range when the log should be cleaned now (grabFilthiestCompactedLog's filter), else None."""
    if not policy.compact:
        return None
    range_ = to_clean(log, policy, now_ms)
    if range_.clean_bytes + range_.cleanable_bytes <= 0:
        return None
    if (range_.need_now and range_.cleanable_bytes > 0) or range_.ratio > policy.min_cleanable_dirty_ratio:
        return range_
    return None


def _group_by_size(segments: list[Segment], max_size: int, first_uncleanable: int) -> list[list[Segment]]:
    # Cleaner.groupSegmentsBySize (log bytes and the 2**31 offset range; no index sizes)
    groups: list[list[Segment]] = []
    index = 0
    while index < len(segments):
        group = [segments[index]]
        size = segments[index].bytes
        index += 1
        while index < len(segments):
            candidate = segments[index]
            last = segments[index + 1].base_offset - 1 if index + 1 < len(segments) else first_uncleanable - 1
            if size + candidate.bytes > max_size:
                break
            if candidate.bytes and last - group[0].base_offset > _INT_MAX:
                break
            group.append(candidate)
            size += candidate.bytes
            index += 1
        groups.append(group)
    return groups


def clean(
    log: Log,
    policy: LogPolicy,
    codec: RecordCodec,
    now_ms: int,
    *,
    range_: ToClean | None = None,
    producer_last_offsets: Iterable[int] = (),
) -> bool:
    """Clean a log once (Cleaner.doClean); returns whether any segment was replaced.

    Args:
        range_: the dirty range (:func:`to_clean` when not given).
        producer_last_offsets: the last offset of each idempotent producer's
            last batch; those batches stay even when left empty.

    Raises:
        ValueError: a batch the codec cannot decode (nothing was changed).
    """
    if range_ is None:
        range_ = to_clean(log, policy, now_ms)
    first_dirty, upper = range_.first_dirty, range_.first_uncleanable
    latest_by_key: dict[bytes, int] = {}
    latest = -1
    decoded: dict[int, list[tuple[int, bytes | None, bool]]] = {}
    for batch in log.read(first_dirty):
        if batch.base_offset >= upper:
            break
        records = codec.compaction_records(batch.payload)
        decoded[id(batch)] = records
        for offset, key, _has_value in records:
            if key is not None and offset >= first_dirty:
                latest_by_key[key] = offset
        if batch.next_offset - 1 >= first_dirty:
            latest = max(latest, batch.next_offset - 1)
    if latest < 0:
        return False
    end = latest + 1
    count = 0
    while count < len(log.segments) - 1 and log.segments[count].base_offset < end:
        count += 1
    keep_empty = set(producer_last_offsets)
    # decode first, change nothing until every batch could be decoded
    plans: list[tuple[list[Segment], list[Batch], bool]] = []
    for group in _group_by_size(log.segments[:count], policy.segment_bytes, upper):
        output: list[Batch] = []
        changed = len(group) > 1
        for segment in group:
            for batch in segment.batches:
                records = decoded.get(id(batch))
                if records is None:
                    records = codec.compaction_records(batch.payload)
                retain_empty = batch.next_offset - 1 in keep_empty or batch.next_offset == upper
                cleaned = _clean_batch(batch, records, latest_by_key, latest, now_ms, policy, codec, retain_empty)
                if cleaned is not batch:
                    changed = True
                if cleaned is not None:
                    output.append(cleaned)
        plans.append((group, output, changed))
    replaced = False
    index = 0
    for group, output, changed in plans:
        if changed:
            segment = Segment(group[0].base_offset, output, created=group[0].created)
            segment.last_modified = group[-1].last_modified
            log.replace_segments(index, len(group), [segment])
            replaced = True
            index += 1
        else:
            index += len(group)
    log.clean_offset = end
    return replaced


def _clean_batch(
    batch: Batch,
    records: list[tuple[int, bytes | None, bool]],
    latest_by_key: dict[bytes, int],
    latest: int,
    now_ms: int,
    policy: LogPolicy,
    codec: RecordCodec,
    retain_empty: bool,
) -> Batch | None:
    horizon = codec.delete_horizon(batch.payload)
    retain_deletes = horizon is None or now_ms < horizon
    keep: list[int] = []
    tombstones = False
    for offset, key, has_value in records:
        if offset > latest:
            retained = True
        elif key is None:
            retained = False
        else:
            retained = offset >= latest_by_key.get(key, -1) and (has_value or retain_deletes)
        if retained:
            keep.append(offset)
            if not has_value:
                tombstones = True
    set_horizon = tombstones and horizon is None
    if len(keep) == len(records) and not set_horizon:
        return batch
    if not keep and not retain_empty:
        return None
    if set_horizon:
        horizon = now_ms + policy.delete_retention_ms
    payload = codec.rebuild(batch.payload, keep, horizon)
    return Batch(batch.base_offset, batch.count, batch.timestamp, batch.chunk, payload, codec.size(payload), codec.max_timestamp(payload))


# --------------------------------------------------------------- cleaner
class Cleaner:
    """Runs retention and compaction over the partitions of a set of topics, on the scheduler.

    Args:
        topics: the :class:`~wiregate.core.topics.Topics` to look after.
        scheduler: the core scheduler (its wall clock is Kafka's ``time.milliseconds``).
        policy_for: a topic's :class:`LogPolicy` (the front end's config layers).
        codec: the record codec for compaction.
        settings: the broker-wide :class:`CleanerSettings`, read before each run.
        alive: False once these topics are gone (a broker reset): the timers stop.
    """

    def __init__(
        self,
        topics: Any,
        scheduler: Any,
        policy_for: Callable[[Any], LogPolicy],
        codec: RecordCodec,
        settings: Callable[[], CleanerSettings] = CleanerSettings,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.topics = topics
        self.scheduler = scheduler
        self.policy_for = policy_for
        self.codec = codec
        self.settings = settings
        self.alive = alive
        self._retention_timer: Any = None
        self._cleaner_timer: Any = None
        self._cleaner_due: float | None = None
        #: logs whose batches could not be decoded (Kafka's uncleanable partitions)
        self.uncleanable: set[int] = set()
        self.stopped = False

    # ----------------------------------------------------------- timers
    def start(self) -> None:
        settings = self.settings()
        self._schedule_retention(settings.retention_check_interval_ms)
        self._schedule_cleaning(settings.cleaner_backoff_ms)

    def stop(self) -> None:
        self.stopped = True
        for timer in (self._retention_timer, self._cleaner_timer):
            if timer is not None:
                timer.cancel()

    def _schedule_retention(self, delay_ms: int) -> None:
        self._retention_timer = self.scheduler.call_at(self.scheduler.now() + delay_ms / 1000, self._retention_tick)

    def _schedule_cleaning(self, delay_ms: int) -> None:
        when = self.scheduler.now() + delay_ms / 1000
        if self._cleaner_due is not None and self._cleaner_due <= when:
            return
        if self._cleaner_timer is not None:
            self._cleaner_timer.cancel()
        self._cleaner_due = when
        self._cleaner_timer = self.scheduler.call_at(when, self._cleaner_tick)

    def _retention_tick(self) -> None:
        if self.stopped or not self.alive():
            self.stop()
            return
        self.run_retention()
        self._schedule_retention(self.settings().retention_check_interval_ms)

    def _cleaner_tick(self) -> None:
        self._cleaner_due = None
        if self.stopped or not self.alive():
            self.stop()
            return
        settings = self.settings()
        if settings.cleaner_enabled:
            self.run_cleaning()
        self._schedule_cleaning(settings.cleaner_backoff_ms)

    # ------------------------------------------------------------- work
    def now_ms(self) -> int:
        return int(self.scheduler.wall() * 1000)

    def partitions(self) -> Iterable[tuple[Any, Any]]:
        for topic in list(self.topics.by_name.values()):
            for partition in topic.partitions:
                yield topic, partition

    def run_retention(self) -> int:
        """One retention pass over every partition (LogManager.cleanupLogs); returns segments deleted."""
        now = self.now_ms()
        deleted = 0
        for topic, partition in self.partitions():
            deleted += self._retain(partition, self.policy_for(topic), now)
        return deleted

    def _retain(self, partition: Any, policy: LogPolicy, now: int) -> int:
        log = partition.log
        start = log.start_offset
        deleted = delete_old_segments(log, policy, now)
        if log.start_offset != start:
            partition.notify()
        return deleted

    def run_cleaning(self) -> int:
        """Clean every cleanable compacted partition; returns how many were cleaned."""
        now = self.now_ms()
        cleaned = 0
        for topic, partition in self.partitions():
            log = partition.log
            if id(log) in self.uncleanable:
                continue
            policy = self.policy_for(topic)
            range_ = cleanable(log, policy, now)
            if range_ is None:
                continue
            last_offsets = [entry.batches[-1].last_offset for entry in partition.producers.values() if getattr(entry, "batches", None)]
            try:
                clean(log, policy, self.codec, now, range_=range_, producer_last_offsets=last_offsets)
            except ValueError:
                self.uncleanable.add(id(log))
                continue
            cleaned += 1
        return cleaned

    # ----------------------------------------------------------- appends
    def before_append(self, topic: Any, partition: Any) -> LogPolicy:
        """Set the log's roll rules from the topic's configs; returns the policy."""
        policy = self.policy_for(topic)
        policy.apply_roll_rules(partition.log)
        return policy

    def after_append(self, partition: Any, policy: LogPolicy, rolled: bool) -> None:
        """Retention when it is cheap to know it is due; an early cleaning after a roll of a compacted log."""
        if self.stopped:
            return
        if policy.delete and len(partition.log.segments) > 1:
            now = self.now_ms()
            if retention_due(partition.log, policy, now):
                self._retain(partition, policy, now)
        if rolled and policy.compact and self.settings().cleaner_enabled:
            self._schedule_cleaning(0)
