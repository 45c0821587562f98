"""CRC-32C (Castagnoli), loaded on first use.

The ``crc32c`` package's ``__init__`` imports ``importlib.metadata`` (for
its version) and its command-line tool: ~13 ms of every start-up, for a
checksum the server first needs when a record batch or a stored record
arrives.  Callers look the function up here at call time
(``_crc.crc32c(data)``): after the first call it is the C function itself.
"""

from __future__ import annotations

from typing import Any


def crc32c(data: Any) -> int:
    """CRC-32C of ``data`` (any bytes-like object)."""
    global crc32c
    from crc32c import crc32c as implementation

    crc32c = implementation  # type: ignore[assignment]
    return implementation(data)
