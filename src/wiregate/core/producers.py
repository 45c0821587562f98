"""Idempotent producer state: producer ids and per-partition sequences.

Kafka 4.0's rules (``ProducerStateEntry``, ``ProducerAppendInfo`` and
``UnifiedLog.analyzeAndValidateProducerState``):

- Each partition remembers, per producer id, its epoch and the metadata of
  its last five batches.
- A batch whose epoch and sequence range equal one of those five is a
  retry: it is not appended again, and the append answers with the
  original offsets (and the original batch's max timestamp as its append
  time, as Kafka does).
- An epoch lower than the known one is INVALID_PRODUCER_EPOCH.  A higher
  epoch must start at sequence 0.  In the same epoch the first sequence
  must follow the last one (wrapping after 2**31-1), else
  OUT_OF_ORDER_SEQUENCE_NUMBER.
- A producer id the partition has no state for may start at any sequence
  (KIP-360: Kafka stopped answering UNKNOWN_PRODUCER_ID here in 2.5, since
  DeleteRecords or retention can remove a producer's state).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .errors import CoreError

NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
#: Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN
NUM_BATCHES_TO_RETAIN = 5
_INT32_MAX = 0x7FFFFFFF


class OutOfOrderSequence(CoreError):
    kind = "OUT_OF_ORDER_SEQUENCE"


class InvalidProducerEpoch(CoreError):
    kind = "INVALID_PRODUCER_EPOCH"


class ProducerIds:
    """Hands out producer ids for the whole broker (Kafka's ProducerIdManager)."""

    def __init__(self, first: int = 0) -> None:
        self._next = first
        #: the data directory's journal (core/persistence.py); None in memory mode
        self.persistence: Any = None

    def allocate(self) -> int:
        producer_id = self._next
        self._next += 1
        if self.persistence is not None:
            self.persistence.journal(("producer_ids", "skip_past", (producer_id,)))
        return producer_id

    def skip_past(self, producer_id: int) -> None:
        """Never hand out ``producer_id`` or a lower id again (journal replay)."""
        self._next = max(self._next, producer_id + 1)


class BatchMetadata:
    """What a partition remembers of one appended batch."""

    __slots__ = ("first_seq", "last_seq", "first_offset", "last_offset", "timestamp")

    def __init__(self, first_seq: int, last_seq: int, first_offset: int, last_offset: int, timestamp: int) -> None:
        self.first_seq = first_seq
        self.last_seq = last_seq
        self.first_offset = first_offset
        self.last_offset = last_offset
        #: the batch's max timestamp (ms)
        self.timestamp = timestamp


class ProducerEntry:
    """One producer's state in one partition."""

    __slots__ = ("producer_id", "epoch", "batches")

    def __init__(self, producer_id: int) -> None:
        self.producer_id = producer_id
        self.epoch = NO_PRODUCER_EPOCH
        self.batches: deque[BatchMetadata] = deque(maxlen=NUM_BATCHES_TO_RETAIN)

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def find_duplicate(self, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        if epoch != self.epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None

    def check(self, epoch: int, first_seq: int) -> None:
        """Raise if a batch starting at ``first_seq`` in ``epoch`` may not be appended."""
        if epoch < self.epoch:
            raise InvalidProducerEpoch(
                f"Epoch of producer {self.producer_id} is {epoch}, which is smaller than the last seen epoch {self.epoch}"
            )
        if epoch != self.epoch:
            if first_seq != 0 and self.epoch != NO_PRODUCER_EPOCH:
                raise OutOfOrderSequence(
                    f"Invalid sequence number for new epoch of producer {self.producer_id}: "
                    f"{epoch} (request epoch), {first_seq} (seq. number), {self.epoch} (current producer epoch)"
                )
            return
        last = self.last_seq
        if not (first_seq == last + 1 or (first_seq == 0 and last == _INT32_MAX)):
            raise OutOfOrderSequence(
                f"Out of order sequence number for producer {self.producer_id}: "
                f"{first_seq} (incoming seq. number), {last} (current end sequence number)"
            )

    def add(self, epoch: int, batch: BatchMetadata) -> None:
        if epoch != self.epoch:
            self.batches.clear()
            self.epoch = epoch
        self.batches.append(batch)


def check(producers: dict[int, ProducerEntry], producer_id: int, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
    """Validate a batch before it is appended to a partition.

    Args:
        producers: the partition's producer id -> :class:`ProducerEntry`.

    Returns:
        The metadata of the earlier batch this one duplicates (do not
        append; answer with its offsets), or None to append.

    Raises:
        InvalidProducerEpoch: the epoch is older than the known one.
        OutOfOrderSequence: the sequence does not follow.
    """
    entry = producers.get(producer_id)
    if entry is None:
        return None
    duplicate = entry.find_duplicate(epoch, first_seq, last_seq)
    if duplicate is not None:
        return duplicate
    entry.check(epoch, first_seq)
    return None


def record(producers: dict[int, ProducerEntry], producer_id: int, epoch: int, batch: BatchMetadata) -> None:
    """Remember an appended batch (after :func:`check` allowed it)."""
    entry = producers.get(producer_id)
    if entry is None:
        entry = producers[producer_id] = ProducerEntry(producer_id)
    entry.add(epoch, batch)
