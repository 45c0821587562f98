"""What both protocol fuzzers share: crash detection, failure records, byte mutations.

A *crash* is anything the server must never do with hostile input: an
exception escaping ``receive_data`` (or a timer callback), or an "internal
error" log record — the protocol modules turn an unexpected exception into
``log.exception(...)`` plus a closed connection, so a bug shows up only in
the log.  :class:`CrashLog` collects every ERROR record of the ``wiregate``
loggers while a campaign runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import struct
from collections.abc import Iterator
from typing import Any

#: values that sit on the edges of the integer fields of both protocols
INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING_16 = (0, 1, 2, 0x7FFF, 0x8000, 0xFFFF)
INTERESTING_32 = (0, 1, 2, 7, 8, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 4096, 131072, 131073)


@dataclasses.dataclass
class Failure:
    """One broken invariant, with what it takes to replay it."""

    protocol: str
    case: int
    kind: str  # exception | internal-error | invariant
    detail: str
    data: bytes = b""

    def describe(self) -> str:
        head = self.data[:160].hex()
        more = f"... ({len(self.data)} bytes)" if len(self.data) > 160 else ""
        return f"[{self.protocol} case {self.case}] {self.kind}: {self.detail}\n    input: {head}{more}"


class CrashLog(logging.Handler):
    """Collects ERROR (and worse) records of the ``wiregate`` loggers."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        """The collected records as text (with their tracebacks), then forget them."""
        records, self.records = self.records, []
        out = []
        for record in records:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                text += f" [{type(error).__name__}: {error}]"
                tb = record.exc_info[2]
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                if tb is not None:
                    text += f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 2)[-1]}:{tb.tb_lineno}"
            out.append(text)
        return out


@contextlib.contextmanager
def crash_log(quiet: bool = True) -> Iterator[CrashLog]:
    """Install a :class:`CrashLog` on the ``wiregate`` logger for the duration.

    With ``quiet`` the logger's level is raised to ERROR, so the warning and
    info lines every refused connection writes cost nothing (a campaign
    refuses hundreds of thousands of them).
    """
    logger = logging.getLogger("wiregate")
    handler = CrashLog()
    old_level = logger.level
    logger.addHandler(handler)
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def chunks(rng: random.Random, data: bytes) -> list[bytes]:
    """Split ``data`` the way a socket might deliver it: whole, in pieces, or byte by byte."""
    roll = rng.random()
    if roll < 0.6 or len(data) < 2:
        return [data]
    if roll < 0.65 and len(data) < 600:
        return [data[i : i + 1] for i in range(len(data))]
    out = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, max(1, min(len(data) - pos, rng.choice((7, 64, 512, 8192)))))
        out.append(data[pos : pos + step])
        pos += step
    return out


def mutate_bytes(rng: random.Random, data: bytes, *, protect: int = 0) -> bytes:
    """One random byte-level mutation (bit flip, truncation, insertion, integer lie, ...).

    ``protect`` leading bytes are left alone (e.g. a frame header whose
    mutation is done elsewhere).
    """
    buf = bytearray(data)
    n = len(buf)
    protect = min(protect, n)
    choice = rng.randrange(10)
    if n <= protect:
        choice = 5  # only appending makes sense
    if choice == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(protect, n)
            buf[pos] ^= 1 << rng.randrange(8)
    elif choice == 1:  # an interesting byte
        buf[rng.randrange(protect, n)] = rng.choice(INTERESTING_8)
    elif choice == 2 and n - protect >= 2:  # an interesting 16-bit value
        pos = rng.randrange(protect, n - 1)
        struct.pack_into(">H", buf, pos, rng.choice(INTERESTING_16))
    elif choice == 3 and n - protect >= 4:  # an interesting 32-bit value (a length lie)
        pos = rng.randrange(protect, n - 3)
        struct.pack_into(">I", buf, pos, rng.choice(INTERESTING_32))
    elif choice == 4:  # truncation
        del buf[rng.randrange(protect, n) :]
    elif choice == 5:  # random bytes appended or inserted
        pos = rng.randint(protect, n)
        buf[pos:pos] = rng.randbytes(rng.choice((1, 2, 4, 8, 33)))
    elif choice == 6 and n - protect >= 2:  # a range deleted
        start = rng.randrange(protect, n)
        del buf[start : start + rng.randint(1, 8)]
    elif choice == 7 and n - protect >= 2:  # a range duplicated
        start = rng.randrange(protect, n)
        piece = buf[start : start + rng.randint(1, 16)]
        buf[start:start] = piece
    elif choice == 8:  # random bytes overwrite the tail
        pos = rng.randrange(protect, n)
        tail = n - pos
        buf[pos:] = rng.randbytes(tail)
    else:  # a whole region zeroed or set to 0xff
        start = rng.randrange(protect, n)
        end = min(n, start + rng.randint(1, 8))
        buf[start:end] = bytes([rng.choice((0, 0xFF))]) * (end - start)
    return bytes(buf)


def pick_int(rng: random.Random, low: int, high: int) -> int:
    """An integer in ``low..high``: mostly small, often on an edge, sometimes anywhere."""
    roll = rng.random()
    if roll < 0.55:
        return max(low, min(high, rng.randint(0, 5)))
    if roll < 0.8:
        return rng.choice((low, high, max(low, min(high, -1)), max(low, min(high, 0)), max(low, min(high, 1)), (low + high) // 2))
    return rng.randint(low, high)


def summary(counts: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in counts.items())
