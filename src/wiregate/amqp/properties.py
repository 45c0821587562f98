"""Basic content properties, kept as the exact bytes the publisher sent.

RabbitMQ forwards a message's property block untouched unless it must
change it, so every header keeps its wire type code ('b', 's', 'I', 'l',
'x', ...).  We do the same: the raw block is stored once and written into
every delivery.  It is decoded only when something needs a field, and when
something must change (dead-lettering rewrites headers, direct reply-to
rewrites reply_to) only that field is re-encoded; the others keep their
bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from wiregate.core.values import Long

from . import codec, wire

_u32 = struct.Struct(">I")

#: (name, flag bit, domain) in wire order
FIELDS = (
    ("content_type", 0x8000, "shortstr"),
    ("content_encoding", 0x4000, "shortstr"),
    ("headers", 0x2000, "table"),
    ("delivery_mode", 0x1000, "octet"),
    ("priority", 0x0800, "octet"),
    ("correlation_id", 0x0400, "shortstr"),
    ("reply_to", 0x0200, "shortstr"),
    ("expiration", 0x0100, "shortstr"),
    ("message_id", 0x0080, "shortstr"),
    ("timestamp", 0x0040, "timestamp"),
    ("type", 0x0020, "shortstr"),
    ("user_id", 0x0010, "shortstr"),
    ("app_id", 0x0008, "shortstr"),
    ("cluster_id", 0x0004, "shortstr"),
)
HEADERS = 0x2000
DELIVERY_MODE = 0x1000
PRIORITY = 0x0800
REPLY_TO = 0x0200
EXPIRATION = 0x0100
USER_ID = 0x0010


class PropertyBlock:
    """The property flags and list of one content header, undecoded.

    Attributes:
        raw: flags plus property list, as received (everything after body-size).
        flags: the first 16-bit property-flags word.
    """

    __slots__ = ("raw", "flags", "_spans", "_headers")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.flags = (raw[0] << 8 | raw[1]) if len(raw) >= 2 else 0
        self._spans: dict[str, tuple[int, int]] | None = None
        self._headers: dict[str, Any] | None = None

    def spans(self) -> dict[str, tuple[int, int]]:
        """Where each present property's bytes lie in ``raw`` (cached).

        Raises:
            codec.DecodeError: the block is malformed.
        """
        if self._spans is None:
            raw = self.raw
            try:
                pos = 2
                word = self.flags
                while word & 1:  # further flag words: none are defined for basic
                    word = raw[pos] << 8 | raw[pos + 1]
                    pos += 2
                spans = {}
                for name, bit, domain in FIELDS:
                    if not self.flags & bit:
                        continue
                    if domain == "shortstr":
                        end = pos + 1 + raw[pos]
                    elif domain == "table":
                        end = pos + 4 + _u32.unpack_from(raw, pos)[0]
                    elif domain == "octet":
                        end = pos + 1
                    else:
                        end = pos + 8
                    if end > len(raw):
                        raise codec.DecodeError(f"property {name} exceeds the content header")
                    spans[name] = (pos, end)
                    pos = end
            except (IndexError, struct.error) as error:
                raise codec.DecodeError(str(error)) from None
            self._spans = spans
        return self._spans

    def get(self, name: str) -> Any:
        """One property's value, or None when absent."""
        span = self.spans().get(name)
        if span is None:
            return None
        start, end = span
        raw = self.raw
        if name == "headers":
            return self.headers()
        if name in ("delivery_mode", "priority"):
            return raw[start]
        if name == "timestamp":
            return struct.unpack_from(">Q", raw, start)[0]
        return raw[start + 1 : end].decode("utf-8", "replace")

    @property
    def persistent(self) -> bool:
        return bool(self.flags & DELIVERY_MODE) and self.get("delivery_mode") == 2

    @property
    def priority(self) -> int | None:
        return self.get("priority") if self.flags & PRIORITY else None

    @property
    def has_user_id(self) -> bool:
        return bool(self.flags & USER_ID)

    @property
    def has_expiration(self) -> bool:
        return bool(self.flags & EXPIRATION)

    @property
    def has_reply_to(self) -> bool:
        return bool(self.flags & REPLY_TO)

    def headers(self) -> dict[str, Any] | None:
        """The headers table with typed values (cached); None when absent."""
        if not self.flags & HEADERS:
            return None
        if self._headers is None:
            start, _end = self.spans()["headers"]
            self._headers, _ = codec.decode_table(self.raw, start)
        return self._headers

    def replaced(self, **changes: Any) -> "PropertyBlock":
        """A new block with some properties set (None removes one).

        Only the changed properties are re-encoded; the others keep their
        original bytes.
        """
        spans = self.spans()
        raw = self.raw
        flags = self.flags & 0xFFFE
        parts = []
        for name, bit, domain in FIELDS:
            if name in changes:
                value = changes[name]
                if value is None:
                    flags &= ~bit
                    continue
                flags |= bit
                if domain == "table":
                    parts.append(codec.encode_table(value))
                elif domain == "shortstr":
                    parts.append(wire.shortstr(value))
                elif domain == "octet":
                    parts.append(bytes((value,)))
                else:
                    parts.append(struct.pack(">Q", value))
            elif name in spans:
                start, end = spans[name]
                parts.append(raw[start:end])
        return PropertyBlock(struct.pack(">H", flags) + b"".join(parts))

    def with_headers(self, headers: dict[str, Any], *, drop_expiration: bool) -> "PropertyBlock":
        """Dead-lettering's rewrite: new headers, and the expiration removed."""
        changes: dict[str, Any] = {"headers": headers}
        if drop_expiration:
            changes["expiration"] = None
        return self.replaced(**changes)

    def annotated(self, annotations: dict[str, int]) -> bytes:
        """The raw block with integer headers added for one delivery
        (``x-delivery-count``, ``x-stream-offset``), as long values in a
        key-sorted table, the way RabbitMQ's ``set_table_value`` leaves it."""
        headers = dict(self.headers() or {})
        for key, value in annotations.items():
            headers[key] = Long(value)
        return self.replaced(headers=dict(sorted(headers.items(), key=lambda kv: kv[0].encode()))).raw

def exchange_rk(exchange: str, routing_key: str) -> bytes:
    """exchange and routing key as encoded in basic.deliver (cached)."""
    key = (exchange, routing_key)
    data = _EXCHANGE_RK.get(key)
    if data is None:
        if len(_EXCHANGE_RK) >= 4096:
            _EXCHANGE_RK.clear()
        data = _EXCHANGE_RK[key] = wire.shortstr(exchange) + wire.shortstr(routing_key)
    return data


#: encoded (exchange, routing key) pairs: a few distinct pairs carry most traffic
_EXCHANGE_RK: dict[tuple[str, str], bytes] = {}
