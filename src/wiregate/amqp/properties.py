"""Basic content properties, kept as the exact bytes the publisher sent.

RabbitMQ forwards a message's property block untouched unless it must
change it, so every header keeps its wire type code ('b', 's', 'I', 'l',
'x', ...).  We do the same: the raw block is stored once and written into
every delivery; it is decoded only when something needs a field (headers
for the headers exchange, user_id validation, a trace).
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import commands

from . import wire

CONTENT_TYPE = 0x8000
CONTENT_ENCODING = 0x4000
HEADERS = 0x2000
DELIVERY_MODE = 0x1000
PRIORITY = 0x0800
EXPIRATION = 0x0100
USER_ID = 0x0010

_u32 = struct.Struct(">I")


class PropertyBlock:
    """The property flags and list of one content header, undecoded.

    Attributes:
        raw: flags plus property list, as received (everything after body-size).
        flags: the first 16-bit property-flags word.
    """

    __slots__ = ("raw", "flags", "_decoded", "_exchange_rk")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.flags = (raw[0] << 8 | raw[1]) if len(raw) >= 2 else 0
        self._decoded: commands.Basic.Properties | None = None
        self._exchange_rk: bytes | None = None

    @property
    def has_user_id(self) -> bool:
        return bool(self.flags & USER_ID)

    @property
    def persistent(self) -> bool:
        flags = self.flags
        if not flags & DELIVERY_MODE:
            return False
        raw = self.raw
        pos = 2
        # skip further flag words (continuation bit)
        word = flags
        while word & 1:
            word = raw[pos] << 8 | raw[pos + 1]
            pos += 2
        if flags & CONTENT_TYPE:
            pos += 1 + raw[pos]
        if flags & CONTENT_ENCODING:
            pos += 1 + raw[pos]
        if flags & HEADERS:
            pos += 4 + _u32.unpack_from(raw, pos)[0]
        return raw[pos] == 2

    def decode(self) -> commands.Basic.Properties:
        """All properties, decoded by pamqp (cached).

        Raises:
            ValueError: the block is malformed.
        """
        if self._decoded is None:
            props = commands.Basic.Properties()
            raw = self.raw
            pos = 0
            flags = 0
            shift = 0
            while True:
                word = raw[pos] << 8 | raw[pos + 1]
                pos += 2
                flags |= (word & 0xFFFE) << shift
                if not word & 1:
                    break
                shift += 16
            props.unmarshal(flags, raw[pos:])
            self._decoded = props
        return self._decoded

    def headers(self) -> dict[str, Any] | None:
        if not self.flags & HEADERS:
            return None
        try:
            return self.decode().headers
        except (ValueError, IndexError, struct.error):
            return None

    def exchange_rk(self, message: Any) -> bytes:
        """exchange and routing key as encoded in basic.deliver (cached)."""
        data = self._exchange_rk
        if data is None:
            data = self._exchange_rk = wire.shortstr(message.exchange) + wire.shortstr(message.routing_key)
        return data

