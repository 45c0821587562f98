"""Segments, retention and compaction in the core, on a fake clock.

The log's roll rules, Kafka's deleteOldSegments and log cleaner
(core/retention.py) with the Kafka record codec, the cleaner on the
scheduler with broker configs, what clients see through the sans-IO Kafka
connection (Fetch, ListOffsets, DeleteRecords), and stream queue retention.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from crc32c import crc32c
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from wiregate.core import Broker
from wiregate.core.log import Log
from wiregate.core.producers import BatchMetadata, record as record_producer
from wiregate.core.retention import LogPolicy, clean, cleanable, delete_old_segments, to_clean
from wiregate.core.timers import Scheduler
from wiregate.kafka_wire import KafkaConnection, records
from wiregate.kafka_wire.protocol import build, request_class, response_class
from wiregate.kafka_wire.retention import cleaner_settings, ensure_cleaner, log_policy

CODEC = records.COMPACTION_CODEC
T0 = 1_700_000_000.0


# ------------------------------------------------------------ helpers
class Clock:
    """A monotonic and a wall clock that move together."""

    def __init__(self) -> None:
        self.mono = 0.0
        self.wall = T0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds

    @property
    def ms(self) -> int:
        return int(self.wall * 1000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> Broker:
    return Broker(Scheduler(clock=lambda: clock.mono, wall=lambda: clock.wall))


def put(log: Log, size: int = 100, *, ts: int | None = None, at: float = T0, chunk: int | None = None) -> int:
    """Append a payload of ``size`` bytes with record timestamp ``ts`` (ms)."""
    return log.append(b"x" * size, timestamp=at, chunk=log.next_offset if chunk is None else chunk, size=size, max_timestamp=ts)


def kafka_batch(items: list[tuple[bytes | None, bytes | None]], ts: int, *, producer: tuple[int, int, int] | None = None, codec: int = 0) -> bytearray:
    """A magic-2 batch; ``producer`` = (id, epoch, base sequence); codec 1 = gzip (kafka-python's builder)."""
    if codec:
        from kafka.record.default_records import DefaultRecordBatchBuilder

        builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False, producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
        for i, (key, value) in enumerate(items):
            builder.append(i, timestamp=ts, key=key, value=value, headers=[])
        return bytearray(builder.build())
    batch = records.encode_batch([(key, value, [("h", b"1")], ts) for key, value in items])
    if producer is not None:
        producer_id, epoch, sequence = producer
        struct.pack_into(">qhi", batch, 43, producer_id, epoch, sequence)
        struct.pack_into(">I", batch, 17, crc32c(memoryview(batch)[21:]))
    return batch


def append(partition: Any, items: list[tuple[bytes | None, bytes | None]], ts: int, wall: float, **kwargs: Any) -> int:
    batch = kafka_batch(items, ts, **kwargs)
    records.assign(batch, partition.high_watermark, partition.leader_epoch)
    base = partition.append_batch(bytes(batch), len(items), timestamp=wall, max_timestamp=records.max_timestamp(batch))
    producer = kwargs.get("producer")
    if producer is not None:
        meta = BatchMetadata(producer[2], producer[2] + len(items) - 1, base, base + len(items) - 1, ts)
        record_producer(partition.producers, producer[0], producer[1], meta)
    return base


def stored(partition: Any) -> list[tuple[int, bytes | None, bytes | None]]:
    log = partition.log
    return [(o, k, v) for batch in log.read(log.start_offset) for o, _t, k, v, _h in records.decode_records(batch.payload) if o >= log.start_offset]


def valid_crc(batch: bytes) -> bool:
    return struct.unpack_from(">I", batch, 17)[0] == crc32c(memoryview(batch)[21:])


# ------------------------------------------------------------ segments
def test_segment_bytes_rolls_before_the_append_that_would_exceed_it() -> None:
    log = Log()
    log.segment_bytes = 250
    for _ in range(5):
        put(log, 100)
    assert [(s.base_offset, len(s.batches), s.bytes) for s in log.segments] == [(0, 2, 200), (2, 2, 200), (4, 1, 100)]
    # a batch larger than a segment gets a segment of its own
    put(log, 400)
    put(log, 10)
    assert [s.base_offset for s in log.segments] == [0, 2, 4, 5, 6]


def test_segment_ms_compares_record_timestamps_with_the_first_batch() -> None:
    log = Log()
    log.segment_ms = 1000
    put(log, ts=10_000)
    put(log, ts=11_000)  # exactly segment.ms later: not yet
    put(log, ts=11_001)
    assert [s.base_offset for s in log.segments] == [0, 2]
    # records from the past never roll, whatever the wall clock says
    put(log, ts=5_000, at=T0 + 10_000)
    assert len(log.segments) == 2


def test_segment_ms_without_timestamps_uses_the_append_time() -> None:
    log = Log()
    log.segment_ms = 1000
    put(log, ts=-1, at=T0)
    put(log, ts=-1, at=T0 + 0.5)
    put(log, ts=-1, at=T0 + 1.5)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_a_chunk_never_straddles_two_segments() -> None:
    log = Log()
    log.segment_bytes = 150
    for _ in range(3):
        put(log, 100, chunk=7)
    put(log, 100, chunk=8)
    assert [(s.base_offset, len(s.batches)) for s in log.segments] == [(0, 3), (3, 1)]


def test_osiris_rule_rolls_once_the_segment_is_past_its_size() -> None:
    log = Log()
    log.segment_bytes = 250
    log.roll_before_full = False
    for _ in range(5):
        put(log, 100)
    assert [len(s.batches) for s in log.segments] == [3, 2]


def test_on_change_reports_rolls_start_moves_and_replacements() -> None:
    log = Log()
    log.segment_bytes = 100
    events: list[tuple[str, Any]] = []
    log.on_change = lambda event, value: events.append((event, value))
    for _ in range(3):
        put(log, 100)
    log.truncate_before(1)
    log.drop_segments(1)
    assert events == [("roll", 1), ("roll", 2), ("start", 1), ("start", 2)]
    assert log.rewrites == 2


def test_reads_skip_gaps_and_start_at_the_batch_holding_the_offset() -> None:
    log = Log()
    log.segment_bytes = 300
    for _ in range(6):
        log.append(b"y" * 100, timestamp=T0, chunk=log.next_offset, count=3, size=100)
    assert [s.base_offset for s in log.segments] == [0, 9]
    assert [b.base_offset for b in log.read(4)] == [3, 6, 9, 12, 15]
    # a gap: the batch at 3..5 goes, a read from 4 starts at 6
    first = log.segments[0]
    from wiregate.core.log import Segment

    log.replace_segments(0, 1, [Segment(0, [first.batches[0], first.batches[2]])])
    assert [b.base_offset for b in log.read(4)] == [6, 9, 12, 15]
    assert log.batch_at(4).base_offset == 6
    assert log.batch_at(8).base_offset == 6
    assert log.batch_at(18) is None
    assert log.bytes == 500


# ------------------------------------------------------------ retention
def three_segments(log: Log) -> None:
    log.segment_bytes = 200
    for i in range(6):
        put(log, 100, ts=1_000 * (i + 1))


def test_retention_bytes_deletes_whole_oldest_segments() -> None:
    log = Log()
    three_segments(log)
    assert delete_old_segments(log, LogPolicy(retention_ms=-1, retention_bytes=350), 0) == 1
    assert (log.start_offset, log.bytes, [s.base_offset for s in log.segments]) == (2, 400, [2, 4])
    # deleting one more would go below the limit
    assert delete_old_segments(log, LogPolicy(retention_ms=-1, retention_bytes=250), 0) == 0
    assert delete_old_segments(log, LogPolicy(retention_ms=-1, retention_bytes=-1), 0) == 0
    assert delete_old_segments(log, LogPolicy(retention_ms=-1, retention_bytes=200), 0) == 1
    assert log.start_offset == 4


def test_retention_ms_uses_the_largest_timestamp_of_each_segment() -> None:
    log = Log()
    three_segments(log)  # segments' largest timestamps: 2000, 4000, 6000
    assert delete_old_segments(log, LogPolicy(retention_ms=1000), 4_000) == 1
    assert delete_old_segments(log, LogPolicy(retention_ms=1000), 5_000) == 0  # 5000 - 4000 is not > 1000
    assert delete_old_segments(log, LogPolicy(retention_ms=-1), 100_000) == 0
    assert log.start_offset == 2


def test_retention_ms_empties_an_idle_log_by_rolling_first() -> None:
    log = Log()
    three_segments(log)
    assert delete_old_segments(log, LogPolicy(retention_ms=1000), 10_000) == 3
    assert (log.start_offset, log.next_offset, len(log), log.bytes) == (6, 6, 0, 0)
    assert [s.base_offset for s in log.segments] == [6]
    assert put(log, 100, ts=20_000) == 6
    # the new active segment alone, not expired: kept
    assert delete_old_segments(log, LogPolicy(retention_ms=1000), 20_500) == 0


def test_compact_only_policy_keeps_old_segments() -> None:
    log = Log()
    three_segments(log)
    policy = LogPolicy(delete=False, compact=True, retention_ms=1, retention_bytes=0)
    assert delete_old_segments(log, policy, 10**9) == 0
    log.truncate_before(3)  # the log start breach is applied whatever the policy
    assert [s.base_offset for s in log.segments] == [2, 4]
    assert delete_old_segments(log, policy, 10**9) == 0


def test_truncate_before_drops_segments_below_the_one_holding_the_start() -> None:
    log = Log()
    three_segments(log)
    log.truncate_before(5)
    assert [s.base_offset for s in log.segments] == [4]
    assert [b.base_offset for b in log.read(0)] == [5]
    assert (log.start_offset, log.bytes) == (5, 100)


# ------------------------------------------------------------ compaction
@pytest.fixture
def compacted(broker: Broker, clock: Clock) -> Any:
    topic = broker.topics.create("c", 1, {"cleanup.policy": "compact", "segment.bytes": "300", "min.cleanable.dirty.ratio": "0.01"})
    ensure_cleaner(broker)
    return topic.partitions[0]


def test_cleaning_keeps_the_latest_record_per_key_and_the_offsets(compacted: Any, clock: Clock, broker: Broker) -> None:
    for i in range(12):
        append(compacted, [(b"k%d" % (i % 3), b"v%d" % i)], clock.ms, clock.wall)
    log = compacted.log
    active = log.segments[-1].base_offset
    assert len(log.segments) > 2
    policy = log_policy(broker, compacted.topic)
    assert clean(log, policy, CODEC, clock.ms)
    got = stored(compacted)
    cleaned = [(o, k, v) for o, k, v in got if o < active]
    untouched = [(o, k, v) for o, k, v in got if o >= active]
    assert untouched == [(o, b"k%d" % (o % 3), b"v%d" % o) for o in range(active, 12)]
    keys = [k for _o, k, _v in cleaned]
    assert len(keys) == len(set(keys))  # one per key in the cleaned part
    for offset, key, value in cleaned:
        last = max(o for o in range(active) if o % 3 == int(key[1:]))
        assert (offset, value) == (last, b"v%d" % last)
    assert log.start_offset == 0 and log.next_offset == 12
    assert log.clean_offset == active
    for batch in log.batches():
        assert valid_crc(batch.payload)
        assert records.base_offset(batch.payload) == batch.base_offset


def test_rebuilt_batches_keep_offset_deltas_producer_fields_and_headers(clock: Clock) -> None:
    batch = kafka_batch([(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"c", None)], 5_000, producer=(7, 2, 40))
    records.assign(batch, 100, 3)
    rebuilt = records.rebuild_batch(bytes(batch), [101, 102], None)
    assert valid_crc(rebuilt)
    header = records.BatchHeader(len(rebuilt), records._tail.unpack_from(rebuilt, 21))
    assert (records.base_offset(rebuilt), header.last_offset_delta, header.record_count) == (100, 3, 2)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 2, 40)
    assert records.partition_leader_epoch(rebuilt) == 3
    assert records.decode_records(rebuilt) == [(101, 5_000, b"b", b"2", [("h", b"1")]), (102, 5_000, b"a", b"3", [("h", b"1")])]
    # nothing kept: an empty batch that still spans the offsets
    empty = records.rebuild_batch(bytes(batch), [], None)
    header = records.BatchHeader(len(empty), records._tail.unpack_from(empty, 21))
    assert (len(empty), header.record_count, header.last_offset_delta, header.base_timestamp, header.max_timestamp) == (61, 0, 3, -1, 5_000)
    assert valid_crc(empty)
    # a delete horizon goes into baseTimestamp; record timestamps stay
    horizon = records.rebuild_batch(bytes(batch), [103], 9_999)
    assert records.delete_horizon(horizon) == 9_999
    assert records.decode_records(horizon) == [(103, 5_000, b"c", None, [("h", b"1")])]


def test_compressed_batches_are_cleaned_into_uncompressed_ones(compacted: Any, clock: Clock, broker: Broker) -> None:
    append(compacted, [(b"a", b"1"), (b"b", b"2")], clock.ms, clock.wall, codec=1)
    append(compacted, [(b"a", b"x" * 400)], clock.ms, clock.wall)
    append(compacted, [(b"z", b"z")], clock.ms, clock.wall)
    log = compacted.log
    assert len(log.segments) == 3
    unchanged = log.segments[1].batches[0]
    clean(log, log_policy(broker, compacted.topic), CODEC, clock.ms)
    first = log.segments[0].batches[0].payload
    assert first[22] & 0x07 == 0
    assert [(o, k, v) for o, _t, k, v, _h in records.decode_records(first)] == [(1, b"b", b"2")]
    assert log.segments[1].batches[0] is unchanged  # nothing removed: the same bytes


def test_tombstones_stay_until_the_delete_horizon_then_go(broker: Broker, clock: Clock) -> None:
    topic = broker.topics.create(
        "t", 1, {"cleanup.policy": "compact", "segment.bytes": "200", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "60000"}
    )
    ensure_cleaner(broker)
    partition = topic.partitions[0]
    append(partition, [(b"a", b"1")], clock.ms, clock.wall)
    append(partition, [(b"a", None)], clock.ms, clock.wall)
    append(partition, [(b"b", b"2")], clock.ms, clock.wall)
    policy = log_policy(broker, topic)
    clean(partition.log, policy, CODEC, clock.ms)
    assert [(o, k, v) for o, k, v in stored(partition)] == [(1, b"a", None), (2, b"b", b"2")]
    tombstone = partition.log.batch_at(1).payload
    assert records.delete_horizon(tombstone) == clock.ms + 60_000
    # a later cleaning before the horizon keeps it
    clock.advance(30)
    append(partition, [(b"b", b"3")], clock.ms, clock.wall)
    append(partition, [(b"c", b"4")], clock.ms, clock.wall)
    clean(partition.log, policy, CODEC, clock.ms)
    assert (1, b"a", None) in stored(partition)
    # after it, the next cleaning removes it
    clock.advance(31)
    append(partition, [(b"c", b"5")], clock.ms, clock.wall)
    append(partition, [(b"d", b"6")], clock.ms, clock.wall)
    clean(partition.log, policy, CODEC, clock.ms)
    assert all(k != b"a" for _o, k, _v in stored(partition))


def test_an_idempotent_producers_last_batch_stays_empty(compacted: Any, clock: Clock, broker: Broker) -> None:
    log = compacted.log
    append(compacted, [(b"a", b"1")], clock.ms, clock.wall, producer=(5, 0, 0))
    append(compacted, [(b"b", b"1")], clock.ms, clock.wall)
    log.roll()
    append(compacted, [(b"a", b"2"), (b"b", b"2")], clock.ms, clock.wall)
    log.roll()
    append(compacted, [(b"c", b"3")], clock.ms, clock.wall)
    assert [s.base_offset for s in log.segments] == [0, 2, 4]
    policy = log_policy(broker, compacted.topic)
    clean(log, policy, CODEC, clock.ms, producer_last_offsets=[0])
    assert [(b.base_offset, records.record_count(b.payload)) for b in log.batches()] == [(0, 0), (2, 2), (4, 1)]
    assert records.BatchHeader(61, records._tail.unpack_from(log.batch_at(0).payload, 21)).producer_id == 5


def test_dirty_ratio_and_compaction_lags(broker: Broker, clock: Clock) -> None:
    topic = broker.topics.create("r", 1, {"cleanup.policy": "compact", "segment.bytes": "100"})
    ensure_cleaner(broker)
    partition = topic.partitions[0]
    for i in range(4):
        append(partition, [(b"k", b"%d" % i)], clock.ms, clock.wall)
    log = partition.log
    policy = log_policy(broker, topic)
    assert policy.min_cleanable_dirty_ratio == 0.5
    assert cleanable(log, policy, clock.ms) is not None  # all dirty: ratio 1.0
    clean(log, policy, CODEC, clock.ms)
    assert cleanable(log, policy, clock.ms) is None  # nothing dirty
    # min.compaction.lag.ms: segments newer than the lag are not cleanable
    lagged = LogPolicy(compact=True, delete=False, segment_bytes=100, min_compaction_lag_ms=60_000)
    for i in range(3):
        append(partition, [(b"k", b"n%d" % i)], clock.ms, clock.wall)
    assert to_clean(log, lagged, clock.ms).cleanable_bytes == 0
    assert to_clean(log, lagged, clock.ms + 61_000).cleanable_bytes > 0
    # max.compaction.lag.ms forces a cleaning whatever the ratio
    strict = LogPolicy(compact=True, delete=False, segment_bytes=100, min_cleanable_dirty_ratio=0.99, max_compaction_lag_ms=1_000)
    assert cleanable(log, strict, clock.ms) is None
    assert cleanable(log, strict, clock.ms + 5_000) is not None
    assert strict.max_segment_ms == 1_000


def test_cleaned_segments_are_grouped_up_to_segment_bytes(compacted: Any, clock: Clock, broker: Broker) -> None:
    for i in range(10):
        append(compacted, [(b"same", b"%d" % i)], clock.ms, clock.wall)
    log = compacted.log
    before = len(log.segments)
    policy = log_policy(broker, compacted.topic)
    clean(log, policy, CODEC, clock.ms)
    append(compacted, [(b"same", b"last")], clock.ms, clock.wall)
    append(compacted, [(b"other", b"o" * 300)], clock.ms, clock.wall)
    clean(log, policy, CODEC, clock.ms)
    assert len(log.segments) < before
    assert [v for _o, _k, v in stored(compacted)] == [b"last", b"o" * 300]


# ------------------------------------------------------------ the cleaner on the scheduler
def test_retention_runs_every_check_interval_from_broker_configs(broker: Broker, clock: Clock) -> None:
    broker.kafka_configs["log.retention.check.interval.ms"] = "1000"
    broker.kafka_configs["log.retention.ms"] = "5000"  # a broker synonym
    size = len(kafka_batch([(b"k", b"v" * 50)], 0))
    topic = broker.topics.create("d", 1, {"segment.bytes": str(2 * size)})
    ensure_cleaner(broker)
    partition = topic.partitions[0]
    assert log_policy(broker, topic).retention_ms == 5000
    for _ in range(4):
        append(partition, [(b"k", b"v" * 50)], clock.ms, clock.wall)
    assert len(partition.log.segments) == 2
    clock.advance(4)
    broker.scheduler.run_due()
    assert partition.log_start_offset == 0
    clock.advance(2)
    broker.scheduler.run_due()
    assert (partition.log_start_offset, partition.high_watermark) == (4, 4)
    assert append(partition, [(b"k", b"v")], clock.ms, clock.wall) == 4


def test_retention_bytes_applies_right_after_an_append(broker: Broker, clock: Clock) -> None:
    topic = broker.topics.create("b", 1, {"segment.bytes": "200", "retention.bytes": "300"})
    ensure_cleaner(broker)
    partition = topic.partitions[0]
    for _ in range(8):
        append(partition, [(b"k", b"v" * 50)], clock.ms, clock.wall)
    assert partition.log.bytes <= 300 + 200
    assert partition.log_start_offset > 0
    assert partition.log_start_offset == partition.log.segments[0].base_offset


def test_cleaner_runs_after_a_roll_and_every_backoff(broker: Broker, clock: Clock) -> None:
    broker.kafka_configs["log.cleaner.backoff.ms"] = "100"
    assert cleaner_settings(broker).cleaner_backoff_ms == 100
    topic = broker.topics.create("k", 1, {"cleanup.policy": "compact", "segment.bytes": "150"})
    ensure_cleaner(broker)
    partition = topic.partitions[0]
    for i in range(6):
        append(partition, [(b"key", b"%d" % i)], clock.ms, clock.wall)
    broker.scheduler.run_due()  # the roll asked for a cleaning at once
    assert len(stored(partition)) < 6
    assert stored(partition)[-1] == (5, b"key", b"5")


def test_cleaner_enable_false_stops_compaction(broker: Broker, clock: Clock) -> None:
    broker.kafka_configs["log.cleaner.enable"] = "false"
    topic = broker.topics.create("n", 1, {"cleanup.policy": "compact", "segment.bytes": "150"})
    ensure_cleaner(broker)
    for i in range(6):
        append(topic.partitions[0], [(b"key", b"%d" % i)], clock.ms, clock.wall)
    clock.advance(60)
    broker.scheduler.run_due()
    assert len(stored(topic.partitions[0])) == 6


def test_a_reset_broker_gets_a_new_cleaner_and_the_old_one_stops(broker: Broker, clock: Clock) -> None:
    old = ensure_cleaner(broker)
    broker.reset()
    new = ensure_cleaner(broker)
    assert new is not old
    clock.advance(400)
    broker.scheduler.run_due()
    assert old.stopped and not new.stopped


def test_policy_follows_config_changes(broker: Broker) -> None:
    topic = broker.topics.create("p", 1)
    assert log_policy(broker, topic) == LogPolicy()
    broker.kafka_dynamic_default_configs["log.cleanup.policy"] = "compact"
    assert (log_policy(broker, topic).compact, log_policy(broker, topic).delete) == (True, False)
    topic.configs["cleanup.policy"] = "compact,delete"
    topic.configs["retention.bytes"] = "1000"
    policy = log_policy(broker, topic)
    assert (policy.compact, policy.delete, policy.retention_bytes) == (True, True, 1000)


# ------------------------------------------------------------ what clients see
def _request(api_key: int, version: int, **fields: Any) -> bytes:
    cls = request_class(api_key, version)
    header_cls = cls.__header_schema__
    buffer = io.BytesIO()
    header = dict(request_api_key=api_key, request_api_version=version, correlation_id=1)
    if "client_id" in header_cls.__dataclass_fields__:
        header["client_id"] = "test"
    entity_writer(header_cls)(buffer, header_cls(**header))
    entity_writer(cls)(buffer, build(cls, **fields))
    body = buffer.getvalue()
    return struct.pack(">i", len(body)) + body


def _call(conn: KafkaConnection, api_key: int, version: int, **fields: Any) -> Any:
    conn.receive_data(_request(api_key, version, **fields))
    data = conn.data_to_send()
    cls = response_class(api_key, version)
    size = struct.unpack_from(">i", data)[0]
    return entity_reader(cls)(data[4 : 4 + size], 4 + (1 if cls.__flexible__ else 0))[0]


def _fetch(conn: KafkaConnection, topic: str, offset: int) -> Any:
    response = _call(
        conn, 1, 11, max_wait=0, min_bytes=1, max_bytes=1 << 20,
        topics=[dict(topic=topic, partitions=[dict(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)])],
    )
    return response.responses[0].partitions[0]


def _list_offset(conn: KafkaConnection, topic: str, timestamp: int) -> Any:
    response = _call(conn, 2, 7, replica_id=-1, isolation_level=0, topics=[dict(name=topic, partitions=[dict(partition_index=0, timestamp=timestamp)])])
    return response.topics[0].partitions[0]


def test_clients_see_the_start_move_and_out_of_range_below_it(broker: Broker, clock: Clock) -> None:
    broker.kafka_configs["log.retention.check.interval.ms"] = "1000"
    topic = broker.topics.create("r", 1, {"segment.bytes": "200", "retention.ms": "10000"})
    conn = KafkaConnection(broker, peer="test")
    assert _fetch(conn, "r", 0).error_code == ErrorCode.none  # attaches the cleaner
    partition = topic.partitions[0]
    for i in range(4):
        append(partition, [(b"k", b"v" * 50)], clock.ms - (20_000 if i < 2 else 0), clock.wall)
    clock.advance(1)
    broker.scheduler.run_due()
    data = _fetch(conn, "r", 0)
    assert (data.error_code, data.high_watermark, data.log_start_offset) == (ErrorCode.offset_out_of_range, -1, -1)
    data = _fetch(conn, "r", 2)
    assert (data.error_code, data.log_start_offset, data.high_watermark) == (ErrorCode.none, 2, 4)
    assert records.base_offset(bytes(data.records)) == 2
    assert _list_offset(conn, "r", -2).offset == 2
    assert _list_offset(conn, "r", -1).offset == 4


def test_parked_fetch_below_the_new_start_is_answered_at_once(broker: Broker, clock: Clock) -> None:
    broker.kafka_configs["log.retention.check.interval.ms"] = "1000"
    topic = broker.topics.create("w", 1, {"segment.bytes": "200", "retention.bytes": "0"})
    conn = KafkaConnection(broker, peer="test")
    ensure_cleaner(broker)
    partition = topic.partitions[0]
    append(partition, [(b"k", b"v" * 50)], clock.ms, clock.wall)
    conn.receive_data(_request(
        1, 11, max_wait=5000, min_bytes=100_000, max_bytes=1 << 20,
        topics=[dict(topic="w", partitions=[dict(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])],
    ))
    assert conn.data_to_send() == b""  # parked
    clock.advance(1)
    broker.scheduler.run_due()  # retention.bytes=0: everything goes
    assert partition.log_start_offset == 1
    data = conn.data_to_send()
    cls = response_class(1, 11)
    response = entity_reader(cls)(data[4:], 4)[0]
    assert response.responses[0].partitions[0].error_code == ErrorCode.offset_out_of_range


def test_delete_records_is_refused_on_a_compacted_topic(broker: Broker, clock: Clock) -> None:
    broker.topics.create("cc", 1, {"cleanup.policy": "compact"})
    broker.topics.create("cd", 1, {"cleanup.policy": "compact,delete"})
    conn = KafkaConnection(broker, peer="test")
    for name, expected in (("cc", ErrorCode.policy_violation), ("cd", ErrorCode.none)):
        append(broker.topics.get(name).partitions[0], [(b"k", b"v")], clock.ms, clock.wall)
        response = _call(conn, 21, 2, timeout_ms=1000, topics=[dict(name=name, partitions=[dict(partition_index=0, offset=1)])])
        assert response.topics[0].partitions[0].error_code == expected


def test_fetch_over_a_compacted_log_returns_the_batches_after_gaps(compacted: Any, clock: Clock, broker: Broker) -> None:
    conn = KafkaConnection(broker, peer="test")
    for i in range(9):
        append(compacted, [(b"k%d" % (i % 2), b"%d" % i)], clock.ms, clock.wall)
    clean(compacted.log, log_policy(broker, compacted.topic), CODEC, clock.ms)
    kept = [o for o, _k, _v in stored(compacted)]
    assert kept != list(range(9))
    gap = next(o for o in range(9) if o not in kept)
    data = _fetch(conn, "c", gap)
    assert data.error_code == ErrorCode.none
    offsets = [r[0] for r in _decode_all(bytes(data.records))]
    assert offsets == [o for o in kept if o >= gap]  # from the next batch on


def _decode_all(data: bytes) -> list[Any]:
    out = []
    while data:
        size = struct.unpack_from(">i", data, 8)[0] + 12
        out.extend(records.decode_records(data[:size]))
        data = data[size:]
    return out


# ------------------------------------------------------------ stream queues
def _stream(broker: Broker, **arguments: Any) -> Any:
    vhost = broker.vhosts["/"]
    return vhost.declare_queue("s", durable=True, arguments={"x-queue-type": "stream", **arguments})


def test_stream_retention_by_bytes_on_segment_roll(broker: Broker, clock: Clock) -> None:
    from wiregate.core.message import Message

    queue = _stream(broker, **{"x-stream-max-segment-size-bytes": 250, "x-max-length-bytes": 500})
    for i in range(12):
        queue.enqueue(Message("", "s", b"m" * 100, None))
        broker.vhosts["/"].write_batch += 1
    log = queue.log
    assert log.start_offset > 0
    assert all(len(s.batches) == 3 for s in log.segments[:-1])  # past 250 bytes: 300 per segment
    assert log.bytes - log.segments[-1].bytes <= 500
    assert queue.message_count == log.next_offset - log.start_offset


def test_stream_retention_by_age(broker: Broker, clock: Clock) -> None:
    from wiregate.core.message import Message

    queue = _stream(broker, **{"x-stream-max-segment-size-bytes": 150, "x-max-age": "10s"})
    for i in range(4):
        queue.enqueue(Message("", "s", b"m" * 100, None))
        broker.vhosts["/"].write_batch += 1
    assert queue.log.start_offset == 0
    clock.advance(11)
    queue.enqueue(Message("", "s", b"m" * 100, None))
    broker.vhosts["/"].write_batch += 1
    queue.enqueue(Message("", "s", b"m" * 100, None))
    assert queue.log.start_offset == 4
