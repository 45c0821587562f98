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
import functools
import io
import struct
import sys
import uuid
from typing import Any

from kio.serial import entity_reader, entity_writer

from wiregate.kafka_wire.protocol import build, request_class, response_class
from wiregate.kafka_wire.records import encode_batch

# (api_key, min, max) as wiregate advertises them.
API_RANGES = {18: (0, 4), 3: (0, 13), 0: (3, 12), 22: (0, 5), 2: (1, 10), 1: (4, 17)}
NODE_ID = 0
_HEAD = struct.Struct(">hhi")


# ------------------------------------------------------------------ kio glue
# The same glue wiregate uses (class lookup, version-neutral build); answers
# are still written by kio's own writer below, not wiregate's fast paths.
reader = functools.lru_cache(maxsize=None)(entity_reader)
writer = functools.lru_cache(maxsize=None)(entity_writer)


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
@functools.lru_cache(maxsize=64)
def record_batch(count: int, size: int) -> bytes:
    """A v2 batch of ``count`` records of ``size`` bytes (no key), base offset 0.

    The base offset is outside the CRC, so the batch is patched per fetch.
    """
    return bytes(encode_batch([(None, b"v" * size, [], 1_700_000_000_000)] * count))


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
