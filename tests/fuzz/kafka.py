"""Kafka wire-protocol fuzzing: requests of every registered API and version,
valid or mutated, against the sans-IO ``KafkaConnection``.

Requests are kio entities generated from their type hints (names from small
pools so that topics, groups, members and producers meet; record batches
valid, idempotent, mutated or garbage), encoded with a real request header,
then often damaged: byte mutations of the body or header, random bodies,
unknown API keys and versions, and size-prefix lies (negative, under 8,
over ``socket.request.max.bytes``, longer or shorter than the payload).
A case is one connection; responses feed the pools (member ids,
generations, producer ids), so later requests of the case go deeper.
Time is a fake clock moved forward between requests and by an hour at the
end, so long polls, joins and session timeouts all resolve.

The oracle re-frames the exact byte stream as the server must have seen it:
responses come in request order, each decodes with kio for its API and
version and fills its frame exactly; a stream that breaks the framing or
names an unknown API or version must end with the connection closed.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import random
import struct
import time
import types
import typing
import uuid
from typing import Any

from kio.serial import entity_reader, entity_writer

from wiregate.core import Broker
from wiregate.core.timers import Scheduler
from wiregate.kafka_wire import KafkaConnection
from wiregate.kafka_wire import records as kafka_records
from wiregate.kafka_wire.protocol import MAX_REQUEST_SIZE, _fields, build, request_class, response_class
from wiregate.kafka_wire.registry import APIS

from .common import Failure, chunks, mutate_bytes, pick_int

_size = struct.Struct(">i")
_head = struct.Struct(">hhi")

TOPICS = ("t0", "t1", "orders", "", "__consumer_offsets", "t" * 250, "bad/name", "t.0", "_t_")
GROUPS = ("g0", "g1", "", "g" * 300)
CONFIG_NAMES = ("retention.ms", "cleanup.policy", "segment.bytes", "min.insync.replicas", "max.message.bytes",
                "compression.type", "retention.bytes", "delete.retention.ms", "message.timestamp.type", "nope.x", "")
CONFIG_VALUES = ("1", "-1", "0", "compact", "delete", "compact,delete", "abc", "", None, "99999999999999999999", "LogAppendTime", "lz4")
STRINGS = ("", "a", "consumer", "range", "roundrobin", "client-1", "*", "User:alice", "x" * 40)

#: APIs clients use most get more weight
_WEIGHTED = [0, 0, 0, 1, 1, 1, 3, 3, 11, 11, 14, 14, 12, 8, 9, 2, 10, 13, 18]


class Pools:
    """Values learned from the server's answers during one case."""

    def __init__(self) -> None:
        self.members: list[str] = ["", "m-1"]
        self.generations: list[int] = [-1, 0, 1]
        self.producers: list[tuple[int, int]] = [(-1, -1), (0, 0)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- values
def _string_for(rng: random.Random, name: str, owner: str, pools: Pools) -> str:
    if rng.random() < 0.03:
        return "".join(chr(rng.choice((0x41, 0xE9, 0x1F600, 0x0, 0x2F))) for _ in range(rng.randint(0, 6)))
    if "topic" in name or (name == "name" and "Topic" in owner) or name == "resource_name" and rng.random() < 0.5:
        return rng.choice(TOPICS)
    if "group" in name:
        return rng.choice(GROUPS)
    if name in ("member_id", "group_instance_id", "leader"):
        return rng.choice(pools.members + ["i-1"])
    if name == "name" and "Config" in owner:
        return rng.choice(CONFIG_NAMES)
    if name == "value" and "Config" in owner:
        return rng.choice([v for v in CONFIG_VALUES if v is not None])
    if name == "protocol_type":
        return rng.choice(("consumer", "", "connect"))
    if name in ("transactional_id",):
        return rng.choice(("tx-1", ""))
    return rng.choice(STRINGS)


def _int_for(rng: random.Random, name: str, low: int, high: int, pools: Pools) -> int:
    if "partition" in name and "count" not in name:
        return rng.choice((-1, 0, 0, 1, 2, 3, 100, high))
    if name in ("generation_id", "generation_id_or_member_epoch"):
        return rng.choice(pools.generations)
    if name == "producer_id":
        return rng.choice(pools.producers)[0]
    if name == "producer_epoch":
        return rng.choice(pools.producers)[1]
    if name in ("acks",):
        return rng.choice((-1, 0, 1, 2, -2))
    if name in ("count", "replication_factor", "num_partitions"):
        return rng.choice((-1, 0, 1, 2, 3, 1000, high))
    if name in ("timestamp", "fetch_offset", "offset", "committed_offset", "log_start_offset", "current_leader_epoch", "leader_epoch"):
        return rng.choice((-3, -2, -1, 0, 1, 5, high, low))
    if name in ("max_bytes", "partition_max_bytes", "min_bytes"):
        return rng.choice((0, 1, 100, 1048576, high, -1))
    return pick_int(rng, low, high)


def _millis_for(rng: random.Random, name: str, bits: int) -> datetime.timedelta:
    high = 2 ** (bits - 1) - 1
    value = rng.choice((0, 1, 10, 100, 1000, 6000, 30000, 300000, -1, high // 1000))
    return datetime.timedelta(milliseconds=value)


def record_batch(rng: random.Random, pools: Pools) -> bytes | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.15:
        return rng.randbytes(rng.randint(0, 80))
    records = [
        (rng.choice((None, b"k", b"")), rng.choice((None, b"v", rng.randbytes(30))), [("h", b"1")] if rng.random() < 0.2 else [], 1714566645000 + i)
        for i in range(rng.randint(1, 3))
    ]
    batch = kafka_records.encode_batch(records)
    if rng.random() < 0.3:  # idempotent: producer id, epoch, base sequence, then a fresh CRC
        producer_id, epoch = rng.choice(pools.producers)
        struct.pack_into(">qhi", batch, 43, producer_id, epoch, rng.choice((0, 0, 1, 5, -1)))
        if rng.random() < 0.1:
            batch[22] |= 0x10  # transactional
        struct.pack_into(">I", batch, 17, kafka_records.checksum(memoryview(batch)[21:]))
    if rng.random() < 0.08:  # a compression codec over uncompressed bytes
        batch[22] = (batch[22] & 0xF8) | rng.randint(1, 5)
        struct.pack_into(">I", batch, 17, kafka_records.checksum(memoryview(batch)[21:]))
    data = bytes(batch)
    if rng.random() < 0.2:
        data = mutate_bytes(rng, data)
    if rng.random() < 0.1:
        data += bytes(batch)  # two batches
    return data


def value_for(rng: random.Random, kind: Any, name: str, owner: str, pools: Pools, depth: int) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if type(None) in typing.get_args(kind) and rng.random() < 0.12:
            return None
        return value_for(rng, args[0], name, owner, pools, depth)
    if origin is tuple:
        element = typing.get_args(kind)[0]
        count = rng.choice((0, 1, 1, 1, 2, 3)) if depth < 4 else 0
        return tuple(value_for(rng, element, name, owner, pools, depth + 1) for _ in range(count))
    if kind is bool:
        return rng.random() < 0.5
    if isinstance(kind, type):
        if dataclasses.is_dataclass(kind):
            return entity(rng, kind, pools, depth + 1)
        if issubclass(kind, datetime.timedelta):
            return _millis_for(rng, name, 64 if "i64" in kind.__name__ else 32)
        if name == "records" or kind.__name__ == "Records":
            return record_batch(rng, pools)
        if issubclass(kind, bool):
            return rng.random() < 0.5
        if issubclass(kind, int):
            low = getattr(kind, "__low__", -(2**31))
            high = getattr(kind, "__high__", 2**31 - 1)
            if hasattr(kind, "__members__"):  # an enum (error codes and the like)
                return rng.choice(list(kind))
            return max(low, min(high, _int_for(rng, name, low, high, pools)))
        if issubclass(kind, float):
            return rng.choice((0.0, 1.0, -1.0, 1e300))
        if issubclass(kind, str):
            return _string_for(rng, name, owner, pools)
        if issubclass(kind, bytes):
            if name == "metadata" or name == "assignment":
                return consumer_protocol_bytes(rng)
            return rng.randbytes(rng.choice((0, 1, 8, 33)))
        if kind is uuid.UUID:
            return rng.choice((uuid.UUID(int=0), uuid.UUID(int=rng.getrandbits(128))))
    return None


def consumer_protocol_bytes(rng: random.Random) -> bytes:
    """A ConsumerProtocolSubscription/Assignment-shaped blob, often broken."""
    topics = [rng.choice(TOPICS).encode() for _ in range(rng.randint(0, 2))]
    out = struct.pack(">hi", rng.choice((0, 1, 3, -1)), len(topics))
    for topic in topics:
        out += struct.pack(">h", len(topic)) + topic
    out += struct.pack(">i", -1)
    if rng.random() < 0.4:
        out = mutate_bytes(rng, out)
    if rng.random() < 0.1:
        out = struct.pack(">hih", 0, 1, 4) + b"\xff\xfe\xfd\xfc"  # a topic name that is not UTF-8
    return out


def entity(rng: random.Random, cls: type, pools: Pools, depth: int = 0) -> Any:
    kwargs = {}
    owner = cls.__name__
    for name, kind, _default in _fields(cls):
        kwargs[name] = value_for(rng, kind, name, owner, pools, depth)
    return cls(**kwargs)


def encode_request(api_key: int, version: int, correlation_id: int, body: Any, client_id: str | None = "fuzz") -> bytes:
    cls = request_class(api_key, version)
    header_cls = cls.__header_schema__
    buffer = io.BytesIO()
    fields = dict(request_api_key=api_key, request_api_version=version, correlation_id=correlation_id)
    if "client_id" in header_cls.__dataclass_fields__:
        fields["client_id"] = client_id
    entity_writer(header_cls)(buffer, header_cls(**fields))
    entity_writer(cls)(buffer, body)
    return buffer.getvalue()


# ---------------------------------------------------------------- requests
class Generator:
    """Produces request payloads (without the size prefix) for one campaign; caches encoded bodies."""

    def __init__(self) -> None:
        self.cache: dict[tuple[int, int], list[bytes]] = {}
        self.apis = sorted(APIS)

    def body(self, rng: random.Random, api_key: int, version: int, pools: Pools) -> bytes:
        """Encoded request body (header excluded) of a valid random entity."""
        key = (api_key, version)
        cached = self.cache.setdefault(key, [])
        if len(cached) >= 24 and rng.random() < 0.6:
            return rng.choice(cached)
        cls = request_class(api_key, version)
        try:
            value = entity(rng, cls, pools)
            buffer = io.BytesIO()
            entity_writer(cls)(buffer, value)
            data = buffer.getvalue()
        except Exception:  # noqa: BLE001 - a value the writer refuses: fall back to random bytes
            data = rng.randbytes(rng.randint(0, 40))
        if len(cached) < 64:
            cached.append(data)
        elif rng.random() < 0.05:
            cached[rng.randrange(len(cached))] = data
        return data

    def request(self, rng: random.Random, correlation_id: int, pools: Pools) -> tuple[int, int, bytes]:
        """(api key, version, payload) of one request, mutated or not."""
        roll = rng.random()
        api_key = rng.choice(_WEIGHTED) if roll < 0.35 else rng.choice(self.apis)
        api = APIS.get(api_key)
        version = rng.randint(api.min_version, api.max_version) if api else 0
        if rng.random() < 0.03:
            api_key = rng.choice((-1, 4, 5, 6, 7, 27, 56, 67, 1000, 32767))
        elif rng.random() < 0.03:
            version = rng.choice((-1, 99, 32767, (api.min_version - 1) if api else 0))
        if APIS.get(api_key) and APIS[api_key].min_version <= version <= APIS[api_key].max_version:
            body = self.body(rng, api_key, version, pools)
            cls = request_class(api_key, version)
            header_cls = cls.__header_schema__
            buffer = io.BytesIO()
            fields = dict(request_api_key=api_key, request_api_version=version, correlation_id=correlation_id)
            if "client_id" in header_cls.__dataclass_fields__:
                fields["client_id"] = rng.choice(("fuzz", "fuzz", None, "", "\u00e9"))
            entity_writer(header_cls)(buffer, header_cls(**fields))
            header = buffer.getvalue()
        else:
            header = _head.pack(api_key, version, correlation_id) + struct.pack(">h", -1)
            body = rng.randbytes(rng.randint(0, 20))
        payload = header + body
        roll = rng.random()
        if roll < 0.2:
            payload = header + mutate_bytes(rng, body)
        elif roll < 0.25:
            payload = mutate_bytes(rng, payload)
        elif roll < 0.29:
            payload = header + rng.randbytes(rng.randint(0, 64))
        elif roll < 0.31:
            payload = header[:8] + rng.randbytes(rng.randint(0, 64))
        return api_key, version, payload


def frame(rng: random.Random, payload: bytes) -> bytes:
    """The size prefix, usually true."""
    roll = rng.random()
    if roll < 0.96:
        return _size.pack(len(payload)) + payload
    size = rng.choice((-1, -(2**31), 0, 3, 7, MAX_REQUEST_SIZE + 1, 2**31 - 1, len(payload) + 1, len(payload) - 1, len(payload) + 64))
    return _size.pack(size) + payload


# ------------------------------------------------------------------ oracle
def server_view(stream: bytes) -> tuple[list[tuple[int, int, int, bytes]], str | None]:
    """The requests the server must have read from ``stream``, and why it must close (or None)."""
    view = []
    pos = 0
    while len(stream) - pos >= 4:
        size = _size.unpack_from(stream, pos)[0]
        if size < 8 or size > MAX_REQUEST_SIZE:
            return view, f"size {size}"
        if len(stream) - pos - 4 < size:
            break
        payload = stream[pos + 4 : pos + 4 + size]
        pos += 4 + size
        api_key, version, correlation_id = _head.unpack_from(payload)
        view.append((api_key, version, correlation_id, payload))
        api = APIS.get(api_key)
        if api is None:
            return view, f"unknown api {api_key}"
        if not api.min_version <= version <= api.max_version and api_key != 18:
            return view, f"unsupported version {version} of api {api_key}"
    return view, None


def split_responses(data: bytes) -> tuple[list[bytes], str | None]:
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            return out, "truncated size"
        size = _size.unpack_from(data, pos)[0]
        if size < 4 or len(data) - pos - 4 < size:
            return out, f"bad response size {size}"
        out.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return out, None


def decode_response(api_key: int, version: int, frame_bytes: bytes) -> Any:
    """Decode one response frame (after its size); raises when it does not fill the frame exactly."""
    api = APIS[api_key]
    if api_key == 18 and not api.min_version <= version <= api.max_version:
        version = 0
    cls = response_class(api_key, version)
    offset = 4
    if cls.__flexible__ and api_key != 18:
        if frame_bytes[offset] != 0:
            raise ValueError("response header tagged fields not empty")
        offset += 1
    value, used = entity_reader(cls)(frame_bytes, offset)
    if offset + used != len(frame_bytes) and used != len(frame_bytes):
        # kio returns either the bytes used from ``offset`` or the end offset
        raise ValueError(f"{len(frame_bytes) - offset - used} trailing bytes")
    return value


def harvest(value: Any, pools: Pools) -> None:
    member = getattr(value, "member_id", None)
    if isinstance(member, str) and member and member not in pools.members:
        pools.members.append(member)
    generation = getattr(value, "generation_id", None)
    if isinstance(generation, int) and generation not in pools.generations:
        pools.generations.append(generation)
    producer = getattr(value, "producer_id", None)
    epoch = getattr(value, "producer_epoch", None)
    if isinstance(producer, int) and producer >= 0 and isinstance(epoch, int):
        pools.producers.append((producer, epoch))


def check(conn: KafkaConnection, stream: bytes, out: bytes, pools: Pools | None = None) -> list[str]:
    problems = []
    view, fatal = server_view(stream)
    frames, error = split_responses(out)
    if error:
        problems.append(f"malformed output: {error}")
    if fatal and not conn.closed:
        problems.append(f"connection still open after a fatal request ({fatal})")
    by_position = {}
    positions: dict[int, list[int]] = {}
    for n, (_api, _version, correlation_id, _payload) in enumerate(view):
        positions.setdefault(correlation_id, []).append(n)
    last = -1
    for frame_bytes in frames:
        correlation_id = _size.unpack_from(frame_bytes)[0]
        later = [n for n in positions.get(correlation_id, []) if n > last]
        if not later:
            problems.append(f"response for correlation id {correlation_id} out of order or unasked")
            break
        last = later[0]
        api_key, version, _cid, _payload = view[last]
        by_position[last] = frame_bytes
        try:
            value = decode_response(api_key, version, frame_bytes)
        except Exception as exc:  # noqa: BLE001 - a response kio cannot read is a finding
            problems.append(f"response to api {api_key} v{version} does not decode: {type(exc).__name__}: {exc}")
            continue
        if pools is not None:
            harvest(value, pools)
    return problems


# ------------------------------------------------------------------- cases
def run_case(rng: random.Random, broker: Broker, clock: Clock, generator: Generator, case: int, log: Any) -> tuple[int, list[Failure], float]:
    """One connection: requests, responses, time passing; returns (requests sent, failures, seconds)."""
    conn = KafkaConnection(broker, peer=f"fuzz#{case}", advertised=("127.0.0.1", 9092))
    pools = Pools()
    stream = bytearray()
    out = bytearray()
    failures: list[Failure] = []
    count = rng.randint(1, 40)
    started = time.perf_counter()
    problems: list[str] = []
    sent = 0
    try:
        if rng.random() < 0.3:
            first = encode_request(18, 3, 0, request_class(18, 3)(client_software_name="fuzz", client_software_version="1"))
            stream += _size.pack(len(first)) + first
            conn.receive_data(_size.pack(len(first)) + first)
            sent += 1
        for n in range(count):
            _api, _version, payload = generator.request(rng, rng.getrandbits(31), pools)
            data = frame(rng, payload)
            stream += data
            sent += 1
            for piece in chunks(rng, data):
                conn.receive_data(piece)
            out += conn.data_to_send()
            if rng.random() < 0.3:
                clock.now += rng.choice((0.001, 0.1, 1.0, 5.0, 31.0))
                broker.scheduler.run_due()
                out += conn.data_to_send()
            if conn.closed:
                break
            if n % 8 == 7:  # learn member ids, generations and producer ids from the answers so far
                check(conn, bytes(stream), bytes(out), pools)
        clock.now += 3600
        broker.scheduler.run_due()
        out += conn.data_to_send()
        problems = check(conn, bytes(stream), bytes(out))
        conn.receive_data(b"")
        clock.now += 3600
        broker.scheduler.run_due()
    except BaseException as exc:  # noqa: BLE001 - this is the crash we are looking for
        if isinstance(exc, KeyboardInterrupt):
            raise
        failures.append(Failure("kafka", case, "exception", f"{type(exc).__name__}: {exc}", bytes(stream)))
    elapsed = time.perf_counter() - started
    for record in log.take():
        failures.append(Failure("kafka", case, "internal-error", record, bytes(stream)))
    for problem in problems:
        failures.append(Failure("kafka", case, "invariant", problem, bytes(stream)))
    return sent, failures, elapsed


def bystander(broker: Broker, clock: Clock) -> list[str]:
    """A well-behaved client on the abused broker: produce a record to a fresh topic and fetch it back."""
    conn = KafkaConnection(broker, peer="bystander")
    topic = f"bystander-{int(clock.now * 1000)}"
    batch = bytes(kafka_records.encode_batch([(b"k", b"still here", [], 1714566645000)]))
    produce = build(request_class(0, 9), acks=-1, timeout=5000, topic_data=[dict(name=topic, partition_data=[dict(index=0, records=batch)])])
    fetch = build(
        request_class(1, 12),
        replica_id=-1,
        max_wait=0,
        min_bytes=1,
        max_bytes=1048576,
        isolation_level=0,
        topics=[dict(topic=topic, partitions=[dict(partition=0, fetch_offset=0, partition_max_bytes=1048576, current_leader_epoch=-1, log_start_offset=-1)])],
    )
    stream = b""
    for cid, (key, version, body) in enumerate(((0, 9, produce), (1, 12, fetch))):
        payload = encode_request(key, version, cid, body)
        stream += _size.pack(len(payload)) + payload
    conn.receive_data(stream)
    out = conn.data_to_send()
    conn.receive_data(b"")
    problems = check(conn, stream, out)
    frames, _ = split_responses(out)
    if len(frames) != 2:
        return problems + [f"bystander got {len(frames)} responses"]
    response = decode_response(1, 12, frames[1])
    data = response.responses[0].partitions[0].records if response.responses and response.responses[0].partitions else None
    if not data or b"still here" not in bytes(data):
        problems.append("bystander did not fetch its record back")
    return problems


def case_seed(seed: int, case: int) -> int:
    return seed * 1_000_003 + case + 7


def campaign(requests_wanted: int, seed: int, *, bystander_every: int = 200, fresh_broker_every: int = 300, report: Any = None) -> dict[str, Any]:
    """Run connections until ``requests_wanted`` requests were sent; returns counts and failures."""
    from .common import crash_log

    counts = {"cases": 0, "requests": 0, "failures": 0, "slowest_ms": 0.0}
    failures: list[Failure] = []
    generator = Generator()
    clock = Clock()
    broker = Broker(Scheduler(clock=clock))
    started = time.monotonic()
    next_report = started + 10
    with crash_log() as log:
        while counts["requests"] < requests_wanted:
            case = counts["cases"]
            if case % fresh_broker_every == 0:
                clock = Clock()
                broker = Broker(Scheduler(clock=clock))
            rng = random.Random(case_seed(seed, case))
            sent, found, elapsed = run_case(rng, broker, clock, generator, case, log)
            counts["cases"] += 1
            counts["requests"] += sent
            counts["slowest_ms"] = max(counts["slowest_ms"], round(elapsed * 1000, 1))
            if case % bystander_every == bystander_every - 1:
                try:
                    for problem in bystander(broker, clock):
                        found.append(Failure("kafka", case, "invariant", problem))
                except Exception as exc:  # noqa: BLE001
                    found.append(Failure("kafka", case, "exception", f"bystander: {type(exc).__name__}: {exc}"))
                for record in log.take():
                    found.append(Failure("kafka", case, "internal-error", record))
            if found:
                failures.extend(found)
                counts["failures"] += len(found)
            if report is not None and time.monotonic() >= next_report:
                next_report = time.monotonic() + 10
                report(f"kafka: {counts['cases']} connections, {counts['requests']} requests, {counts['failures']} failures")
    counts["seconds"] = round(time.monotonic() - started, 1)
    return {"counts": counts, "failures": failures}
