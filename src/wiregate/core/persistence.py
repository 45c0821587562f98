"""What the core tells a data directory, and when.

The core does no I/O.  With ``--data-dir``, the gateway attaches a
persistence object (``wiregate.storage.DataDir``) to the broker, and the
core reports every change that must survive a restart to it:

- **Topology** — durable exchanges and queues, bindings between durable
  ends, Kafka topics, their partitions and config overrides, committed
  offsets, deleted groups, producer ids handed out — as *journal entries*:
  ``journal((target, ...))`` with a tuple naming the core method that
  replays it and its arguments (``("vhost", "/", "declare_queue", args,
  kwargs)``, ``("topics", "create", args)``, ``("groups",
  "restore_offsets", args)``, ``("producer_ids", "skip_past", args)``).
  Recovery calls the same methods with the same arguments, so cascades
  (auto-delete, unbinding on delete) happen again by themselves.
- **Messages of a durable queue** — ``queue_store(vhost, queue)`` returns
  an object set as ``queue.store``; the queue calls ``store.add(entry)``
  for each persistent message it takes, ``store.handed_out(entry,
  ack_required)`` on each delivery, and ``store.remove(entry)`` when an
  entry leaves for good (ack, reject, expiry, overflow, purge, dead
  letter).  ``queue_deleted(vhost, queue)`` drops them all.
- **Kafka partition data** — ``partition_store(partition)`` returns an
  object set as ``partition.store``; ``store.append(base, count, payload,
  timestamp)`` after each append, ``store.start_moved(offset)`` when
  DeleteRecords moves the log start; ``topic_deleted(topic)`` drops a
  topic's files.

Each call writes through to the operating system before it returns (so a
killed process loses nothing it reported); *when* it is on disk depends on
the fsync policy, and the protocol layers hold publisher confirms and
acks=all responses until then (``sequence``/``when_synced``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Persistence(Protocol):
    """The interface described above (implemented by ``wiregate.storage.DataDir``)."""

    #: incremented by every write; compare before/after an operation
    sequence: int

    def journal(self, entry: tuple[Any, ...]) -> None: ...

    def queue_store(self, vhost: str, queue: Any) -> Any: ...

    def queue_deleted(self, vhost: str, queue: Any) -> None: ...

    def partition_store(self, partition: Any) -> Any: ...

    def topic_deleted(self, topic: Any) -> None: ...

    def when_synced(self, sequence: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every write up to ``sequence`` is durable (at once if it is)."""
