"""The data directory without sockets: records, recovery, segments, fsync policies."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from wiregate.amqp.properties import PropertyBlock
from wiregate.core import Broker, Message
from wiregate.core.groups import OffsetCommit
from wiregate.kafka_wire import records as kafka_records
from wiregate.storage import DataDir, datadir as datadir_module
from wiregate.storage.segments import SegmentFile, frame, read_records, recover_file

PERSISTENT = PropertyBlock(b"\x10\x00\x02")  # delivery_mode=2


def _open(path: Path, fsync: str = "never") -> tuple[Broker, DataDir]:
    broker = Broker()
    data = DataDir(path, fsync)
    data.recover(broker, PropertyBlock)
    return broker, data


def _restart(path: Path, data: DataDir, fsync: str = "never") -> tuple[Broker, DataDir]:
    data.close()
    return _open(path, fsync)


def _publish(broker: Broker, queue: str, body: bytes, persistent: bool = True) -> None:
    vhost = broker.vhosts["/"]
    properties = PERSISTENT if persistent else PropertyBlock(b"\x00\x00")
    message = Message("", queue, body, properties, persistent=persistent)
    for target in vhost.route(vhost.exchanges[""], queue, message):
        target.enqueue(message)


class Collector:
    tag = "c"
    exclusive = False
    priority = 0

    def __init__(self, ack_required: bool = True) -> None:
        self.ack_required = ack_required
        self.entries: list = []

    def has_credit(self) -> bool:
        return True

    def deliver(self, queue, entry) -> None:
        self.entries.append(entry)

    def cancelled_by_server(self, queue) -> None:
        pass


# ------------------------------------------------------------------ records
def test_a_torn_tail_is_cut_and_appends_continue(tmp_path: Path) -> None:
    path = tmp_path / "0.seg"
    segment = SegmentFile(path)
    for payload in (b"one", b"two", b"three"):
        segment.append(payload)
    segment.close()
    intact = path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(frame(b"four")[:-2])  # the crash hit mid-write
    assert recover_file(path) == [b"one", b"two", b"three"]
    assert path.stat().st_size == intact
    segment = SegmentFile(path)
    segment.append(b"five")
    segment.close()
    assert read_records(path)[0] == [b"one", b"two", b"three", b"five"]


def test_a_corrupt_record_ends_the_readable_part(tmp_path: Path) -> None:
    path = tmp_path / "0.seg"
    path.write_bytes(frame(b"good") + frame(b"flipped")[:-1] + b"X" + frame(b"after"))
    records, valid = read_records(path)
    assert records == [b"good"]
    assert valid == len(frame(b"good"))
    path.write_bytes(struct.pack(">II", 2**31, 0) + b"x" * 16)  # a lying length
    assert read_records(path) == ([], 0)


# ------------------------------------------------------------------ topology
def test_durable_topology_comes_back_transient_does_not(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    vhost = broker.vhosts["/"]
    vhost.declare_exchange("orders", "topic", durable=True, arguments={"alternate-exchange": "ae"})
    vhost.declare_exchange("scratch", "fanout")
    vhost.declare_queue("billing", durable=True, arguments={"x-max-length": 5})
    vhost.declare_queue("temp")
    vhost.declare_queue("mine", durable=True, exclusive=True, owner=object())
    vhost.bind_queue("billing", "orders", "order.#")
    vhost.bind_queue("temp", "orders", "order.#")
    vhost.declare_exchange("auto", "direct", durable=True, auto_delete=True)
    vhost.declare_queue("short", durable=True)
    vhost.bind_queue("short", "auto", "k")
    vhost.delete_queue(vhost.queues["short"])  # cascades: the auto-delete exchange goes too
    broker.add_vhost("other").declare_queue("elsewhere", durable=True)

    broker, data = _restart(tmp_path, data)
    vhost = broker.vhosts["/"]
    assert "orders" in vhost.exchanges and vhost.exchanges["orders"].arguments == {"alternate-exchange": "ae"}
    assert "scratch" not in vhost.exchanges and "auto" not in vhost.exchanges
    assert set(vhost.queues) == {"billing"}
    assert vhost.queues["billing"].arguments == {"x-max-length": 5}
    message = Message("orders", "order.new", b"x", PERSISTENT, persistent=True)
    assert [q.name for q in vhost.route(vhost.exchanges["orders"], "order.new", message)] == ["billing"]
    assert set(broker.vhosts["other"].queues) == {"elsewhere"}
    data.close()


def test_kafka_topics_configs_offsets_and_producer_ids_come_back(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    topic = broker.topics.create("events", 2, {"retention.ms": "1000"})
    topic.add_partitions(3)
    topic.set_configs({"cleanup.policy": "compact"})
    broker.topics.create("gone", 1)
    broker.topics.delete(broker.topics.get("gone"))
    broker.groups.commit_offsets("g", "", None, -1, [OffsetCommit("events", 1, 42, 3, "meta")])
    first = broker.producer_ids.allocate()

    broker, data = _restart(tmp_path, data)
    events = broker.topics.get("events")
    assert events is not None and events.id == topic.id
    assert len(events.partitions) == 3 and events.configs == {"cleanup.policy": "compact"}
    assert broker.topics.get("gone") is None
    committed = broker.groups.committed("g")[("events", 1)]
    assert (committed.offset, committed.leader_epoch, committed.metadata) == (42, 3, "meta")
    assert broker.producer_ids.allocate() > first
    assert not (tmp_path / "topics" / broker.topics.by_name["events"].id.hex / "9").exists()
    data.close()


# ------------------------------------------------------------------ messages
def test_persistent_messages_come_back_in_order_with_redelivered_flags(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("work", durable=True)
    for body in (b"a", b"b", b"c", b"d"):
        _publish(broker, "work", body)
    _publish(broker, "work", b"transient", persistent=False)
    consumer = Collector()
    queue.add_consumer(consumer)
    queue.remove_consumer(consumer)
    acked, unacked = consumer.entries[:2], consumer.entries[2:]
    queue.settle(acked)  # a, b acked; c, d and the transient one delivered, unacked
    assert [e.message.body for e in unacked] == [b"c", b"d", b"transient"]

    broker, data = _restart(tmp_path, data)
    queue = broker.vhosts["/"].queues["work"]
    entries = list(queue.ready)
    assert [(e.message.body, e.redelivered) for e in entries] == [(b"c", True), (b"d", True)]
    assert entries[0].message.properties.raw == PERSISTENT.raw
    _publish(broker, "work", b"e")
    assert [e.message.body for e in queue.ready] == [b"c", b"d", b"e"]
    data.close()


def test_fully_acked_segments_are_deleted_from_the_oldest(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datadir_module, "QUEUE_SEGMENT_BYTES", 200)
    broker, data = _open(tmp_path)
    queue = broker.vhosts["/"].declare_queue("work", durable=True)
    for n in range(40):
        _publish(broker, "work", b"%03d" % n + b"." * 20)
    directory = next((tmp_path / "queues").glob("*/*"))
    assert len(list(directory.glob("*.seg"))) > 5
    consumer = Collector(ack_required=False)  # no-ack delivery removes at once
    queue.add_consumer(consumer)
    assert len(consumer.entries) == 40
    assert len(list(directory.glob("*.seg"))) == 1  # only the one being written
    broker, data = _restart(tmp_path, data)
    assert len(broker.vhosts["/"].queues["work"].ready) == 0
    data.close()


def test_a_deleted_queue_leaves_no_files(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("work", durable=True)
    _publish(broker, "work", b"x")
    vhost.delete_queue(queue)
    assert not list((tmp_path / "queues").glob("*/*"))
    broker, data = _restart(tmp_path, data)
    assert "work" not in broker.vhosts["/"].queues
    data.close()


# ------------------------------------------------------------------ partitions
def _batch(values: list[bytes], producer_id: int = -1, sequence: int = -1) -> bytearray:
    batch = kafka_records.encode_batch([(None, value, [], 1000) for value in values])
    if producer_id >= 0:
        struct.pack_into(">qhi", batch, 43, producer_id, 0, sequence)
        struct.pack_into(">I", batch, 17, kafka_records.checksum(batch))
    return batch


def _append(partition, batch: bytearray) -> int:
    header = kafka_records.validate(bytes(batch), max_message_bytes=1 << 20)
    base = partition.high_watermark
    kafka_records.assign(batch, base, 0)
    partition.append_batch(bytes(batch), header.record_count, timestamp=1.0)
    return base


def test_partition_batches_start_offset_and_producer_state_come_back(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    partition = broker.topics.create("t", 1).partitions[0]
    _append(partition, _batch([b"a", b"b"]))
    _append(partition, _batch([b"c"], producer_id=7, sequence=0))
    _append(partition, _batch([b"d", b"e"]))
    partition.delete_records(1)

    broker, data = _restart(tmp_path, data)
    partition = broker.topics.get("t").partitions[0]
    assert (partition.log_start_offset, partition.high_watermark) == (1, 5)
    values = [value for batch in partition.log.read(0) for _, _, _, value, _ in kafka_records.decode_records(batch.payload)]
    assert values == [b"a", b"b", b"c", b"d", b"e"]
    assert 7 in partition.producers  # a retried batch of producer 7 is still recognised
    assert broker.producer_ids.allocate() > 7
    data.close()


# ------------------------------------------------------------------ fsync
def test_fsync_policies_decide_when_waiters_run(tmp_path: Path) -> None:
    for policy, at_once in (("always", True), ("never", True), ("batch", False)):
        broker, data = _open(tmp_path / policy, policy)
        dirty = []
        data.on_dirty = lambda: dirty.append(True)
        broker.topics.create("t", 1)
        ran = []
        data.when_synced(data.sequence, lambda: ran.append(True))
        assert ran == ([True] if at_once else [])
        if not at_once:
            assert dirty == [True]
            sequence, files, directories = data.take_dirty()
            assert files and sequence == data.sequence
            data.fsync(files, directories)
            data.mark_synced(sequence)
            assert ran == [True]
        data.close()
    with pytest.raises(ValueError, match="--fsync"):
        DataDir(tmp_path / "x", "sometimes")


def test_reset_forgets_the_directory(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    broker.vhosts["/"].declare_queue("work", durable=True)
    _publish(broker, "work", b"x")
    broker.topics.create("t", 1)
    broker.reset()
    broker.vhosts["/"].declare_queue("after", durable=True)
    broker, data = _restart(tmp_path, data)
    assert set(broker.vhosts["/"].queues) == {"after"}
    assert broker.topics.get("t") is None
    data.close()


def test_a_big_journal_is_rewritten_as_a_snapshot(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(datadir_module, "META_COMPACT_BYTES", 2000)
    broker, data = _open(tmp_path)
    vhost = broker.vhosts["/"]
    vhost.declare_exchange("x", "topic", durable=True)
    vhost.declare_exchange("x2", "fanout", durable=True)
    vhost.declare_queue("q", durable=True)
    vhost.bind_queue("q", "x", "a.#")
    vhost.bind_exchange("x2", "x", "b.#")
    topic = broker.topics.create("t", 2)
    for n in range(200):  # offset commits make the journal grow
        broker.groups.commit_offsets("g", "", None, -1, [OffsetCommit("t", 0, n, -1, None)])
    broker.producer_ids.allocate()
    before = sum(p.stat().st_size for p in (tmp_path / "meta").iterdir())
    assert before > 2000

    broker, data = _restart(tmp_path, data)
    files = list((tmp_path / "meta").iterdir())
    assert len(files) == 1 and files[0].stat().st_size < before / 4
    broker, data = _restart(tmp_path, data)  # the snapshot alone rebuilds everything
    vhost = broker.vhosts["/"]
    assert {"x", "x2"} <= set(vhost.exchanges) and set(vhost.queues) == {"q"}
    message = Message("x", "a.1", b"", PERSISTENT, persistent=True)
    assert [q.name for q in vhost.route(vhost.exchanges["x"], "a.1", message)] == ["q"]
    assert vhost.exchanges["x"].has_binding(vhost.exchanges["x2"], "b.#", {})
    assert broker.topics.get("t").id == topic.id
    assert broker.groups.committed("g")[("t", 0)].offset == 199
    assert broker.producer_ids.allocate() == 1
    data.close()


def test_stream_queue_messages_come_back_at_their_offsets(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    vhost = broker.vhosts["/"]
    vhost.declare_queue("s", durable=True, arguments={"x-queue-type": "stream"})
    for body in (b"a", b"b", b"c"):
        _publish(broker, "s", body, persistent=False)  # a stream keeps every message
    broker, data = _restart(tmp_path, data)
    log = broker.vhosts["/"].queues["s"].log
    assert [(batch.base_offset, batch.payload.body) for batch in log.read(0)] == [(0, b"a"), (1, b"b"), (2, b"c")]
    _publish(broker, "s", b"d")
    broker, data = _restart(tmp_path, data)
    assert [batch.payload.body for batch in broker.vhosts["/"].queues["s"].log.read(0)] == [b"a", b"b", b"c", b"d"]
    data.close()


def test_compacted_ranges_replace_what_they_cover(tmp_path: Path) -> None:
    broker, data = _open(tmp_path)
    partition = broker.topics.create("t", 1).partitions[0]
    for value in (b"a", b"b", b"c", b"d"):
        _append(partition, _batch([value]))
    kept = [batch for batch in partition.log.read(0) if batch.base_offset in (1, 3)]
    partition.store.compacted(0, 3, [kept[0]])  # as the cleaner reports it: [0, 3) now holds offset 1 only
    broker, data = _restart(tmp_path, data)
    partition = broker.topics.get("t").partitions[0]
    assert [batch.base_offset for batch in partition.log.read(0)] == [1, 3]
    assert partition.high_watermark == 4
    data.close()


def test_lazy_queue_bodies_live_on_disk_and_come_back_when_used(tmp_path: Path) -> None:
    from wiregate.core.message import PagedMessage

    broker, data = _open(tmp_path)
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("lazy", durable=True, arguments={"x-queue-mode": "lazy"})
    _publish(broker, "lazy", b"persistent body")
    _publish(broker, "lazy", b"transient body", persistent=False)
    first, second = list(queue.ready)
    assert isinstance(first.message, PagedMessage) and isinstance(second.message, PagedMessage)
    assert (first.message.body, second.message.body) == (b"persistent body", b"transient body")
    assert queue.ready.bytes == len(b"persistent body") + len(b"transient body")
    taken = queue.take(ack_required=False)  # basic.get no-ack: removed, then read by the channel
    assert taken.message.body == b"persistent body"
    broker, data = _restart(tmp_path, data)
    # only the persistent one was a durable message; the transient body was paged, not kept
    assert [e.message.body for e in broker.vhosts["/"].queues["lazy"].ready] == []
    data.close()


def test_a_queue_past_the_threshold_pages_further_bodies(tmp_path: Path) -> None:
    from wiregate.core.message import PagedMessage

    broker = Broker()
    data = DataDir(tmp_path, "never", page_out_bytes=10)
    data.recover(broker, PropertyBlock)
    queue = broker.vhosts["/"].declare_queue("plain")  # not durable: paging only
    for body in (b"12345", b"67890", b"abcde", b"fghij"):
        _publish(broker, "plain", body, persistent=False)
    kinds = [isinstance(e.message, PagedMessage) for e in queue.ready]
    assert kinds == [False, False, True, True]
    consumer = Collector()
    queue.add_consumer(consumer)
    assert [e.message.body for e in consumer.entries] == [b"12345", b"67890", b"abcde", b"fghij"]
    queue.settle(consumer.entries)
    data.close()


def test_a_stable_groups_generation_and_members_come_back(tmp_path: Path) -> None:
    from wiregate.core.groups import GroupState, JoinRequest

    broker, data = _open(tmp_path)
    coordinator = broker.groups

    def join(member: str) -> list:
        replies: list = []
        coordinator.join(JoinRequest(
            group_id="g", member_id=member, group_instance_id=None, client_id="c", client_host="/127.0.0.1",
            session_timeout_ms=10000, rebalance_timeout_ms=30000, protocol_type="consumer",
            protocols=(("range", b"meta"),),
        ), replies.append)
        broker.scheduler.run_due()
        return replies

    member = join("")[0].member_id  # MEMBER_ID_REQUIRED hands out the id
    joined = join(member)[0]
    replies: list = []
    coordinator.sync("g", member, None, joined.generation_id, "consumer", "range", {member: b"assignment"}, replies.append)
    assert coordinator.get("g").state is GroupState.STABLE

    broker, data = _restart(tmp_path, data)
    group = broker.groups.get("g")
    assert group.state is GroupState.STABLE
    assert (group.generation_id, group.protocol_name, group.leader_id) == (joined.generation_id, "range", member)
    assert group.members[member].assignment == b"assignment"
    # the member carries on: a heartbeat of its generation is accepted
    assert broker.groups.heartbeat("g", member, None, joined.generation_id).name == "NONE"
    data.close()
