"""The classic queue: order, dispatch to consumers, credit, requeue, lifecycle.

No protocol here: consumers are small fakes implementing the core's
``Consumer`` protocol.  Where the expected order is not obvious (credit
unblocking, requeue positions) it was recorded from RabbitMQ 3.10.8 with
real channels.
"""

from __future__ import annotations

import pytest

from wiregate.core import AccessRefused, Message, VHost


class FakeConsumer:
    """A subscriber with an optional prefetch limit; acks go through ``ack``."""

    def __init__(self, tag: str, *, prefetch: int = 0, ack_required: bool = True, exclusive: bool = False) -> None:
        self.tag = tag
        self.prefetch = prefetch
        self.ack_required = ack_required
        self.exclusive = exclusive
        self.priority = 0  # consumer priorities (x-priority) are not under test here
        self.delivered: list = []
        self.unacked: list = []
        self.cancelled = 0

    def has_credit(self) -> bool:
        return not self.ack_required or not self.prefetch or len(self.unacked) < self.prefetch

    def deliver(self, queue, entry) -> None:
        self.delivered.append(entry)
        if self.ack_required:
            self.unacked.append(entry)

    def cancelled_by_server(self, queue) -> None:
        self.cancelled += 1

    def bodies(self) -> list[bytes]:
        return [entry.message.body for entry in self.delivered]

    def ack(self, queue, entry=None) -> None:
        """Acknowledge one delivery (the oldest by default), as a channel does."""
        entry = entry if entry is not None else self.unacked[0]
        self.unacked.remove(entry)
        queue.settle([entry])
        queue.dispatch()

    def reject_requeue(self, queue, entries) -> None:
        for entry in entries:
            self.unacked.remove(entry)
        queue.requeue(entries)


def msg(body: bytes | str) -> Message:
    data = body.encode() if isinstance(body, str) else body
    return Message("", "q", data)


def ready(queue) -> list[bytes]:
    return [entry.message.body for entry in queue.ready]


@pytest.fixture
def vhost() -> VHost:
    return VHost("/")


@pytest.fixture
def queue(vhost):
    return vhost.declare_queue("q")


def publish(queue, *bodies: str) -> None:
    for body in bodies:
        queue.enqueue(msg(body))


# ----------------------------------------------------------------- order
def test_fifo_through_get(queue) -> None:
    publish(queue, "1", "2", "3")
    assert queue.message_count == 3
    assert [queue.take(ack_required=False).message.body for _ in range(3)] == [b"1", b"2", b"3"]
    assert queue.take(ack_required=False) is None
    assert queue.message_count == 0


def test_get_with_ack_counts_unacked_not_ready(queue) -> None:
    publish(queue, "1", "2")
    entry = queue.take(ack_required=True)
    assert entry.message.body == b"1"
    assert queue.message_count == 1
    assert queue.unacked == 1
    queue.settle([entry])
    assert queue.unacked == 0
    queue.take(ack_required=False)
    assert queue.unacked == 0


def test_one_message_shared_by_two_queues(vhost) -> None:
    q1, q2 = vhost.declare_queue("q1"), vhost.declare_queue("q2")
    message = msg("shared")
    q1.enqueue(message)
    q2.enqueue(message)
    assert q1.take(ack_required=False).message is q2.take(ack_required=False).message


# -------------------------------------------------------------- dispatch
def test_round_robin_across_consumers(queue) -> None:
    consumers = [FakeConsumer(f"c{i}") for i in range(3)]
    for consumer in consumers:
        queue.add_consumer(consumer)
    publish(queue, *"123456")
    assert [c.bodies() for c in consumers] == [[b"1", b"4"], [b"2", b"5"], [b"3", b"6"]]
    assert queue.message_count == 0
    assert queue.unacked == 6


def test_consumer_takes_backlog_when_it_subscribes(queue) -> None:
    publish(queue, "1", "2", "3")
    consumer = FakeConsumer("c")
    queue.add_consumer(consumer)
    assert consumer.bodies() == [b"1", b"2", b"3"]
    assert queue.consumer_count == 1


def test_no_ack_consumer_is_never_out_of_credit(queue) -> None:
    consumer = FakeConsumer("c", prefetch=1, ack_required=False)
    queue.add_consumer(consumer)
    publish(queue, "1", "2", "3")
    assert consumer.bodies() == [b"1", b"2", b"3"]
    assert queue.unacked == 0


def test_prefetch_blocks_and_ack_unblocks(queue) -> None:
    """RabbitMQ 3.10: c1 prefetch 1, c2 prefetch 2, six messages, then acks."""
    c1, c2 = FakeConsumer("c1", prefetch=1), FakeConsumer("c2", prefetch=2)
    queue.add_consumer(c1)
    queue.add_consumer(c2)
    publish(queue, *"123456")
    assert c1.bodies() == [b"1"]
    assert c2.bodies() == [b"2", b"3"]
    assert ready(queue) == [b"4", b"5", b"6"]
    c1.ack(queue)
    assert c1.bodies() == [b"1", b"4"]
    c2.ack(queue)
    c2.ack(queue)
    assert c2.bodies() == [b"2", b"3", b"5", b"6"]
    assert queue.message_count == 0


def test_unblocked_consumer_rejoins_at_the_back(queue) -> None:
    """Recorded from RabbitMQ 3.10: c1 (prefetch 1), c2 and c3 (no limit)."""
    c1, c2, c3 = FakeConsumer("c1", prefetch=1), FakeConsumer("c2"), FakeConsumer("c3")
    for consumer in (c1, c2, c3):
        queue.add_consumer(consumer)
    publish(queue, "1", "2", "3", "4")
    c1.ack(queue)
    publish(queue, "5", "6", "7", "8", "9", "10")
    assert c1.bodies() == [b"1", b"7"]
    assert c2.bodies() == [b"2", b"4", b"6", b"9"]
    assert c3.bodies() == [b"3", b"5", b"8", b"10"]


def test_blocked_consumers_served_in_the_order_they_regain_credit(queue) -> None:
    c1, c2 = FakeConsumer("c1", prefetch=1), FakeConsumer("c2", prefetch=1)
    queue.add_consumer(c1)
    queue.add_consumer(c2)
    publish(queue, "1", "2", "3", "4")
    assert ready(queue) == [b"3", b"4"]
    c2.ack(queue)
    assert c2.bodies() == [b"2", b"3"]
    c1.ack(queue)
    assert c1.bodies() == [b"1", b"4"]


def test_removed_consumer_gets_nothing_more(queue) -> None:
    c1, c2 = FakeConsumer("c1"), FakeConsumer("c2")
    queue.add_consumer(c1)
    queue.add_consumer(c2)
    queue.remove_consumer(c1)
    publish(queue, "1", "2")
    assert c1.bodies() == []
    assert c2.bodies() == [b"1", b"2"]
    assert queue.consumer_count == 1


def test_removing_an_unknown_consumer_is_harmless(queue) -> None:
    queue.remove_consumer(FakeConsumer("stranger"))
    assert queue.consumer_count == 0
    assert "q" in queue.vhost.queues


# --------------------------------------------------------------- requeue
def test_requeue_single_goes_back_to_the_head(queue) -> None:
    publish(queue, "1", "2", "3")
    first = queue.take(ack_required=True)
    queue.requeue([first])
    assert ready(queue) == [b"1", b"2", b"3"]
    assert queue.unacked == 0


def test_requeue_several_restores_original_order(queue) -> None:
    publish(queue, "1", "2", "3", "4", "5")
    taken = [queue.take(ack_required=True) for _ in range(3)]
    queue.requeue([taken[1]])
    assert ready(queue) == [b"2", b"4", b"5"]
    queue.requeue([taken[2], taken[0]])
    assert ready(queue) == [b"1", b"2", b"3", b"4", b"5"]
    assert queue.unacked == 0


def test_requeue_interleaved_with_new_messages(queue) -> None:
    """RabbitMQ 3.10: get 1-3 of 5, publish 6, reject 2, 3, 1 with requeue."""
    publish(queue, "1", "2", "3", "4", "5")
    taken = [queue.take(ack_required=True) for _ in range(3)]
    publish(queue, "6")
    for index in (1, 2, 0):
        queue.requeue([taken[index]])
    assert ready(queue) == [b"1", b"2", b"3", b"4", b"5", b"6"]
    redelivered = [entry.redelivered for entry in queue.ready]
    assert redelivered == [True, True, True, False, False, False]


def test_requeue_into_the_middle(queue) -> None:
    publish(queue, "1", "2", "3", "4")
    one, two, three = (queue.take(ack_required=True) for _ in range(3))
    queue.requeue([two])
    again = queue.take(ack_required=True)
    assert again is two
    queue.requeue([three, one])
    assert ready(queue) == [b"1", b"3", b"4"]
    queue.requeue([two])
    assert ready(queue) == [b"1", b"2", b"3", b"4"]


def test_requeue_redelivers_to_consumer_with_flag(queue) -> None:
    consumer = FakeConsumer("c", prefetch=1)
    queue.add_consumer(consumer)
    publish(queue, "1", "2")
    first = consumer.delivered[0]
    assert not first.redelivered
    consumer.reject_requeue(queue, [first])
    assert consumer.bodies() == [b"1", b"1"]
    assert consumer.delivered[1].redelivered
    assert consumer.delivered[1].delivery_count == 2
    consumer.ack(queue)
    assert consumer.bodies() == [b"1", b"1", b"2"]
    assert not consumer.delivered[2].redelivered


def test_requeue_of_nothing_is_harmless(queue) -> None:
    publish(queue, "1")
    queue.requeue([])
    assert ready(queue) == [b"1"]


# ----------------------------------------------------------------- purge
def test_purge_drops_ready_keeps_unacked(queue) -> None:
    publish(queue, "1", "2", "3")
    delivered = queue.take(ack_required=True)
    assert queue.purge() == 2
    assert queue.message_count == 0
    assert queue.unacked == 1
    queue.requeue([delivered])
    assert ready(queue) == [b"1"]


def test_purge_empty_queue(queue) -> None:
    assert queue.purge() == 0


# -------------------------------------------------------------- lifecycle
def test_delete_cancels_every_consumer(vhost, queue) -> None:
    c1, c2 = FakeConsumer("c1", prefetch=1), FakeConsumer("c2", prefetch=1)
    queue.add_consumer(c1)
    queue.add_consumer(c2)
    publish(queue, "1", "2", "3", "4")
    assert vhost.delete_queue(queue) == 2
    assert (c1.cancelled, c2.cancelled) == (1, 1)
    assert queue.deleted
    assert queue.consumer_count == 0
    assert "q" not in vhost.queues


def test_requeue_after_delete_drops_the_messages(vhost, queue) -> None:
    publish(queue, "1")
    entry = queue.take(ack_required=True)
    vhost.delete_queue(queue)
    queue.requeue([entry])
    assert queue.message_count == 0


def test_auto_delete_goes_with_last_consumer(vhost) -> None:
    queue = vhost.declare_queue("ad", auto_delete=True)
    c1, c2 = FakeConsumer("c1"), FakeConsumer("c2")
    queue.add_consumer(c1)
    queue.add_consumer(c2)
    queue.remove_consumer(c1)
    assert "ad" in vhost.queues
    queue.remove_consumer(c2)
    assert "ad" not in vhost.queues
    assert queue.deleted
    # the consumer left on its own: it is not told it was cancelled
    assert c2.cancelled == 0


def test_auto_delete_queue_without_consumers_stays(vhost) -> None:
    queue = vhost.declare_queue("ad", auto_delete=True)
    publish(queue, "1")
    queue.remove_consumer(FakeConsumer("never-added"))
    assert "ad" in vhost.queues


def test_auto_delete_after_blocked_last_consumer_leaves(vhost) -> None:
    queue = vhost.declare_queue("ad", auto_delete=True)
    consumer = FakeConsumer("c", prefetch=1)
    queue.add_consumer(consumer)
    publish(queue, "1", "2", "3")  # c is now out of credit
    queue.remove_consumer(consumer)
    assert "ad" not in vhost.queues


def test_non_auto_delete_queue_survives_last_consumer(vhost, queue) -> None:
    consumer = FakeConsumer("c")
    queue.add_consumer(consumer)
    queue.remove_consumer(consumer)
    assert vhost.queues["q"] is queue


# ----------------------------------------------------- exclusive consumers
EXCLUSIVE_USE = "queue 'q' in vhost '/' in exclusive use"


def test_exclusive_consumer_refuses_others(queue) -> None:
    queue.add_consumer(FakeConsumer("x", exclusive=True))
    for exclusive in (False, True):
        with pytest.raises(AccessRefused) as caught:
            queue.add_consumer(FakeConsumer("y", exclusive=exclusive))
        assert caught.value.text == EXCLUSIVE_USE
    assert queue.consumer_count == 1


def test_exclusive_consumer_refused_when_queue_has_consumers(queue) -> None:
    queue.add_consumer(FakeConsumer("a"))
    with pytest.raises(AccessRefused) as caught:
        queue.check_can_consume(exclusive=True)
    assert caught.value.text == EXCLUSIVE_USE
    with pytest.raises(AccessRefused):
        queue.add_consumer(FakeConsumer("x", exclusive=True))
    queue.check_can_consume(exclusive=False)


def test_queue_free_again_after_exclusive_consumer_leaves(queue) -> None:
    exclusive = FakeConsumer("x", exclusive=True)
    queue.add_consumer(exclusive)
    queue.remove_consumer(exclusive)
    queue.add_consumer(FakeConsumer("y"))
    queue.add_consumer(FakeConsumer("z"))
    assert queue.consumer_count == 2


def test_exclusive_consumer_check_includes_blocked_consumers(queue) -> None:
    blocked = FakeConsumer("b", prefetch=1)
    queue.add_consumer(blocked)
    publish(queue, "1", "2")
    with pytest.raises(AccessRefused):
        queue.check_can_consume(exclusive=True)


def test_exclusive_queue_owner(vhost) -> None:
    owner = object()
    queue = vhost.declare_queue("ex", exclusive=True, owner=owner)
    assert queue.exclusive
    assert queue.owner is owner
    assert not vhost.declare_queue("shared").exclusive
