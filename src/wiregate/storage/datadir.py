"""The data directory: what ``wiregate serve --data-dir DIR`` keeps on disk.

Layout::

    DIR/meta/NNNNNNNNNN.journal           topology, offsets, producer ids (pickled journal entries)
    DIR/queues/<vhost>/<queue>/NNNNNNNNNN.seg
                                          a durable queue's persistent messages:
                                          E(nqueue) / D(elivered) / R(emoved) records
                                          (a stream queue: B(atch) records as below)
    DIR/topics/<topic id>/<partition>/<base offset>.seg
                                          Kafka record batches in their wire form,
                                          plus S(tart offset) and C(ompacted) records

Names of vhosts and queues are hex-encoded (any byte is allowed in them).
Every file is append-only with per-record CRC-32C (see segments.py);
recovery reads each up to its first torn record and truncates it there.

Fsync policies (``--fsync``):

- ``always``: every record is fsynced before the call that wrote it
  returns; a confirm or acks=all answer means the data is on the disk.
- ``batch`` (default): records are written at once and fsynced together a
  few milliseconds later (group commit); confirms and acks=all answers wait
  for that fsync.  Same guarantee as ``always``, at a fraction of the cost.
- ``never``: records are written at once and never fsynced; confirms go out
  when the write returns.  A killed process loses nothing (the data is in
  the operating system's page cache); a crash of the machine can lose the
  last seconds.

In every policy a write reaches the operating system before anything that
depends on it is sent, so ``kill -9`` of the server never loses an
acknowledged message or record.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import shutil
import struct
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wiregate.core import Broker
from wiregate.core.message import Message, PagedMessage
from wiregate.kafka_wire import records as kafka_records
from wiregate.core import producers as kafka_producers
from wiregate.core.groups import group_metadata

from .segments import FRAME_OVERHEAD, SegmentFile, fsync_directory, recover_file, segment_paths

log = logging.getLogger("wiregate.storage")

FSYNC_POLICIES = ("always", "batch", "never")
#: a queue or journal segment rolls past this size
QUEUE_SEGMENT_BYTES = 16 * 1024 * 1024
META_SEGMENT_BYTES = 64 * 1024 * 1024
#: a queue whose ready bodies exceed this keeps further bodies on disk (--page-out-bytes)
DEFAULT_PAGE_OUT_BYTES = 64 * 1024 * 1024
#: at start-up, a journal bigger than this is rewritten as a snapshot
META_COMPACT_BYTES = 8 * 1024 * 1024
#: partition segment files roll past this size (Kafka's own segment.bytes
#: governs retention in memory; files follow the log start)
PARTITION_SEGMENT_BYTES = 64 * 1024 * 1024

_u64 = struct.Struct(">Q")
_batch_head = struct.Struct(">cQIxxxxd")  # kind, base offset, count, pad, timestamp
_start = struct.Struct(">cQ")
_message_head = struct.Struct(">cQqIH")  # kind, seq, expiration ms or -1, priority+1, routing key count


def _hex(name: str) -> str:
    return name.encode().hex() or "_"


class DataDir:
    """The persistence object the core reports to (see ``wiregate.core.persistence``).

    Args:
        path: The directory (created when missing).
        fsync: ``"always"``, ``"batch"`` or ``"never"``.

    Attributes:
        sequence: Incremented by every write.
        synced: Every write up to this one is durable under the policy.
        on_dirty: Called (by the gateway's group-commit task) when a write
            leaves data to be fsynced and none was pending before.
    """

    def __init__(self, path: Path, fsync: str = "batch", page_out_bytes: int = DEFAULT_PAGE_OUT_BYTES) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"--fsync must be one of {', '.join(FSYNC_POLICIES)}, not {fsync!r}")
        self.path = Path(path)
        self.policy = fsync
        #: a queue's ready bodies past this many bytes are paged out (lazy queues: from 0)
        self.page_out_bytes = page_out_bytes
        self.sequence = 0
        self.synced = 0
        self.on_dirty: Callable[[], None] | None = None
        self._dirty: set[SegmentFile] = set()
        self._new_directories: set[Path] = set()
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self._meta: SegmentFile | None = None
        self._queues: dict[tuple[str, str], QueueStore | LogStore] = {}
        self._partitions: dict[tuple[Any, int], LogStore] = {}
        self._broker: Broker | None = None
        self.path.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ writing
    def write(self, segment: SegmentFile, payload: bytes) -> None:
        segment.append(payload)
        self.sequence += 1
        if self.policy == "always":
            segment.fsync()
            self.synced = self.sequence
        elif self.policy == "never":
            self.synced = self.sequence
        else:
            was_clean = not self._dirty
            self._dirty.add(segment)
            if was_clean and self.on_dirty is not None:
                self.on_dirty()

    def new_directory(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.policy == "always":
            fsync_directory(directory)
            fsync_directory(directory.parent)
        elif self.policy == "batch":
            self._new_directories.add(directory)

    def when_synced(self, sequence: int, callback: Callable[[], None]) -> None:
        if sequence <= self.synced:
            callback()
        else:
            self._waiting.append((sequence, callback))

    def take_dirty(self) -> tuple[int, list[SegmentFile], list[Path]]:
        """What a group commit must fsync: (sequence it covers, files, new directories)."""
        files, self._dirty = list(self._dirty), set()
        directories, self._new_directories = list(self._new_directories), set()
        return self.sequence, files, directories

    @staticmethod
    def fsync(files: list[SegmentFile], directories: list[Path]) -> None:
        """fsync files and new directories (safe to run in a worker thread)."""
        for directory in directories:
            fsync_directory(directory)
            fsync_directory(directory.parent)
        for segment in files:
            segment.fsync()

    def mark_synced(self, sequence: int) -> None:
        """Every write up to ``sequence`` is durable: run what waited for it."""
        if sequence <= self.synced:
            return
        self.synced = sequence
        waiting = self._waiting
        while waiting and waiting[0][0] <= sequence:
            _, callback = waiting.popleft()
            callback()

    def sync_now(self) -> None:
        """A synchronous group commit (shutdown, tests)."""
        sequence, files, directories = self.take_dirty()
        self.fsync(files, directories)
        self.mark_synced(sequence)

    # ------------------------------------------------------------ journal
    def journal(self, entry: tuple[Any, ...]) -> None:
        meta = self._meta
        if meta is not None and meta.size >= META_SEGMENT_BYTES and self._broker is not None:
            self.compact_journal()  # the snapshot holds the state up to here
            meta = self._meta
        if meta is None:
            meta = self._open_meta()
        self.write(meta, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))

    def compact_journal(self) -> None:
        """Replace the journal by a snapshot of the broker's durable state.

        The snapshot goes to a new file, which is fsynced before the old
        files are deleted; a crash in between replays the old journal and
        then the snapshot, which restates the same state.
        """
        assert self._broker is not None
        directory = self.path / "meta"
        self.new_directory(directory)
        old = list(segment_paths(directory, ".journal"))
        number = int(old[-1].name.split(".")[0]) + 1 if old else 0
        if self._meta is not None:
            self._meta.close()
        snapshot = SegmentFile(directory / f"{number:010d}.journal")
        for entry in snapshot_entries(self._broker):
            snapshot.append(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL))
        snapshot.fsync()
        fsync_directory(directory)
        for path in old:
            path.unlink(missing_ok=True)
        fsync_directory(directory)
        self._meta = snapshot

    def _open_meta(self) -> SegmentFile:
        # The first write after start-up continues the newest journal file
        # (recovery cut its torn tail); a full file rolls to the next number.
        directory = self.path / "meta"
        self.new_directory(directory)
        existing = list(segment_paths(directory, ".journal"))
        number = int(existing[-1].name.split(".")[0]) if existing else 0
        if self._meta is not None:
            self._meta.close()
            number += 1
        self._meta = SegmentFile(directory / f"{number:010d}.journal")
        return self._meta

    # ------------------------------------------------------------ queues
    def queue_store(self, vhost: str, queue: Any) -> QueueStore | LogStore:
        key = (vhost, queue.name)
        store = self._queues.get(key)
        if store is None:
            directory = self.path / "queues" / _hex(vhost) / _hex(queue.name)
            if getattr(queue, "log", None) is not None:  # a stream queue: a log of messages
                self.new_directory(directory)
                store = LogStore(self, directory, _encode_stream_message)
            else:
                store = QueueStore(self, directory, queue)
            self._queues[key] = store
        return store

    def queue_deleted(self, vhost: str, queue: Any) -> None:
        store = self._queues.pop((vhost, queue.name), None)
        if store is not None:
            store.drop()

    # ------------------------------------------------------------ topics
    def partition_store(self, partition: Any) -> LogStore:
        key = (partition.topic.id, partition.index)
        store = self._partitions.get(key)
        if store is None:
            directory = self.path / "topics" / partition.topic.id.hex / str(partition.index)
            self.new_directory(directory)
            store = self._partitions[key] = LogStore(self, directory)
        return store

    def topic_deleted(self, topic: Any) -> None:
        for partition in topic.partitions:
            store = self._partitions.pop((topic.id, partition.index), None)
            if store is not None:
                store.close()
        shutil.rmtree(self.path / "topics" / topic.id.hex, ignore_errors=True)

    # ------------------------------------------------------------ lifecycle
    def reset(self) -> None:
        """Forget everything on disk (the broker was reset for the next test)."""
        self.close()
        for child in ("meta", "queues", "topics"):
            shutil.rmtree(self.path / child, ignore_errors=True)
        self._queues.clear()
        self._partitions.clear()
        self._dirty.clear()
        self.mark_synced(self.sequence)

    def close(self) -> None:
        if self._meta is not None:
            self._meta.close()
            self._meta = None
        for store in self._queues.values():
            store.close()
        for partition_store in self._partitions.values():
            partition_store.close()

    # ------------------------------------------------------------ recovery
    def recover(self, broker: Broker, make_properties: Callable[[bytes], Any]) -> dict[str, int]:
        """Rebuild ``broker`` from the directory, then report every change to it from now on.

        Args:
            broker: A fresh broker.
            make_properties: Turns stored AMQP property bytes back into the
                protocol's property object (``wiregate.amqp.properties.PropertyBlock``).

        Returns:
            Counts for the start-up log line.
        """
        counts = {"journal entries": 0, "messages": 0, "batches": 0}
        journal_bytes = 0
        for path in segment_paths(self.path / "meta", ".journal"):
            journal_bytes += path.stat().st_size
            for payload in recover_file(path):
                try:
                    entry = pickle.loads(payload)
                    _replay(broker, entry)
                except Exception as exc:  # one bad entry must not cost the rest
                    log.warning("data dir %s: journal entry skipped: %s: %s", self.path, type(exc).__name__, exc)
                counts["journal entries"] += 1
        broker.attach_persistence(self)
        self._broker = broker
        if journal_bytes > META_COMPACT_BYTES:
            self.compact_journal()
        for vhost in broker.vhosts.values():
            for queue in vhost.queues.values():
                if queue.durable:
                    store = self.queue_store(vhost.name, queue)
                    if isinstance(store, LogStore):
                        counts["messages"] += store.load_stream(queue, make_properties)
                    else:
                        counts["messages"] += store.load(queue, make_properties)
                    queue.store = store
        for topic in broker.topics.by_name.values():
            topic.persistence = self
            for partition in topic.partitions:
                store = self.partition_store(partition)
                counts["batches"] += store.load(partition, broker)
                partition.store = store
        self._remove_orphans()
        return counts

    def _remove_orphans(self) -> None:
        # Directories of queues and topics deleted while a crash interrupted the cleanup.
        live_queues = {store.directory for store in self._queues.values()}
        for vhost_dir in (self.path / "queues").glob("*"):
            for queue_dir in vhost_dir.glob("*"):
                if queue_dir not in live_queues:
                    shutil.rmtree(queue_dir, ignore_errors=True)
        live_topics = {store.directory.parent for store in self._partitions.values()}
        for topic_dir in (self.path / "topics").glob("*"):
            if topic_dir not in live_topics:
                shutil.rmtree(topic_dir, ignore_errors=True)


def _replay(broker: Broker, entry: tuple[Any, ...]) -> None:
    target = entry[0]
    if target == "vhost":
        _, vhost_name, method, args, kwargs = entry
        getattr(broker.add_vhost(vhost_name), method)(*args, **kwargs)
        return
    owner = {"topics": broker.topics, "groups": broker.groups, "producer_ids": broker.producer_ids}[target]
    _, method, args = entry
    if target == "topics" and method == "create":
        existing = broker.topics.get(args[0])
        if existing is not None and existing.id == args[3]:
            return  # restated by a snapshot written after the journal it follows
    getattr(owner, method)(*args)


def snapshot_entries(broker: Broker) -> list[tuple[Any, ...]]:
    """Journal entries that rebuild the broker's durable state from nothing."""
    entries: list[tuple[Any, ...]] = []
    for vhost in broker.vhosts.values():
        name = vhost.name
        durable_exchanges = [
            x for x in vhost.exchanges.values() if x.durable and x.name and not x.name.startswith("amq.")
        ]
        for exchange in durable_exchanges:
            entries.append((
                "vhost", name, "declare_exchange", (exchange.name, exchange.type),
                dict(durable=True, auto_delete=exchange.auto_delete, internal=exchange.internal, arguments=exchange.arguments),
            ))
        durable_queues = [q for q in vhost.queues.values() if q.durable and q.owner is None]
        for queue in durable_queues:
            entries.append(("vhost", name, "declare_queue", (queue.name,), dict(durable=True, auto_delete=queue.auto_delete, arguments=queue.arguments)))
        for exchange in vhost.exchanges.values():
            if not exchange.durable or not exchange.name:
                continue
            for binding in exchange.bindings.values():
                destination = binding.destination
                if not destination.durable:
                    continue
                if destination in durable_queues:
                    entries.append(("vhost", name, "bind_queue", (destination.name, exchange.name, binding.routing_key, binding.arguments), {}))
                elif getattr(destination, "bindings", None) is not None:
                    entries.append(("vhost", name, "bind_exchange", (destination.name, exchange.name, binding.routing_key, binding.arguments), {}))
    for topic in broker.topics.by_name.values():
        entries.append(("topics", "create", (topic.name, len(topic.partitions), dict(topic.configs), topic.id)))
    for group_id, group in broker.groups.groups.items():
        if group.state.value in ("Stable", "Empty") and (group.generation_id or group.members):
            entries.append(("groups", "restore_group", (group_metadata(group),)))
        if group.offsets:
            stored = [(topic, partition, committed) for (topic, partition), committed in group.offsets.items()]
            entries.append(("groups", "restore_offsets", (group_id, stored)))
    next_id = broker.producer_ids._next
    if next_id > 0:
        entries.append(("producer_ids", "skip_past", (next_id - 1,)))
    return entries


class QueueStore:
    """The persistent messages of one durable queue."""

    def __init__(self, datadir: DataDir, directory: Path, queue: Any) -> None:
        self.datadir = datadir
        self.directory = directory
        self.queue = queue
        #: seq -> number of the segment holding its E (or P) record
        self._live: dict[int, int] = {}
        self._delivered: set[int] = set()
        #: segment number -> live messages enqueued in it
        self._counts: dict[int, int] = {}
        self._segments: dict[int, SegmentFile] = {}
        self._current: SegmentFile | None = None
        self._number = -1

    def _segment(self) -> SegmentFile:
        current = self._current
        if current is None or current.size >= QUEUE_SEGMENT_BYTES:
            if current is None:
                # created on first use: most non-durable queues never page
                self.datadir.new_directory(self.directory)
            self._number += 1
            current = self._current = SegmentFile(self.directory / f"{self._number:010d}.seg")
            self._segments[self._number] = current
            self._counts.setdefault(self._number, 0)
        return current

    # --------------------------------------------------------- the queue's calls
    def add(self, entry: Any) -> None:
        """Journal a persistent message of a durable queue (E); page a body out (E or P).

        P records hold transient bodies paged out to save memory: never
        recovered, so they need no fsync and raise no durability mark.
        """
        message = entry.message
        queue = self.queue
        persistent = message.persistent and queue.durable
        page = queue.lazy or queue.ready.bytes > self.datadir.page_out_bytes
        if not persistent and not page:
            return
        segment = self._segment()
        payload = _encode_message(entry.seq, message, b"E" if persistent else b"P")
        start = segment.size
        if persistent:
            self.datadir.write(segment, payload)
        else:
            segment.append(payload)
        self._live[entry.seq] = self._number
        self._counts[self._number] += 1
        if page and message.size:
            body_at = start + FRAME_OVERHEAD + len(payload) - message.size
            entry.message = PagedMessage(message, functools.partial(_read_at, segment.path, body_at, message.size))

    def handed_out(self, entry: Any, ack_required: bool) -> None:
        seq = entry.seq
        if seq not in self._live:
            return
        if not ack_required:
            self.remove(entry)
        elif seq not in self._delivered:
            self._delivered.add(seq)
            self.datadir.write(self._segment(), b"D" + _u64.pack(seq))

    def remove(self, entry: Any) -> None:
        seq = entry.seq
        number = self._live.pop(seq, None)
        if number is None:
            return
        self._delivered.discard(seq)
        self.datadir.write(self._segment(), b"R" + _u64.pack(seq))
        self._counts[number] -= 1
        if not self._counts[number] and isinstance(entry.message, PagedMessage):
            # its segment may go now, while the caller still reads the body (basic.get no-ack)
            message = entry.message
            entry.message = Message(
                message.exchange, message.routing_key, message.body, message.properties,
                persistent=message.persistent, priority=message.priority, expiration=message.expiration,
                routing_keys=message.routing_keys, decode_headers=message._decode_headers,
            )
        self._collect()

    def _collect(self) -> None:
        # Only from the oldest: a later segment may hold the R records that
        # keep messages of an older one from coming back.
        while self._counts:
            oldest = min(self._counts)
            if self._counts[oldest] or oldest == self._number:
                return
            del self._counts[oldest]
            segment = self._segments.pop(oldest, None)
            if segment is not None:
                segment.delete()
            else:
                (self.directory / f"{oldest:010d}.seg").unlink(missing_ok=True)

    # --------------------------------------------------------- recovery
    def load(self, queue: Any, make_properties: Callable[[bytes], Any]) -> int:
        """Read the segments back into ``queue`` (ready, in order, redelivered when delivered before)."""
        pending: dict[int, tuple[int, bytes]] = {}
        delivered: set[int] = set()
        numbers = []
        for path in segment_paths(self.directory, ".seg"):
            number = int(path.name.split(".")[0])
            numbers.append(number)
            for payload in recover_file(path):
                kind = payload[:1]
                seq = _u64.unpack_from(payload, 1)[0]
                if kind == b"E":  # P: a transient body paged out, gone with the restart
                    pending[seq] = (number, payload)
                elif kind == b"D":
                    delivered.add(seq)
                elif kind == b"R":
                    pending.pop(seq, None)
                    delivered.discard(seq)
        self._number = max(numbers, default=-1)
        self._counts = {number: 0 for number in numbers}
        for seq in sorted(pending):
            number, payload = pending[seq]
            message = _decode_message(payload, make_properties)
            queue.restore(message, seq, seq in delivered)
            self._live[seq] = number
            self._counts[number] += 1
        # Recovered messages are ready again; their next delivery writes D anew.
        self._collect()
        return len(pending)

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        for segment in self._segments.values():
            segment.close()
        self._segments.clear()
        self._current = None


def _read_at(path: Path, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


def _encode_message(seq: int, message: Message, kind: bytes = b"E") -> bytes:
    keys = message.routing_keys
    routing_keys = list(keys) if len(keys) != 1 or keys[0] != message.routing_key else []
    parts = [
        _message_head.pack(
            kind,
            seq,
            -1 if message.expiration is None else message.expiration,
            0 if message.priority is None else message.priority + 1,
            len(routing_keys),
        ),
        _short(message.exchange),
        _short(message.routing_key),
        *(_short(key) for key in routing_keys),
        _long(getattr(message.properties, "raw", b"") or b""),
        _long(message.body),
    ]
    return b"".join(parts)


def _short(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def _long(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _decode_message(payload: bytes, make_properties: Callable[[bytes], Any]) -> Message:
    _, _seq, expiration, priority, key_count = _message_head.unpack_from(payload, 0)
    pos = _message_head.size
    texts = []
    for _ in range(2 + key_count):
        (length,) = struct.unpack_from(">H", payload, pos)
        texts.append(payload[pos + 2 : pos + 2 + length].decode())
        pos += 2 + length
    (length,) = struct.unpack_from(">I", payload, pos)
    properties = make_properties(payload[pos + 4 : pos + 4 + length])
    pos += 4 + length
    (length,) = struct.unpack_from(">I", payload, pos)
    body = payload[pos + 4 : pos + 4 + length]
    exchange, routing_key, *routing_keys = texts
    return Message(
        exchange,
        routing_key,
        body,
        properties,
        persistent=True,
        priority=None if priority == 0 else priority - 1,
        expiration=None if expiration < 0 else expiration,
        routing_keys=routing_keys or None,
        decode_headers=getattr(properties, "headers", None),
    )


class LogStore:
    """One append-only log's batches: a Kafka partition (wire-form record
    batches) or a stream queue (AMQP messages, one per offset).

    Records: B(atch) ``base, count, timestamp, payload``; S(tart) ``offset``
    (retention, DeleteRecords); C(ompacted) ``first, end, batches`` (the
    cleaner replaced offsets ``[first, end)``).  A file is deleted once the
    start offset has passed its last batch.
    """

    def __init__(self, datadir: DataDir, directory: Path, encode: Callable[[Any], bytes] = bytes) -> None:
        self.datadir = datadir
        self.directory = directory
        self._encode = encode
        self._current: SegmentFile | None = None
        #: segment file -> [first base offset, next offset after its last batch]
        self._ranges: dict[Path, list[int]] = {}

    def _segment(self, base: int) -> SegmentFile:
        current = self._current
        if current is None or current.size >= PARTITION_SEGMENT_BYTES:
            if current is not None:
                current.close()
            current = self._current = SegmentFile(self.directory / f"{base:020d}.seg")
            self._ranges.setdefault(current.path, [base, base])
        return current

    def append(self, base: int, count: int, payload: Any, timestamp: float, chunk: int | None = None) -> None:
        current = self._segment(base)
        self.datadir.write(current, _batch_head.pack(b"B", base, count, timestamp) + self._encode(payload))
        self._ranges[current.path][1] = base + count

    def start_moved(self, offset: int) -> None:
        current = self._segment(offset)
        self.datadir.write(current, _start.pack(b"S", offset))
        for path, (_first, end) in list(self._ranges.items()):
            if end <= offset and path != current.path:
                del self._ranges[path]
                path.unlink(missing_ok=True)

    def compacted(self, first: int, end: int, batches: list[Any]) -> None:
        parts = [struct.pack(">cQQI", b"C", first, end, len(batches))]
        for batch in batches:
            record = _batch_head.pack(b"B", batch.base_offset, batch.count, batch.timestamp) + self._encode(batch.payload)
            parts.append(struct.pack(">I", len(record)) + record)
        self.datadir.write(self._segment(first), b"".join(parts))

    def scan(self) -> tuple[list[tuple[int, int, float, bytes]], int]:
        """Every live batch ``(base, count, timestamp, stored payload)`` in offset order, and the start offset."""
        batches: dict[int, tuple[int, int, float, bytes]] = {}
        start = 0
        for path in segment_paths(self.directory, ".seg"):
            first = None
            last = None
            for payload in recover_file(path):
                kind = payload[:1]
                if kind == b"S":
                    start = max(start, _start.unpack_from(payload, 0)[1])
                elif kind == b"B":
                    item = _batch_item(payload)
                    batches[item[0]] = item
                    first = item[0] if first is None else first
                    last = item[0] + item[1]
                elif kind == b"C":
                    _, lo, hi, count = struct.unpack_from(">cQQI", payload, 0)
                    for base in [b for b in batches if lo <= b < hi]:
                        del batches[base]
                    pos = struct.calcsize(">cQQI")
                    for _ in range(count):
                        (length,) = struct.unpack_from(">I", payload, pos)
                        item = _batch_item(payload[pos + 4 : pos + 4 + length])
                        batches[item[0]] = item
                        pos += 4 + length
            self._ranges[path] = [first if first is not None else start, last if last is not None else start]
            self._current = None
        paths = list(self._ranges)
        if paths:
            self._current = SegmentFile(paths[-1])
        return [batches[base] for base in sorted(batches) if base + batches[base][1] > start], start

    def load(self, partition: Any, broker: Broker) -> int:
        """Read a Kafka partition back into its log; rebuild idempotent producer state."""
        log_ = partition.log
        items, start = self.scan()
        for base, count, timestamp, batch in items:
            log_.restore(batch, base_offset=base, timestamp=timestamp, chunk=base, count=count, size=len(batch), max_timestamp=kafka_records.max_timestamp(batch))
            _rebuild_producer(partition, broker, batch, base)
        if start > log_.start_offset:
            log_.truncate_before(start)
        return len(items)

    def load_stream(self, queue: Any, make_properties: Callable[[bytes], Any]) -> int:
        """Read a stream queue's messages back into its log."""
        log_ = queue.log
        items, start = self.scan()
        for base, count, timestamp, payload in items:
            message = _decode_message(payload, make_properties)
            log_.restore(message, base_offset=base, timestamp=timestamp, chunk=base, count=count, size=len(message.body))
        if start > log_.start_offset:
            log_.truncate_before(start)
        return len(items)

    # a durable queue's store must answer the queue's calls; a stream never removes single entries
    def add(self, entry: Any) -> None:
        pass

    def handed_out(self, entry: Any, ack_required: bool) -> None:
        pass

    def remove(self, entry: Any) -> None:
        pass

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def _batch_item(payload: bytes) -> tuple[int, int, float, bytes]:
    _, base, count, timestamp = _batch_head.unpack_from(payload, 0)
    return base, count, timestamp, payload[_batch_head.size :]


def _encode_stream_message(message: Message) -> bytes:
    return _encode_message(0, message)


def _rebuild_producer(partition: Any, broker: Broker, batch: bytes, base: int) -> None:
    # Kafka rebuilds producer state by reading the log on start-up; so does this.
    try:
        header = kafka_records.BatchHeader(len(batch), kafka_records._tail.unpack_from(batch, 21))
    except struct.error:
        return
    if not header.has_producer_id:
        return
    metadata = kafka_producers.BatchMetadata(
        header.base_sequence, header.last_sequence, base, base + header.last_offset_delta, header.max_timestamp
    )
    kafka_producers.record(partition.producers, header.producer_id, header.producer_epoch, metadata)
    broker.producer_ids.skip_past(header.producer_id)
