"""A null Kafka broker: the peer for kafka-python, which cannot bootstrap against librdkafka's mock.

It speaks the real Kafka wire protocol (kio's codecs) and does as little as a
broker can: ApiVersions, Metadata (every topic exists, ``--partitions``
partitions, led by node 0 = this server), InitProducerId, and

- **Produce** is answered at once and stores nothing (the base offset is a
  per-partition counter of the records it was sent: it walks the batch
  headers, never the records);
- **ListOffsets** says the log starts at 0; **Fetch** is a null *source*:
  it answers every fetch with one pre-encoded batch of ``--record-size``-byte
  records starting at the fetch offset, as many as the request's byte limits
  allow (at most 10 000), so consumers never wait.

It advertises the same version ranges as wiregate for those APIs, so a
client picks the same request versions against both. Usage:

    python -m bench.kafka_null_sink [--port 0] [--partitions 1] [--record-size 100]

prints ``LISTENING 127.0.0.1:PORT`` and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import functools
import io
import struct
import sys
import types
import typing
import uuid
from typing import Any

import crc32c
from kio.index import load_payload_module
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

# (api_key, min, max) as wiregate advertises them.
API_RANGES = {18: (0, 4), 3: (0, 13), 0: (3, 12), 22: (0, 5), 2: (1, 10), 1: (4, 17)}
NODE_ID = 0
_HEAD = struct.Struct(">hhi")


# ------------------------------------------------------------------ kio glue
def _entity(module: types.ModuleType, suffix: str) -> type:
    for name, value in vars(module).items():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and name.endswith(suffix) and getattr(
            value, "__type__", None
        ) in (EntityType.request, EntityType.response):
            return value
    raise LookupError(suffix)


@functools.lru_cache(maxsize=None)
def request_class(key: int, version: int) -> type:
    return _entity(load_payload_module(key, version, EntityType.request), "Request")


@functools.lru_cache(maxsize=None)
def response_class(key: int, version: int) -> type:
    return _entity(load_payload_module(key, version, EntityType.response), "Response")


reader = functools.lru_cache(maxsize=None)(entity_reader)
writer = functools.lru_cache(maxsize=None)(entity_writer)


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> tuple:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = _MISSING
        out.append((f.name, hints[f.name], default))
    return tuple(out)


_MISSING = object()


def _zero(kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(kind)
        return None if type(None) in args else _zero(args[0])
    if origin is tuple:
        return ()
    if kind is bool:
        return False
    if isinstance(kind, type):
        for base, value in (
            (ErrorCode, ErrorCode.none), (datetime.timedelta, datetime.timedelta(0)),
            (datetime.datetime, datetime.datetime.fromtimestamp(0, tz=datetime.timezone.utc)),
            (int, 0), (float, 0.0), (str, ""), (bytes, b""), (uuid.UUID, uuid.UUID(int=0)),
        ):
            if issubclass(kind, base):
                return value
        if dataclasses.is_dataclass(kind):
            return build(kind)
    return None


def _coerce(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _coerce(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        return tuple(_coerce(typing.get_args(kind)[0], v) for v in value)
    if isinstance(kind, type):
        if dataclasses.is_dataclass(kind) and isinstance(value, dict):
            return build(kind, **value)
        if issubclass(kind, ErrorCode) and not isinstance(value, ErrorCode):
            return ErrorCode(value)
        if issubclass(kind, datetime.timedelta) and not isinstance(value, datetime.timedelta):
            return datetime.timedelta(milliseconds=value)
        if issubclass(kind, datetime.datetime) and not isinstance(value, datetime.datetime):
            return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.timezone.utc) if value >= 0 else value
    return value


def build(cls: type, **values: Any) -> Any:
    """A kio entity of any version from version-neutral values; the rest zero-filled."""
    kwargs = {}
    for name, kind, default in _fields(cls):
        if name in values:
            kwargs[name] = _coerce(kind, values[name])
        elif default is not _MISSING:
            kwargs[name] = default
        else:
            kwargs[name] = _zero(kind)
    return cls(**kwargs)


def encode(response: Any, correlation_id: int) -> bytes:
    cls = type(response)
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0" + struct.pack(">i", correlation_id))
    if cls.__flexible__ and cls.__api_key__ != 18:
        buffer.write(b"\0")
    writer(cls)(buffer, response)
    data = buffer.getbuffer()
    struct.pack_into(">i", data, 0, len(data) - 4)
    return bytes(data)


# ------------------------------------------------------------------ records
def _varint(value: int) -> bytes:
    value = (value << 1) ^ (value >> 63)
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.lru_cache(maxsize=64)
def record_batch(count: int, size: int) -> bytes:
    """A v2 batch of ``count`` records of ``size`` bytes (no key), base offset 0.

    The base offset is outside the CRC, so the batch is patched per fetch.
    """
    value = b"v" * size
    records = bytearray()
    for delta in range(count):
        body = b"\0" + _varint(0) + _varint(delta) + _varint(-1) + _varint(size) + value + _varint(0)
        records += _varint(len(body)) + body
    now = 1_700_000_000_000
    after_crc = struct.pack(">hiqqqhii", 0, count - 1, now, now, -1, -1, -1, count) + records
    crc = crc32c.crc32c(after_crc)
    head = struct.pack(">iBI", 0, 2, crc)  # partition leader epoch, magic, crc
    return struct.pack(">qi", 0, len(head) + len(after_crc)) + head + after_crc


def count_records(records: bytes | None) -> int:
    """Records in a produce request's batches, from the batch headers alone."""
    if not records:
        return 0
    total, pos = 0, 0
    while pos + 61 <= len(records):
        length = struct.unpack_from(">i", records, pos + 8)[0]
        total += struct.unpack_from(">i", records, pos + 57)[0]
        pos += 12 + length
    return total


# ------------------------------------------------------------------ the broker
class NullBroker:
    def __init__(self, host: str, port: int, partitions: int, record_size: int):
        self.host, self.port = host, port
        self.partitions = partitions
        self.record_size = record_size
        self.offsets: dict[tuple[str, int], int] = {}
        self.topics: dict[str, uuid.UUID] = {}
        self.by_id: dict[uuid.UUID, str] = {}
        self.producer_ids = 1000

    def topic_id(self, name: str) -> uuid.UUID:
        tid = self.topics.get(name)
        if tid is None:
            tid = self.topics[name] = uuid.uuid5(uuid.NAMESPACE_URL, f"null-sink/{name}")
            self.by_id[tid] = name
        return tid

    def handle(self, key: int, version: int, request: Any) -> Any:
        cls = response_class(key, version)
        if key == 18:
            return build(cls, api_keys=[{"api_key": k, "min_version": lo, "max_version": hi}
                                        for k, (lo, hi) in sorted(API_RANGES.items())])
        if key == 3:
            names = list(self.topics) if request.topics is None else [t.name for t in request.topics if t.name]
            return build(
                cls, brokers=[{"node_id": NODE_ID, "host": self.host, "port": self.port, "rack": None}],
                cluster_id="null-sink", controller_id=NODE_ID,
                topics=[{"name": n, "topic_id": self.topic_id(n), "is_internal": False,
                         "topic_authorized_operations": -2147483648,
                         "partitions": [{"partition_index": p, "leader_id": NODE_ID, "leader_epoch": 0,
                                         "replica_nodes": (NODE_ID,), "isr_nodes": (NODE_ID,)}
                                        for p in range(self.partitions)]} for n in names],
                cluster_authorized_operations=-2147483648,
            )
        if key == 22:
            self.producer_ids += 1
            return build(cls, producer_id=self.producer_ids, producer_epoch=0)
        if key == 0:
            if request.acks == 0:
                return None
            topics = []
            for topic in request.topic_data:
                parts = []
                for part in topic.partition_data:
                    tp = (topic.name, part.index)
                    base = self.offsets.get(tp, 0)
                    self.offsets[tp] = base + count_records(part.records)
                    parts.append({"index": part.index, "base_offset": base, "log_append_time_ms": -1,
                                  "log_start_offset": 0})
                topics.append({"name": topic.name, "partition_responses": parts})
            return build(cls, responses=topics)
        if key == 2:
            return build(cls, topics=[
                {"name": t.name, "partitions": [
                    {"partition_index": p.partition_index, "timestamp": -1, "leader_epoch": 0,
                     "offset": 0 if p.timestamp == -2 else self.offsets.get((t.name, p.partition_index), 0)}
                    for p in t.partitions]}
                for t in request.topics])
        if key == 1:
            budget = request.max_bytes if version >= 3 else 1 << 30
            per_record = self.record_size + 8
            responses = []
            for topic in request.topics:
                name = getattr(topic, "topic", None) or self.by_id.get(getattr(topic, "topic_id", None), "")
                parts = []
                for p in topic.partitions:
                    limit = min(p.partition_max_bytes, budget)
                    count = max(1, min(10_000, (limit - 61) // per_record))
                    batch = bytearray(record_batch(count, self.record_size))
                    struct.pack_into(">q", batch, 0, p.fetch_offset)
                    budget -= len(batch)
                    end = p.fetch_offset + count
                    parts.append({"partition_index": p.partition, "high_watermark": end,
                                  "last_stable_offset": end, "log_start_offset": 0, "aborted_transactions": None,
                                  "preferred_read_replica": -1, "records": bytes(batch)})
                responses.append({"topic": name, "topic_id": getattr(topic, "topic_id", None) or self.topic_id(name),
                                  "partitions": parts})
            return build(cls, responses=responses)
        raise ValueError(f"api {key} not served")

    async def serve_client(self, rd: asyncio.StreamReader, wr: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack(">i", await rd.readexactly(4))[0]
                payload = await rd.readexactly(size)
                key, version, correlation = _HEAD.unpack_from(payload, 0)
                if key == 18 and version > API_RANGES[18][1]:
                    cls = response_class(18, 0)
                    response = build(cls, error_code=35, api_keys=[
                        {"api_key": k, "min_version": lo, "max_version": hi}
                        for k, (lo, hi) in sorted(API_RANGES.items())])
                else:
                    lo_hi = API_RANGES.get(key)
                    if lo_hi is None or not lo_hi[0] <= version <= lo_hi[1]:
                        break
                    cls = request_class(key, version)
                    header, used = reader(cls.__header_schema__)(payload, 0)
                    request, _ = reader(cls)(payload, used)
                    response = self.handle(key, version, request)
                if response is not None:
                    wr.write(encode(response, correlation))
                    if wr.transport.get_write_buffer_size() > 1 << 20:
                        await wr.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            wr.close()


async def amain(args: argparse.Namespace) -> None:
    broker = NullBroker(args.host, args.port, args.partitions, args.record_size)
    server = await asyncio.start_server(broker.serve_client, args.host, args.port)
    broker.port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {args.host}:{broker.port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--record-size", type=int, default=100)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
