"""Time for the core: an injected clock and a heap of deadlines.

The core never sleeps.  It records deadlines (message TTL at a queue head,
queue expiry, delayed messages) here; the gateway asks for the next
deadline, sleeps until then and calls :meth:`Scheduler.run_due`.  Tests
drive a fake clock instead.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable


class Timer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """Deadlines on a monotonic clock, plus the wall clock for timestamps.

    Args:
        clock: monotonic seconds (``time.monotonic`` by default).
        wall: seconds since the epoch (``time.time``), for headers such as
            ``x-death``'s ``time``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.wall = wall
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        #: called when a new deadline is earlier than every earlier one
        self.on_change: Callable[[], None] | None = None

    def now(self) -> float:
        return self.clock()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, callback)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (when, next(self._counter), timer))
        if self.on_change is not None and (earliest is None or when < earliest):
            self.on_change()
        return timer

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def run_due(self, now: float | None = None) -> int:
        """Run every callback whose deadline has passed; returns how many ran."""
        now = self.clock() if now is None else now
        heap = self._heap
        ran = 0
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            timer.cancelled = True
            timer.callback()
            ran += 1
        return ran
