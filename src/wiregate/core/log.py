"""Append-only logs: the storage of AMQP stream queues and, with the Kafka
front end, of topic partitions.

A log is a sequence of *batches*.  Each batch has a base offset, a record
count, an append timestamp and the write batch (``chunk``) it arrived in,
and carries an opaque payload: an AMQP stream stores one message per batch;
a Kafka partition will store a record batch's wire bytes with its count.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterator


class Batch:
    __slots__ = ("base_offset", "count", "timestamp", "chunk", "payload")

    def __init__(self, base_offset: int, count: int, timestamp: float, chunk: int, payload: Any) -> None:
        self.base_offset = base_offset
        self.count = count
        #: wall-clock seconds at append
        self.timestamp = timestamp
        #: id of the write batch the record arrived in (RabbitMQ's chunk)
        self.chunk = chunk
        self.payload = payload

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.count


class Log:
    """An append-only log with offsets starting at 0."""

    def __init__(self) -> None:
        self._batches: list[Batch] = []
        self._bases: list[int] = []
        self.start_offset = 0
        self.next_offset = 0
        self.bytes = 0

    def __len__(self) -> int:
        """Records currently held."""
        return self.next_offset - self.start_offset

    def append(self, payload: Any, *, timestamp: float, chunk: int, count: int = 1, size: int = 0) -> int:
        """Append a batch; returns its base offset."""
        base = self.next_offset
        self._batches.append(Batch(base, count, timestamp, chunk, payload))
        self._bases.append(base)
        self.next_offset = base + count
        self.bytes += size
        return base

    def restore(self, payload: Any, *, base_offset: int, timestamp: float, chunk: int, count: int, size: int = 0) -> None:
        """Put back a batch read from a data directory, at its own base offset.

        Offsets may jump forward (records deleted or compacted away before
        the restart); a batch that does not lie past the log's end is
        skipped.
        """
        if base_offset < self.next_offset:
            return
        if not self._batches and self.start_offset == self.next_offset:
            self.start_offset = base_offset
        self._batches.append(Batch(base_offset, count, timestamp, chunk, payload))
        self._bases.append(base_offset)
        self.next_offset = base_offset + count
        self.bytes += size

    def truncate_before(self, offset: int) -> None:
        """Make ``offset`` the first readable offset, dropping batches wholly before it.

        A batch that straddles ``offset`` stays: readers skip its earlier
        records, as Kafka keeps a segment that holds the new start.
        """
        self.start_offset = max(self.start_offset, min(offset, self.next_offset))
        drop = bisect.bisect_right(self._bases, self.start_offset) - 1
        if drop >= 0 and self._batches[drop].next_offset <= self.start_offset:
            drop += 1
        if drop > 0:
            for batch in self._batches[:drop]:
                if isinstance(batch.payload, (bytes, bytearray)):
                    self.bytes -= len(batch.payload)
            del self._batches[:drop]
            del self._bases[:drop]

    def batch_at(self, offset: int) -> Batch | None:
        """The batch holding ``offset``; None past the end."""
        if offset >= self.next_offset:
            return None
        index = bisect.bisect_right(self._bases, offset) - 1
        if index < 0:
            return self._batches[0] if self._batches else None
        return self._batches[index]

    def read(self, offset: int) -> Iterator[Batch]:
        """Batches from the one holding ``offset`` onwards."""
        if offset >= self.next_offset or not self._batches:
            return iter(())
        index = max(0, bisect.bisect_right(self._bases, offset) - 1)
        return iter(self._batches[index:])

    def last_chunk_offset(self) -> int:
        """First offset of the newest chunk (RabbitMQ's ``last``); next_offset when empty."""
        if not self._batches:
            return self.next_offset
        chunk = self._batches[-1].chunk
        index = len(self._batches) - 1
        while index > 0 and self._batches[index - 1].chunk == chunk:
            index -= 1
        return self._batches[index].base_offset

    def offset_for_timestamp(self, timestamp: float) -> int:
        """First offset of the first chunk appended at or after ``timestamp``."""
        for batch in self._batches:
            if batch.timestamp >= timestamp:
                return self.chunk_start(batch)
        return self.next_offset

    def chunk_start(self, batch: Batch) -> int:
        index = self._bases.index(batch.base_offset)
        while index > 0 and self._batches[index - 1].chunk == batch.chunk:
            index -= 1
        return self._batches[index].base_offset
