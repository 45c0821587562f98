"""The memory high watermark: raises the broker's resource alarm by itself.

RabbitMQ's ``vm_memory_high_watermark``: past the watermark the broker
raises its memory alarm (``Broker.block``), so AMQP connections that publish
receive ``connection.blocked`` and are not read any more, and Kafka Produce
requests are answered with ``throttle_time_ms`` and their connection muted
for that long (``kafka_wire.apis.produce``).  Below the watermark, with some
hysteresis, the alarm clears (``connection.unblocked``).

**What is measured.**  Not the process's RSS, but an estimate of the memory
the broker's *data* holds, summed from counters the core keeps anyway: the
ready bytes and message count of every classic queue, the bytes and batches
of every stream queue and Kafka partition log, the deliveries awaiting an
ack on every AMQP channel (their bodies measured on a sample), and what
every connection has queued for its socket (a consumer that stops reading
moves messages from the queues into that backlog).  Each message and batch
is charged a fixed overhead for its Python objects (measured, see
:data:`MESSAGE_OVERHEAD`).  Why not RSS:

- an embedded server (``wiregate.testing.Server``, the pytest fixtures)
  shares its process with the test and its clients; RSS would count pika's
  own buffers, the test's data, the interpreter, and a blocked publisher
  filling its *client-side* buffer would keep the alarm up for ever;
- CPython rarely gives freed memory back to the operating system, so RSS
  does not fall when a consumer drains a queue and the alarm would not
  clear;
- the data estimate is deterministic and falls as soon as messages leave,
  which is what a test of blocking and unblocking needs.

What it does not count: the interpreter and code (tens of MB), per
connection state and socket buffers (bounded: a blocked connection is not
read), messages held by ``x-delayed-message`` exchanges.  The default
watermark leaves room for them.  One sample walks every queue and partition
(a few attribute reads each); the sampling interval stretches when a sample
gets expensive, so thousands of queues cost well under 1 % of a core.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import trio

logger = logging.getLogger("wiregate.gateway")

#: RabbitMQ's ``connection.blocked`` reason for its memory alarm
ALARM_REASON = "low on memory"

#: Default watermark: 0.2 of the machine's memory (RabbitMQ's is 0.4).  A
#: test broker shares the machine with the tests, their clients and often
#: several parallel workers (pytest-xdist), each with its own embedded
#: server; 0.2 per broker still stops a runaway publisher long before the
#: machine swaps or the OOM killer picks a process, and no ordinary test
#: comes near it.
DEFAULT_WATERMARK = 0.2

#: The alarm clears once the estimate is below this fraction of the watermark
CLEAR_RATIO = 0.9

#: Bytes charged per queued AMQP message on top of its body: the body's
#: bytes object, Message, Entry and PropertyBlock (with its raw bytes and
#: decoded spans), the routing key list, the deque slot.  Measured with
#: tracemalloc: 100 000 messages of 100 bytes with two properties, published
#: by pika, took 948 bytes each.
MESSAGE_OVERHEAD = 850

#: Bytes charged per Kafka batch on top of its wire bytes (Batch object, list slot)
BATCH_OVERHEAD = 200

#: Seconds between samples (20 a second); stretched to keep sampling under 1 % of a core
INTERVAL = 0.05

_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "ki": 2**10,
    "kib": 2**10,
    "kb": 10**3,
    "m": 2**20,
    "mi": 2**20,
    "mib": 2**20,
    "mb": 10**6,
    "g": 2**30,
    "gi": 2**30,
    "gib": 2**30,
    "gb": 10**9,
    "t": 2**40,
    "ti": 2**40,
    "tib": 2**40,
    "tb": 10**12,
}

_WATERMARK = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


@dataclasses.dataclass(frozen=True)
class Watermark:
    """A memory high watermark: a fraction of the machine's memory, or bytes.

    Attributes:
        fraction: Share of :func:`total_memory`, or ``None``.
        absolute: Bytes, or ``None``.
    """

    fraction: float | None = None
    absolute: int | None = None

    def limit(self, total: int | None = None) -> int:
        """The watermark in bytes (a fraction is taken of ``total``, by default the machine's memory)."""
        if self.absolute is not None:
            return self.absolute
        assert self.fraction is not None
        return int(self.fraction * (total if total is not None else total_memory()))

    def __str__(self) -> str:
        if self.absolute is not None:
            return format_bytes(self.absolute)
        return f"{self.fraction:g} of RAM"


def parse_watermark(value: Any) -> Watermark | None:
    """Read a watermark as ``--memory-high-watermark`` and ``Config`` take it.

    Args:
        value: A float (a fraction of RAM, as RabbitMQ's relative
            watermark), an int (bytes), ``None`` or ``"off"`` (no
            watermark), or a string: ``"0.4"`` (a fraction: a number up to
            1 without unit), ``"512MiB"``, ``"1GB"``, ``"2G"``,
            ``"1073741824"`` (bytes).  ``k``/``M``/``G``/``T`` and
            ``KiB``/``MiB``/``GiB``/``TiB`` are powers of 1024, ``kB``/
            ``MB``/``GB``/``TB`` powers of 1000 (RabbitMQ's units).  ``0``
            raises the alarm at once and keeps it raised, as in RabbitMQ.

    Returns:
        The watermark, or ``None`` for no watermark.

    Raises:
        ValueError: Not a watermark.
    """
    if value is None or isinstance(value, Watermark):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a memory watermark: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"memory watermark must not be negative: {value}")
        return Watermark(absolute=value)
    if isinstance(value, float):
        if not 0 <= value < float("inf"):
            raise ValueError(f"memory watermark fraction out of range: {value}")
        return Watermark(fraction=value)
    text = str(value)
    if text.strip().lower() in ("off", "none"):
        return None
    match = _WATERMARK.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a memory watermark: {text!r} (expected e.g. 0.4, 512MiB, 2GB or off)")
    number = float(match.group(1))
    if not match.group(2) and number <= 1:
        return Watermark(fraction=number)
    return Watermark(absolute=int(number * _UNITS[unit]))


def total_memory() -> int:
    """The memory this process may use: physical memory, or the cgroup limit when lower (containers)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as file:
                text = file.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:
            total = int(text)
    return total


def rss() -> int:
    """The process's resident set size in bytes (from ``/proc/self/statm``; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def _log_held(log: Any) -> int:
    batches = sum(len(segment.batches) for segment in log.segments)
    return log.bytes + batches * BATCH_OVERHEAD


#: an output backlog longer than this many chunks is measured on a sample of them
_SAMPLED = 4096


def pending_output(connection: Any) -> int:
    """Bytes a sans-IO connection has queued for its socket and not yet handed to the gateway.

    A consumer that does not read (a no-ack consumer on a stalled socket)
    moves messages out of the queues into this backlog; counting it keeps
    the watermark honest.  Long backlogs are measured on an even sample.
    """
    out = getattr(connection, "_out", None)
    if not out:
        return 0
    count = len(out)
    if count <= _SAMPLED:
        return sum(map(len, out))
    step = count // 1024
    return sum(map(len, out[::step])) * step


def _unacked_held(connection: Any) -> int:
    # deliveries awaiting an ack keep their message; the bodies are measured
    # on the first few of each channel (no walk over every delivery)
    total = 0
    for channel in list(getattr(connection, "channels", {}).values()):
        unacked = getattr(channel, "unacked", None)
        if not unacked:
            continue
        sample = [item[1].message for item in itertools.islice(unacked.values(), 32)]
        average = sum(len(message.body) for message in sample) // len(sample)
        total += len(unacked) * (average + MESSAGE_OVERHEAD)
    return total


def held_bytes(broker: Any, connections: Iterable[Any] = ()) -> int:
    """Estimate the bytes the broker's messages and records occupy (see the module docstring).

    Args:
        broker: The core broker: its queues, stream queues, partitions, and
            the unacknowledged deliveries of its AMQP connections.
        connections: Every open sans-IO protocol connection, whose output
            backlog is counted too.
    """
    total = 0
    for vhost in list(broker.vhosts.values()):
        for queue in list(vhost.queues.values()):
            log = getattr(queue, "log", None)
            if log is not None:  # a stream queue: one Message per offset
                total += log.bytes + len(log) * MESSAGE_OVERHEAD
                continue
            ready = queue.ready
            total += ready.bytes + len(ready) * MESSAGE_OVERHEAD
    for topic in list(broker.topics.by_name.values()):
        for partition in topic.partitions:
            total += _log_held(partition.log)
    for connection in list(broker.connections):
        total += _unacked_held(connection)
    for connection in connections:
        total += pending_output(connection)
    return total


class MemoryMonitor:
    """Samples :func:`held_bytes` and raises or clears the broker's memory alarm.

    Args:
        broker: The core broker (``block``/``unblock``/``blocked_reason``).
        watermark: Anything :func:`parse_watermark` accepts.
        connections: Returns the open sans-IO protocol connections (their
            output backlogs count); none when not given.

    Attributes:
        watermark: The parsed watermark, ``None`` when off.
        limit: The watermark in bytes, ``None`` when off.
        used: The estimate at the last sample.
        alarm: True while this monitor holds the alarm raised.
        interval: Seconds between samples.
    """

    def __init__(
        self,
        broker: Any,
        watermark: Any = DEFAULT_WATERMARK,
        *,
        connections: Callable[[], Iterable[Any]] | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.broker = broker
        self._connections = connections or tuple
        self.watermark: Watermark | None = None
        self.limit: int | None = None
        self.used = 0
        self.alarm = False
        self.interval = interval
        self._base_interval = interval
        self._wake = trio.Event()
        self.set_watermark(watermark, check=False)

    def set_watermark(self, watermark: Any, *, check: bool = True) -> None:
        """Change the watermark (at run time too) and, by default, sample at once.

        Must run in the server's Trio thread when the server is running.
        """
        self.watermark = parse_watermark(watermark)
        self.limit = None if self.watermark is None else self.watermark.limit()
        if check:
            self.check()
        self._wake.set()

    def check(self) -> bool:
        """Take one sample and raise or clear the alarm; returns whether it is raised."""
        self.used = used = held_bytes(self.broker, self._connections())
        limit = self.limit
        if limit is not None and used >= limit:
            if not self.alarm:
                self.alarm = True
                logger.warning(
                    "memory alarm raised: %s held, high watermark %s (%s); publishers are blocked",
                    format_bytes(used),
                    format_bytes(limit),
                    self.watermark,
                )
            # also when another alarm was raised (and cleared) meanwhile
            if self.broker.blocked_reason is None:
                self.broker.block(ALARM_REASON)
        elif self.alarm and (limit is None or used < limit * CLEAR_RATIO):
            self.alarm = False
            logger.warning("memory alarm cleared: %s held, high watermark %s", format_bytes(used), format_bytes(limit or 0))
            if self.broker.blocked_reason == ALARM_REASON:
                self.broker.unblock()
        return self.alarm

    async def run(self) -> None:
        """Sample a few times per second until cancelled."""
        try:
            while True:
                with trio.move_on_after(self.interval):
                    await self._wake.wait()
                self._wake = trio.Event()
                started = time.thread_time()
                try:
                    self.check()
                except Exception as exc:  # a failed sample must not take the server down
                    logger.error("memory sample failed: %s: %s", type(exc).__name__, exc)
                    logger.debug("traceback of the failure above", exc_info=exc)
                # keep sampling under 1 % of a core when there are very many
                # queues; CPU time, not wall time: an embedded server shares
                # the GIL with its test, and waiting for it costs nothing
                cost = time.thread_time() - started
                self.interval = max(self._base_interval, cost * 100)
        finally:
            if self.alarm and self.broker.blocked_reason == ALARM_REASON:
                self.broker.unblock()
            self.alarm = False
