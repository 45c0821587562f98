"""Kafka topics in the core: a topic is a set of partition logs.

Partitions store record batches as the bytes the producer sent (with the
base offset patched in) in a :class:`~wiregate.core.log.Log`, the structure
stream queues use too.  Waiters (parked Fetch requests) register on a
partition and are called on every append, and when retention moves the
log start offset.

Retention and compaction (``core/retention.py``) run when the Kafka front
end has attached a :class:`~wiregate.core.retention.Cleaner` to the topics
(``Topics.cleaner``): each append then rolls segments by the topic's
``segment.bytes``/``segment.ms`` and applies retention when it is cheap to
see it is due.  A partition's store (``core/persistence.py``) hears of
changes to the log besides appends through ``log.on_change``:
``store.start_moved(offset)`` (DeleteRecords and retention) and, when the
store has them, ``store.compacted(first, end, batches)`` (the cleaner
replaced offsets ``[first, end)`` by ``batches``) and
``store.rolled(base_offset)``.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from .log import Log

class Partition:
    """One partition: a log of record batches plus the waiters on it."""

    def __init__(self, topic: "Topic", index: int) -> None:
        self.topic = topic
        self.index = index
        self.log = Log()
        self.leader_epoch = 0
        #: callables run after every append (parked fetches)
        self.waiters: set[Callable[[], None]] = set()
        #: idempotent producer state: producer id -> recent batches (see producers.py)
        self.producers: dict[int, Any] = {}
        #: the partition's segment files in a data directory (core/persistence.py); None in memory mode
        self.store: Any = None
        self.log.on_change = self._log_changed

    @property
    def high_watermark(self) -> int:
        return self.log.next_offset

    @property
    def log_start_offset(self) -> int:
        return self.log.start_offset

    def notify(self) -> None:
        for waiter in list(self.waiters):
            waiter()

    def append_batch(self, payload: bytes, count: int, *, timestamp: float, max_timestamp: int | None = None) -> int:
        """Append one Kafka record batch and wake the parked fetches.

        Args:
            payload: the batch's bytes, base offset already patched to
                :attr:`high_watermark` (see ``kafka_wire.records``).
            count: records in the batch.
            timestamp: wall-clock seconds of the append.
            max_timestamp: the batch's maxTimestamp in ms (what
                ``retention.ms`` and ``segment.ms`` look at); read from the
                payload by the cleaner's codec when not given.

        Returns:
            The batch's base offset.
        """
        log = self.log
        cleaner = self.topic.cleaner
        policy = None
        if cleaner is not None:
            policy = cleaner.before_append(self.topic, self)
            if max_timestamp is None:
                max_timestamp = cleaner.codec.max_timestamp(payload)
        active = log.segments[-1]
        base = log.append(payload, timestamp=timestamp, chunk=log.next_offset, count=count, size=len(payload), max_timestamp=max_timestamp)
        if self.store is not None:
            self.store.append(base, count, payload, timestamp)
        if cleaner is not None:
            cleaner.after_append(self, policy, log.segments[-1] is not active)
        self.notify()
        return base

    def delete_records(self, offset: int) -> int:
        """Move the log start offset up to ``offset`` (Kafka's DeleteRecords); returns the new start."""
        if offset > self.log.start_offset:
            self.log.truncate_before(offset)
            self.notify()  # a parked fetch now below the start gets its error
        return self.log.start_offset

    def _log_changed(self, event: str, value: Any) -> None:
        store = self.store
        if store is None:
            return
        if event == "start":
            store.start_moved(value)
        elif event == "replace":
            compacted = getattr(store, "compacted", None)
            if compacted is not None:
                compacted(*value)
        elif event == "roll":
            rolled = getattr(store, "rolled", None)
            if rolled is not None:
                rolled(value)


class Topic:
    """A Kafka topic."""

    def __init__(self, name: str, partitions: int, configs: dict[str, str] | None = None, topic_id: uuid.UUID | None = None) -> None:
        self.name = name
        self.id = topic_id or uuid.uuid4()
        #: topic-level config overrides; effective values (with broker
        #: synonyms and Kafka's defaults) come from kafka_wire.configs
        self.configs: dict[str, str] = dict(configs or {})
        self.partitions: list[Partition] = [Partition(self, i) for i in range(partitions)]
        self.deleted = False
        #: the data directory's journal (core/persistence.py); None in memory mode
        self.persistence: Any = None
        #: the Topics holding this topic (set by Topics.create)
        self.owner: Topics | None = None
        #: the front end's resolved retention configs and what they were resolved from
        self.policy_cache: Any = None

    @property
    def cleaner(self) -> Any:
        """The retention and compaction :class:`~wiregate.core.retention.Cleaner`, when one is attached."""
        owner = self.owner
        return owner.cleaner if owner is not None else None

    def set_configs(self, configs: dict[str, str]) -> None:
        """Replace the topic-level config overrides (AlterConfigs)."""
        self.configs.clear()
        self.configs.update(configs)
        if self.persistence is not None:
            self.persistence.journal(("topics", "set_configs", (self.name, dict(configs))))

    def add_partitions(self, total: int) -> None:
        first = len(self.partitions)
        for index in range(first, total):
            self.partitions.append(Partition(self, index))
        if self.persistence is not None and total > first:
            self.persistence.journal(("topics", "add_partitions", (self.name, total)))
            for partition in self.partitions[first:]:
                partition.store = self.persistence.partition_store(partition)


class Topics:
    """All topics of the broker (Kafka has no vhosts: one namespace)."""

    def __init__(self) -> None:
        self.by_name: dict[str, Topic] = {}
        self.by_id: dict[uuid.UUID, Topic] = {}
        #: the data directory's journal (core/persistence.py); None in memory mode
        self.persistence: Any = None
        #: retention and compaction (core/retention.py), attached by the Kafka front end; None until then
        self.cleaner: Any = None

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def get(self, name: str) -> Topic | None:
        return self.by_name.get(name)

    def create(self, name: str, partitions: int, configs: dict[str, str] | None = None, topic_id: uuid.UUID | None = None) -> Topic:
        topic = Topic(name, partitions, configs, topic_id)
        topic.owner = self
        self.by_name[name] = topic
        self.by_id[topic.id] = topic
        persistence = self.persistence
        if persistence is not None:
            persistence.journal(("topics", "create", (name, partitions, dict(topic.configs), topic.id)))
            topic.persistence = persistence
            for partition in topic.partitions:
                partition.store = persistence.partition_store(partition)
        return topic

    def add_partitions(self, name: str, total: int) -> None:
        """Grow a topic by name (journal replay)."""
        topic = self.by_name.get(name)
        if topic is not None:
            topic.add_partitions(total)

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        """Replace a topic's config overrides by name (journal replay)."""
        topic = self.by_name.get(name)
        if topic is not None:
            topic.set_configs(configs)

    def delete_named(self, name: str) -> None:
        """Delete a topic by name if it exists (journal replay)."""
        topic = self.by_name.get(name)
        if topic is not None:
            self.delete(topic)

    def delete(self, topic: Topic) -> None:
        topic.deleted = True
        self.by_name.pop(topic.name, None)
        self.by_id.pop(topic.id, None)
        if topic.persistence is not None:
            topic.persistence.journal(("topics", "delete_named", (topic.name,)))
            topic.persistence.topic_deleted(topic)
            topic.persistence = None
        for partition in topic.partitions:
            partition.notify()
