"""Append-only logs: the storage of AMQP stream queues and of Kafka topic
partitions.

A log is a sequence of *batches* grouped into *segments*.  Each batch has a
base offset, the number of offsets it covers (``count``), an append
timestamp, the write batch (``chunk``) it arrived in, its size and the
largest record timestamp it holds, and carries an opaque payload: an AMQP
stream stores one message per batch; a Kafka partition stores a record
batch's wire bytes.

Segments, retention and compaction
----------------------------------
Segments are what Kafka (``LogSegment``) and RabbitMQ streams (osiris
segment files) delete and clean as a whole.  The log's owner sets the roll
rules (:attr:`Log.segment_bytes`, :attr:`Log.segment_ms`); every append
checks them first, as Kafka's ``UnifiedLog.maybeRoll`` does, and may start
a new *active* segment (the last one) at the next offset.  Nothing rolls
without an append, except that retention rolls an empty active segment when
it deletes every segment, as Kafka does.  Batches of one ``chunk`` never
straddle two segments.

What changes a log besides appends (``core/retention.py`` drives the
first two; the owner calls them):

- :meth:`Log.drop_segments` — retention deletes whole segments from the
  front; the start offset moves to the first remaining segment's base
  offset (never down).
- :meth:`Log.replace_segments` — the compaction cleaner swaps cleaned
  segments in for closed ones.  Cleaned batches keep their base offsets and
  ``count`` (offset spans), so offsets never change; whole batches may
  disappear, leaving gaps between batches.  :meth:`read` starts at the
  first batch that ends after the requested offset, so a gap is skipped.
- :meth:`Log.truncate_before` — DeleteRecords: the start moves up; whole
  segments below the segment holding it are dropped (Kafka's
  ``deleteLogStartOffsetBreachedSegments``) and, to free memory at once,
  batches wholly below the start in that segment too.

For a storage layer that mirrors the log: :attr:`Log.on_change` is called
as ``on_change(event, value)`` after each such change —

- ``("roll", base_offset)``: a new active segment starts at ``base_offset``;
- ``("start", offset)``: the start offset moved (retention or
  DeleteRecords); everything below it is gone, whole segments below the one
  holding it included;
- ``("replace", (first, end, batches))``: the offsets ``[first, end)`` now
  hold exactly ``batches`` (the cleaner's output, in order; possibly
  fewer and smaller batches, same base offsets).  Write them as new files,
  then forget the old ones for that range.

:attr:`Log.rewrites` counts the ``start`` and ``replace`` changes, and
:attr:`Log.clean_offset` is the compaction cleaner's checkpoint (Kafka's
``cleaner-offset-checkpoint``: the first offset not yet cleaned), which a
storage layer may persist so that a restart does not clean everything again.
:meth:`Log.restore` applies the same roll rules as :meth:`append`.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any, Callable, Iterator


class Batch:
    __slots__ = ("base_offset", "count", "timestamp", "chunk", "payload", "size", "max_timestamp")

    def __init__(
        self, base_offset: int, count: int, timestamp: float, chunk: int, payload: Any, size: int = 0, max_timestamp: int | None = None
    ) -> None:
        self.base_offset = base_offset
        #: offsets the batch covers (a compacted Kafka batch may hold fewer records)
        self.count = count
        #: wall-clock seconds at append
        self.timestamp = timestamp
        #: id of the write batch the record arrived in (RabbitMQ's chunk)
        self.chunk = chunk
        self.payload = payload
        #: bytes counted towards segment and retention sizes
        self.size = size
        #: the largest record timestamp in milliseconds (Kafka's maxTimestamp); the append time when not given
        self.max_timestamp = int(timestamp * 1000) if max_timestamp is None else max_timestamp

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.count


class Segment:
    """A run of batches rolled, deleted and cleaned as a whole."""

    __slots__ = ("base_offset", "batches", "bases", "bytes", "max_timestamp", "created", "last_modified")

    def __init__(self, base_offset: int, batches: list[Batch] | None = None, *, created: float | None = None) -> None:
        self.base_offset = base_offset
        self.batches: list[Batch] = []
        self.bases: list[int] = []
        self.bytes = 0
        #: largest batch max_timestamp (ms), -1 when none (Kafka's maxTimestampSoFar)
        self.max_timestamp = -1
        #: wall seconds when the segment got its first batch (Kafka's ``created``)
        self.created = created
        #: wall seconds of the last append (the segment file's mtime in Kafka)
        self.last_modified = created
        for batch in batches or ():
            self.add(batch)

    def add(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.bases.append(batch.base_offset)
        self.bytes += batch.size
        if batch.max_timestamp > self.max_timestamp:
            self.max_timestamp = batch.max_timestamp
        if self.created is None:
            self.created = batch.timestamp
        if self.last_modified is None or batch.timestamp > self.last_modified:
            self.last_modified = batch.timestamp

    @property
    def next_offset(self) -> int:
        return self.batches[-1].next_offset if self.batches else self.base_offset

    @property
    def first_timestamp(self) -> int:
        """The first batch's max timestamp (Kafka's ``rollingBasedTimestamp``); -1 when empty."""
        return self.batches[0].max_timestamp if self.batches else -1

    def largest_timestamp(self) -> int:
        """Kafka's ``LogSegment.largestTimestamp``: the max record timestamp, else the last modification (ms)."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int((self.last_modified or 0.0) * 1000)

    def __repr__(self) -> str:
        return f"Segment(base={self.base_offset}, batches={len(self.batches)}, bytes={self.bytes})"


class Log:
    """An append-only log with offsets starting at 0, in segments."""

    def __init__(self) -> None:
        self.segments: list[Segment] = [Segment(0)]
        self._segment_bases: list[int] = [0]
        self.start_offset = 0
        self.next_offset = 0
        self.bytes = 0
        #: roll before an append that would make the active segment larger than this (None: never)
        self.segment_bytes: int | None = None
        #: roll when the new batch's timestamp is this many ms past the segment's first (None: never)
        self.segment_ms: int | None = None
        #: True: Kafka's rule (roll *before* the segment would exceed segment_bytes);
        #: False: osiris's (roll once the segment has exceeded it)
        self.roll_before_full = True
        #: the compaction cleaner's checkpoint: the first offset not yet cleaned
        self.clean_offset = 0
        #: how many times the start moved or segments were replaced
        self.rewrites = 0
        #: ``on_change(event, value)`` after a roll, a start move or a segment replacement (see the module docstring)
        self.on_change: Callable[[str, Any], None] | None = None

    def __len__(self) -> int:
        """Offsets currently held (records, when nothing was compacted)."""
        return self.next_offset - self.start_offset

    # ------------------------------------------------------------ writing
    def append(
        self, payload: Any, *, timestamp: float, chunk: int, count: int = 1, size: int = 0, max_timestamp: int | None = None
    ) -> int:
        """Append a batch, rolling a new segment first when the roll rules say so; returns its base offset."""
        base = self.next_offset
        batch = Batch(base, count, timestamp, chunk, payload, size, max_timestamp)
        self._maybe_roll(batch)
        self.segments[-1].add(batch)
        self.next_offset = base + count
        self.bytes += size
        return base

    def restore(self, payload: Any, *, base_offset: int, timestamp: float, chunk: int, count: int, size: int = 0, max_timestamp: int | None = None) -> None:
        """Put back a batch read from a data directory, at its own base offset.

        Offsets may jump forward (records deleted or compacted away before
        the restart); a batch that does not lie past the log's end is
        skipped.  Segments roll by the same rules as :meth:`append`.
        """
        if base_offset < self.next_offset:
            return
        batch = Batch(base_offset, count, timestamp, chunk, payload, size, max_timestamp)
        if self.bytes == 0 and self.start_offset == self.next_offset and len(self.segments) == 1 and not self.segments[0].batches:
            self.start_offset = base_offset
            self.segments[0].base_offset = self._segment_bases[0] = base_offset
        else:
            self._maybe_roll(batch)
        self.segments[-1].add(batch)
        self.next_offset = base_offset + count
        self.bytes += size

    def _maybe_roll(self, batch: Batch) -> None:
        # Kafka's LogSegment.shouldRoll (size, then time since the first
        # batch's timestamp, or since creation when it has none)
        active = self.segments[-1]
        if not active.batches or active.batches[-1].chunk == batch.chunk:
            return
        limit = self.segment_bytes
        if limit is not None:
            if (active.bytes > limit - batch.size) if self.roll_before_full else (active.bytes >= limit):
                self.roll()
                return
        if self.segment_ms is not None:
            first = active.first_timestamp
            if first >= 0:
                waited = batch.max_timestamp - first
            else:
                waited = int((batch.timestamp - (active.created or batch.timestamp)) * 1000)
            if waited > self.segment_ms:
                self.roll()

    def roll(self) -> Segment:
        """Start a new active segment at the next offset (nothing happens when the active one is empty)."""
        active = self.segments[-1]
        if not active.batches:
            return active
        segment = Segment(self.next_offset)
        self.segments.append(segment)
        self._segment_bases.append(segment.base_offset)
        self._changed("roll", segment.base_offset)
        return segment

    def _changed(self, event: str, value: Any) -> None:
        if event != "roll":
            self.rewrites += 1
        if self.on_change is not None:
            self.on_change(event, value)

    # ----------------------------------------------------- removing data
    def truncate_before(self, offset: int) -> None:
        """Make ``offset`` the first readable offset (DeleteRecords).

        Whole segments below the segment holding the new start are dropped,
        as Kafka does, and so are the batches wholly below it (memory is
        freed at once).  A batch that straddles ``offset`` stays: readers
        skip its earlier records.
        """
        start = max(self.start_offset, min(offset, self.next_offset))
        moved = start != self.start_offset
        self.start_offset = start
        segments = self.segments
        drop = 0
        while drop + 1 < len(segments) and segments[drop + 1].base_offset <= start:
            drop += 1
        if drop:
            self._remove_front(drop)
        first = segments[0]
        trim = bisect.bisect_right(first.bases, start) - 1
        if trim >= 0 and first.batches[trim].next_offset <= start:
            trim += 1
        if trim > 0:
            freed = sum(batch.size for batch in first.batches[:trim])
            del first.batches[:trim]
            del first.bases[:trim]
            first.bytes -= freed
            self.bytes -= freed
        if moved:
            self._changed("start", start)

    def _remove_front(self, count: int) -> None:
        removed = self.segments[:count]
        del self.segments[:count]
        del self._segment_bases[:count]
        self.bytes -= sum(segment.bytes for segment in removed)

    def drop_segments(self, count: int) -> int:
        """Delete the ``count`` oldest segments (retention); returns the new start offset.

        When every segment goes, a new empty active segment is rolled first,
        as Kafka does, so the log keeps its end offset.
        """
        if count <= 0:
            return self.start_offset
        if count >= len(self.segments):
            self.roll()
            count = min(count, len(self.segments) - 1)
            if count <= 0:
                return self.start_offset
        self._remove_front(count)
        start = max(self.start_offset, self.segments[0].base_offset)
        if start != self.start_offset:
            self.start_offset = start
            self._changed("start", start)
        return start

    def replace_segments(self, first: int, count: int, replacements: list[Segment]) -> None:
        """Swap ``replacements`` in for ``count`` closed segments from index ``first`` (the cleaner).

        The replacements must cover the same offsets (the first one starting
        at the first replaced segment's base offset); the active segment is
        never replaced.
        """
        old = self.segments[first : first + count]
        if not old or first + count >= len(self.segments):
            raise ValueError("only closed segments can be replaced")
        end = self.segments[first + count].base_offset
        self.bytes += sum(s.bytes for s in replacements) - sum(s.bytes for s in old)
        self.segments[first : first + count] = replacements
        self._segment_bases[first : first + count] = [s.base_offset for s in replacements]
        batches = [batch for segment in replacements for batch in segment.batches]
        self._changed("replace", (old[0].base_offset, end, batches))

    # ------------------------------------------------------------ reading
    def _locate(self, offset: int) -> tuple[int, int]:
        """(segment index, batch index) of the first batch ending after ``offset``; may point past a segment's end."""
        segments = self.segments
        index = bisect.bisect_right(self._segment_bases, offset) - 1
        if index < 0:
            index = 0
        segment = segments[index]
        position = bisect.bisect_right(segment.bases, offset) - 1
        if position < 0:
            position = 0
        elif segment.batches[position].next_offset <= offset:
            position += 1
        last = len(segments) - 1
        while position >= len(segments[index].batches) and index < last:
            index += 1
            position = 0
        return index, position

    def batches(self) -> Iterator[Batch]:
        """Every batch held, oldest first."""
        return itertools.chain.from_iterable(segment.batches for segment in self.segments)

    def batch_at(self, offset: int) -> Batch | None:
        """The batch holding ``offset`` (after a compaction gap: the next one); None past the end."""
        if offset >= self.next_offset:
            return None
        index, position = self._locate(offset)
        batches = self.segments[index].batches
        return batches[position] if position < len(batches) else None

    def read(self, offset: int) -> Iterator[Batch]:
        """Batches from the one holding ``offset`` onwards (a batch ending at or before it is skipped)."""
        if offset >= self.next_offset:
            return iter(())
        index, position = self._locate(offset)
        segments = self.segments
        if index == len(segments) - 1:
            return iter(segments[index].batches[position:])
        return itertools.chain(segments[index].batches[position:], *(s.batches for s in segments[index + 1 :]))

    def _reversed(self) -> Iterator[Batch]:
        for segment in reversed(self.segments):
            yield from reversed(segment.batches)

    def last_chunk_offset(self) -> int:
        """First offset of the newest chunk (RabbitMQ's ``last``); next_offset when empty."""
        first: Batch | None = None
        for batch in self._reversed():
            if first is not None and batch.chunk != first.chunk:
                break
            first = batch
        return first.base_offset if first is not None else self.next_offset

    def offset_for_timestamp(self, timestamp: float) -> int:
        """First offset of the first chunk appended at or after ``timestamp``."""
        for batch in self.batches():
            if batch.timestamp >= timestamp:
                return self.chunk_start(batch)
        return self.next_offset

    def chunk_start(self, batch: Batch) -> int:
        index, position = self._locate(batch.base_offset)
        start = batch.base_offset
        while True:
            while position > 0:
                position -= 1
                earlier = self.segments[index].batches[position]
                if earlier.chunk != batch.chunk:
                    return start
                start = earlier.base_offset
            if index == 0:
                return start
            index -= 1
            position = len(self.segments[index].batches)
