"""Stream queues (``x-queue-type: stream``): an append-only log that every
consumer reads from its own offset; acknowledging does not remove anything.

The log is the same structure a Kafka partition uses (``log.py``).
Semantics follow RabbitMQ 3.10: consumers need a prefetch and manual acks,
choose where to start with ``x-stream-offset`` (``first``, ``last``,
``next``, an offset, a timestamp or an interval such as ``1h``), and every
delivery carries the ``x-stream-offset`` header; basic.get is refused.

Retention follows osiris: the log rolls a new segment once the current one
has exceeded ``x-stream-max-segment-size-bytes`` (default 500 MB; message
bodies are counted, not osiris's chunk headers), never inside a chunk, and
each roll evaluates retention — the oldest segments go while the stream is
larger than ``x-max-length-bytes``, then while their newest message is older
than ``x-max-age`` (``7D``, ``12h``, ``30s``: Y, M, D, h, m, s); the current
segment always stays.  A consumer whose position was deleted continues from
the new first offset, as an osiris reader does.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from .errors import CoreError, NotImplementedFeature
from .log import Log
from .message import Entry, Message
from .queue import Consumer, Queue

_INTERVAL = re.compile(r"^(\d+)([YMDhms])$")
_UNIT_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "D": 86400, "h": 3600, "m": 60, "s": 1}
#: osiris's default max_segment_size_bytes
DEFAULT_SEGMENT_BYTES = 500_000_000


def _max_age(value: Any) -> float | None:
    """``x-max-age`` (``7D``, ``1h``…) in seconds; None when absent or not of that form."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    match = _INTERVAL.match(value) if isinstance(value, str) else None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


class InvalidOffset(CoreError):
    """RabbitMQ 3.10 crashes the channel on an unknown offset spec: 541."""

    kind = "INTERNAL_ERROR"


class StreamQueue(Queue):
    """A stream queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log = Log()
        self._positions: dict[Consumer, int] = {}
        args = self.arguments
        segment = args.get("x-stream-max-segment-size-bytes")
        self.log.segment_bytes = segment if isinstance(segment, int) and not isinstance(segment, bool) and segment > 0 else DEFAULT_SEGMENT_BYTES
        self.log.roll_before_full = False
        #: x-max-age in seconds, None without one
        self.max_age = _max_age(args.get("x-max-age"))

    @property
    def message_count(self) -> int:
        return len(self.log)

    def pending(self) -> bool:
        end = self.log.next_offset
        return any(position < end for position in self._positions.values())

    def enqueue(self, message: Message) -> bool:
        log = self.log
        active = log.segments[-1]
        now = self.vhost.scheduler.wall()
        base = log.append(message, timestamp=now, chunk=self.vhost.write_batch, size=len(message.body))
        if self.store is not None:
            self.store.append(base, 1, message, now)
        if log.segments[-1] is not active:
            start = log.start_offset
            self.apply_retention(now)
            if self.store is not None and log.start_offset != start:
                self.store.start_moved(log.start_offset)
        if self._registered:
            self.dispatch()
        return True

    def apply_retention(self, now: float) -> int:
        """osiris's retention evaluation (on each segment roll); returns the segments deleted."""
        log = self.log
        segments = log.segments
        count = 0
        size = log.bytes
        max_bytes = self.max_length_bytes
        while count < len(segments) - 1 and max_bytes is not None and size > max_bytes:
            size -= segments[count].bytes
            count += 1
        if self.max_age is not None:
            while count < len(segments) - 1 and (segments[count].last_modified or now) < now - self.max_age:
                count += 1
        if count:
            log.drop_segments(count)
        return count

    def take(self, ack_required: bool) -> Entry | None:
        raise NotImplementedFeature(f"basic.get not supported by stream queues {self.describe()}")

    def requeue(self, entries: Any) -> None:
        # a stream never takes a message back: returning only frees credit
        self.unacked -= len(list(entries))

    def reject(self, entries: Any) -> None:
        self.unacked -= len(list(entries))

    def purge(self) -> int:
        return 0

    def annotations(self, entry: Entry) -> dict[str, int] | None:
        return {"x-stream-offset": entry.seq}

    def start_offset(self, spec: Any) -> int:
        """Where a consumer starts, from its ``x-stream-offset`` argument."""
        log = self.log
        if spec is None or spec == "next":
            return log.next_offset
        if isinstance(spec, bytes):
            spec = spec.decode("utf-8", "replace")
        if spec == "first":
            return log.start_offset
        if spec == "last":
            return log.last_chunk_offset()
        if isinstance(spec, datetime.datetime):
            return log.offset_for_timestamp(spec.timestamp())
        if isinstance(spec, bool):
            raise InvalidOffset("")
        if isinstance(spec, int):
            return min(max(spec, log.start_offset), log.next_offset)
        if isinstance(spec, str):
            match = _INTERVAL.match(spec)
            if match:
                seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
                return log.offset_for_timestamp(self.vhost.scheduler.wall() - seconds)
        raise InvalidOffset("")

    def add_consumer(self, consumer: Consumer) -> None:
        arguments = getattr(consumer, "arguments", None) or {}
        position = self.start_offset(arguments.get("x-stream-offset"))
        self._positions[consumer] = position
        super().add_consumer(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        self._positions.pop(consumer, None)
        super().remove_consumer(consumer)

    def dispatch(self, *, expire: bool = True) -> None:
        if self._dispatching or self.deleted:
            return
        self._dispatching = True
        try:
            log = self.log
            for consumer in list(self._registered):
                position = self._positions.get(consumer)
                if position is None:
                    continue
                if position < log.start_offset:
                    position = self._positions[consumer] = log.start_offset
                while position < log.next_offset and consumer.has_credit():
                    batch = log.batch_at(position)
                    if batch is None:
                        break
                    entry = Entry(position, batch.payload)
                    position += 1
                    self._positions[consumer] = position
                    if consumer.ack_required:
                        self.unacked += 1
                    consumer.deliver(self, entry)
        finally:
            self._dispatching = False

    def delete(self) -> int:
        self._positions.clear()
        super().delete()
        return 0
