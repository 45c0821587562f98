"""Idempotent producer state (core.producers), Kafka 4.0's rules."""

from __future__ import annotations

import pytest

from wiregate.core import producers
from wiregate.core.producers import BatchMetadata, InvalidProducerEpoch, OutOfOrderSequence, ProducerEntry, ProducerIds

PID = 1000


class Partition:
    """A partition stand-in: appends batches of ``count`` records, remembers producer state."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.next_offset = 0

    def append(self, epoch: int, first_seq: int, count: int, pid: int = PID) -> int:
        last_seq = first_seq + count - 1
        duplicate = producers.check(self.producers, pid, epoch, first_seq, last_seq)
        if duplicate is not None:
            return duplicate.first_offset
        base = self.next_offset
        self.next_offset += count
        producers.record(self.producers, pid, epoch, BatchMetadata(first_seq, last_seq, base, base + count - 1, 1_000 + base))
        return base


def test_in_sequence_batches_append() -> None:
    partition = Partition()
    assert partition.append(0, 0, 3) == 0
    assert partition.append(0, 3, 2) == 3
    assert partition.append(0, 5, 1) == 5


def test_retried_batch_returns_original_offset_and_is_not_appended() -> None:
    partition = Partition()
    partition.append(0, 0, 3)
    partition.append(0, 3, 2)
    assert partition.append(0, 0, 3) == 0
    assert partition.append(0, 3, 2) == 3
    assert partition.next_offset == 5


def test_duplicate_detection_keeps_five_batches() -> None:
    partition = Partition()
    for i in range(6):
        partition.append(0, i, 1)
    for i in range(1, 6):
        assert partition.append(0, i, 1) == i
    with pytest.raises(OutOfOrderSequence):
        partition.append(0, 0, 1)


def test_duplicate_needs_the_same_range() -> None:
    partition = Partition()
    partition.append(0, 0, 3)
    with pytest.raises(OutOfOrderSequence):
        partition.append(0, 0, 2)


def test_gap_is_out_of_order() -> None:
    partition = Partition()
    partition.append(0, 0, 2)
    with pytest.raises(OutOfOrderSequence):
        partition.append(0, 3, 1)
    assert partition.next_offset == 2
    assert partition.append(0, 2, 1) == 2


def test_unknown_producer_may_start_anywhere() -> None:
    # KIP-360: Kafka 2.5+ accepts any first sequence from a producer it has no state for
    partition = Partition()
    assert partition.append(0, 42, 1) == 0
    assert partition.append(0, 43, 1) == 1


def test_epoch_bump_must_restart_at_zero() -> None:
    partition = Partition()
    partition.append(0, 0, 2)
    with pytest.raises(OutOfOrderSequence):
        partition.append(1, 2, 1)
    assert partition.append(1, 0, 1) == 2


def test_epoch_bump_forgets_old_batches() -> None:
    partition = Partition()
    partition.append(0, 0, 1)
    partition.append(0, 1, 1)
    assert partition.append(1, 0, 1) == 2
    assert [b.first_seq for b in partition.producers[PID].batches] == [0]
    with pytest.raises(InvalidProducerEpoch):
        partition.append(0, 0, 1)


def test_older_epoch_is_invalid() -> None:
    partition = Partition()
    partition.append(3, 0, 1)
    with pytest.raises(InvalidProducerEpoch):
        partition.append(2, 1, 1)


def test_sequence_wraps_after_int32_max() -> None:
    partition = Partition()
    partition.append(0, 0x7FFFFFFF, 1)
    assert partition.append(0, 0, 1) == 1


def test_producers_are_independent() -> None:
    partition = Partition()
    partition.append(0, 0, 1, pid=1)
    partition.append(0, 0, 1, pid=2)
    assert partition.append(0, 1, 1, pid=1) == 2
    with pytest.raises(OutOfOrderSequence):
        partition.append(0, 5, 1, pid=2)


def test_producer_ids_are_unique() -> None:
    ids = ProducerIds()
    assert [ids.allocate() for _ in range(3)] == [0, 1, 2]
