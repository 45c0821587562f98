"""1 000 concurrent connections, AMQP and Kafka mixed, held by one ``wiregate serve``.

What it does, against ``wiregate serve`` in its own process (the bench's
:class:`bench.common.WiregateProcess`, explicit free ports):

1. RSS of the fresh server.
2. Opens half the connections as AMQP (handshake, ``channel.open``) and
   reads the RSS again: the difference ÷ their number is the RSS per idle
   AMQP connection.  Then the other half as Kafka (one ApiVersions each):
   RSS per idle Kafka connection.
3. Every connection does a little work: an AMQP connection declares its own
   queue, consumes from it, publishes one message and acks its delivery; a
   Kafka connection produces one record (acks=1) and fetches it back by the
   offset it was given.  RSS with every connection active.
4. Holds them all for a while; meanwhile a fresh AMQP handshake and a fresh
   Kafka ApiVersions round trip show whether the server stays responsive
   (reported, never asserted).
5. Every connection works once more (publish/consume, produce/fetch): the
   count of failures must be 0.  Then everything closes; RSS after.

The clients are raw frames on asyncio streams (pamqp for AMQP, kio for
Kafka) in this one process: a thousand pika or kafka-python clients would
measure the clients, not the server.  The open-files limit of this process,
which ``wiregate serve`` inherits, is raised to what 1 000 sockets on both
sides need.

Usage::

    python -m bench.connections            # 1 000 connections (500 AMQP + 500 Kafka), held 10 s
    python -m bench.connections --smoke    # 40, held 0.5 s
    python -m bench.connections --count 2000 --hold 30

From Python: ``bench.connections.run(smoke: bool) -> dict`` (what
``python -m bench`` calls); ``exercise(...)`` runs the client side against
any server (the integration test uses it with an embedded server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import struct
import sys
import time
from typing import Any

if __package__ in (None, ""):  # python bench/connections.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pamqp import body as amqp_body
from pamqp import commands, frame, header

COUNT = 1000
SMOKE_COUNT = 40
HOLD = 10.0
SMOKE_HOLD = 0.5
#: connections opened at once (a handshake in flight each)
OPENING = 64
TOPIC = "bench-connections"
_FRAME = struct.Struct(">BHI")
_SIZE = struct.Struct(">i")


class Failed(RuntimeError):
    """A connection did not get the answer it expected."""


# ------------------------------------------------------------------ AMQP
class AmqpClient:
    """One AMQP connection with channel 1, raw frames on an asyncio stream."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.queue = f"bench-conn-{index}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.received = 0

    def _send(self, channel: int, *values: Any) -> None:
        assert self.writer is not None
        self.writer.write(b"".join(frame.marshal(value, channel) for value in values))

    async def _frame(self) -> Any:
        assert self.reader is not None
        head = await self.reader.readexactly(7)
        _type, _channel, size = _FRAME.unpack(head)
        rest = await self.reader.readexactly(size + 1)
        _consumed, _channel, value = frame.unmarshal(head + rest)
        if isinstance(value, (commands.Connection.Close, commands.Channel.Close)):
            raise Failed(f"amqp #{self.index}: closed by the server: {value.reply_code} {value.reply_text}")
        return value

    async def _expect(self, kind: type) -> Any:
        value = await self._frame()
        if not isinstance(value, kind):
            raise Failed(f"amqp #{self.index}: expected {kind.__name__}, got {type(value).__name__}")
        return value

    async def open(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self.writer.write(header.ProtocolHeader().marshal())
        await self._expect(commands.Connection.Start)
        self._send(0, commands.Connection.StartOk(response="\0guest\0guest"))
        await self._expect(commands.Connection.Tune)
        self._send(0, commands.Connection.TuneOk(2047, 131072, 0), commands.Connection.Open("/"))
        await self._expect(commands.Connection.OpenOk)
        self._send(1, commands.Channel.Open())
        await self._expect(commands.Channel.OpenOk)

    async def subscribe(self) -> None:
        self._send(1, commands.Queue.Declare(queue=self.queue, exclusive=True), commands.Basic.Consume(queue=self.queue))
        await self._expect(commands.Queue.DeclareOk)
        await self._expect(commands.Basic.ConsumeOk)

    async def round_trip(self) -> None:
        """Publish one message to the own queue, receive it from the consumer, ack it."""
        payload = f"message {self.received} of connection {self.index}".encode()
        assert self.writer is not None
        self.writer.write(
            frame.marshal(commands.Basic.Publish(exchange="", routing_key=self.queue), 1)
            + frame.marshal(header.ContentHeader(0, len(payload)), 1)
            + frame.marshal(amqp_body.ContentBody(payload), 1)
        )
        deliver = await self._expect(commands.Basic.Deliver)
        await self._expect(header.ContentHeader)
        got = await self._expect(amqp_body.ContentBody)
        if got.value != payload:
            raise Failed(f"amqp #{self.index}: got {got.value!r}, sent {payload!r}")
        self._send(1, commands.Basic.Ack(delivery_tag=deliver.delivery_tag))
        self.received += 1

    async def close(self) -> None:
        if self.writer is None:
            return
        try:
            self._send(0, commands.Connection.Close(200, "bye", 0, 0))
            await asyncio.wait_for(self._expect(commands.Connection.CloseOk), 10)
        except (Failed, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            self.writer.close()


# ------------------------------------------------------------------ Kafka
class KafkaClient:
    """One Kafka connection: size-prefixed requests encoded with kio."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.correlation = 0
        self.produced = 0

    async def _call(self, api_key: int, version: int, **fields: Any) -> Any:
        import io

        from kio.serial import entity_reader, entity_writer

        from wiregate.kafka_wire.protocol import build, request_class, response_class

        self.correlation += 1
        cls = request_class(api_key, version)
        header_cls = cls.__header_schema__
        buffer = io.BytesIO()
        head = dict(request_api_key=api_key, request_api_version=version, correlation_id=self.correlation)
        if "client_id" in header_cls.__dataclass_fields__:
            head["client_id"] = f"bench-{self.index}"
        entity_writer(header_cls)(buffer, header_cls(**head))
        entity_writer(cls)(buffer, build(cls, **fields))
        data = buffer.getvalue()
        assert self.writer is not None and self.reader is not None
        self.writer.write(_SIZE.pack(len(data)) + data)
        size = _SIZE.unpack(await self.reader.readexactly(4))[0]
        frame_ = await self.reader.readexactly(size)
        if _SIZE.unpack_from(frame_)[0] != self.correlation:
            raise Failed(f"kafka #{self.index}: answer to another request")
        response_cls = response_class(api_key, version)
        offset = 5 if response_cls.__flexible__ and api_key != 18 else 4
        return entity_reader(response_cls)(frame_, offset)[0]

    async def open(self, host: str, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port)
        response = await self._call(18, 0)
        if response.error_code != 0:
            raise Failed(f"kafka #{self.index}: ApiVersions error {response.error_code}")

    async def round_trip(self) -> None:
        """Produce one record (acks=1), fetch it back from the offset the broker gave."""
        from wiregate.kafka_wire import records

        value = f"record {self.produced} of connection {self.index}".encode()
        batch = bytes(records.encode_batch([(str(self.index).encode(), value, [], int(time.time() * 1000))]))
        produced = await self._call(
            0, 9, acks=1, timeout=5000, topic_data=[dict(name=TOPIC, partition_data=[dict(index=0, records=batch)])]
        )
        partition = produced.responses[0].partition_responses[0]
        if partition.error_code != 0:
            raise Failed(f"kafka #{self.index}: Produce error {partition.error_code}")
        fetched = await self._call(
            1, 12, max_wait=0, min_bytes=1, max_bytes=1 << 20,
            topics=[dict(topic=TOPIC, partitions=[dict(partition=0, fetch_offset=partition.base_offset, partition_max_bytes=65536)])],
        )
        data = fetched.responses[0].partitions[0].records or b""
        if value not in bytes(data):
            raise Failed(f"kafka #{self.index}: the record produced at {partition.base_offset} was not fetched")
        self.produced += 1

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ------------------------------------------------------------------ the run
async def _probe_latency(host: str, amqp_port: int, kafka_port: int) -> dict[str, float]:
    """A fresh AMQP handshake + channel and a fresh Kafka ApiVersions, in ms."""
    started = time.perf_counter()
    amqp = AmqpClient(-1)
    await amqp.open(host, amqp_port)
    amqp_ms = (time.perf_counter() - started) * 1000
    await amqp.close()
    started = time.perf_counter()
    kafka = KafkaClient(-1)
    await kafka.open(host, kafka_port)
    kafka_ms = (time.perf_counter() - started) * 1000
    await kafka.close()
    return {"amqp_connect_ms": amqp_ms, "kafka_api_versions_ms": kafka_ms}


async def _all(clients: list[Any], step: str, *args: Any) -> list[str]:
    """Run ``step`` on every client, at most OPENING at once; return the failures."""
    gate = asyncio.Semaphore(OPENING)

    async def one(client: Any) -> str | None:
        async with gate:
            try:
                await asyncio.wait_for(getattr(client, step)(*args), 60)
            except Exception as exc:  # noqa: BLE001 (counted and reported)
                return f"{type(client).__name__} #{client.index} {step}: {type(exc).__name__}: {exc}"
            return None

    results = await asyncio.gather(*(one(client) for client in clients))
    return [failure for failure in results if failure is not None]


async def exercise(
    host: str,
    amqp_port: int,
    kafka_port: int,
    *,
    count: int,
    hold: float,
    rss: Any = None,
    probe_every: float = 0.5,
    during_hold: Any = None,
) -> dict[str, Any]:
    """Open ``count`` connections (half AMQP, half Kafka), work, hold, work again, close.

    Args:
        host, amqp_port, kafka_port: The server.
        count: Connections in all.
        hold: Seconds all of them stay open between the two rounds of work.
        rss: ``rss() -> KiB`` of the server, read between the phases (``None``: not measured).
        probe_every: Seconds between responsiveness probes during the hold.
        during_hold: ``async during_hold() -> value``, awaited once while every
            connection is held (its value is reported as ``during_hold``).

    Returns:
        Counts, failures (lists of texts: every one is a connection that did
        not work), the responsiveness probes and, with ``rss``, the readings.
    """
    n_amqp = count // 2
    n_kafka = count - n_amqp
    amqp = [AmqpClient(i) for i in range(n_amqp)]
    kafka = [KafkaClient(i) for i in range(n_kafka)]
    readings: dict[str, float] = {}

    def read(name: str) -> None:
        if rss is not None:
            readings[name] = rss()

    result: dict[str, Any] = {"amqp_connections": n_amqp, "kafka_connections": n_kafka, "hold_s": hold}
    read("fresh")
    started = time.perf_counter()
    failures = await _all(amqp, "open", host, amqp_port)
    result["open_amqp_s"] = time.perf_counter() - started
    await asyncio.sleep(0.3)
    read("amqp_idle")
    started = time.perf_counter()
    failures += await _all(kafka, "open", host, kafka_port)
    result["open_kafka_s"] = time.perf_counter() - started
    await asyncio.sleep(0.3)
    read("all_idle")
    result["open_failures"] = failures

    started = time.perf_counter()
    work = await _all(amqp, "subscribe")
    work += await _all(amqp, "round_trip")
    work += await _all(kafka, "round_trip")
    result["first_round_s"] = time.perf_counter() - started
    result["first_round_failures"] = work
    read("all_active")

    if during_hold is not None:
        result["during_hold"] = await during_hold()
    probes: list[dict[str, float]] = []
    deadline = time.monotonic() + hold
    while True:
        try:
            probes.append(await asyncio.wait_for(_probe_latency(host, amqp_port, kafka_port), 30))
        except Exception as exc:  # noqa: BLE001 (an unresponsive server is what this reports)
            probes.append({"error": f"{type(exc).__name__}: {exc}"})  # type: ignore[dict-item]
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(probe_every, max(0.0, deadline - time.monotonic())))
    result["probes"] = probes
    read("held")

    started = time.perf_counter()
    final = await _all(amqp, "round_trip")
    final += await _all(kafka, "round_trip")
    result["final_round_s"] = time.perf_counter() - started
    result["final_failures"] = final
    result["working_at_end"] = {
        "amqp": sum(client.received == 2 for client in amqp),
        "kafka": sum(client.produced == 2 for client in kafka),
    }
    await asyncio.gather(*(client.close() for client in amqp + kafka))
    await asyncio.sleep(0.5)
    read("closed")
    if rss is not None:
        result["rss_kib"] = readings
        result["rss_per_idle_amqp_kib"] = (readings["amqp_idle"] - readings["fresh"]) / max(n_amqp, 1)
        result["rss_per_idle_kafka_kib"] = (readings["all_idle"] - readings["amqp_idle"]) / max(n_kafka, 1)
        result["rss_per_active_connection_kib"] = (readings["all_active"] - readings["fresh"]) / max(count, 1)
    result["ok"] = not (result["open_failures"] or work or final) and all("error" not in p for p in probes)
    return result


def raise_open_files_limit(count: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE (inherited by ``wiregate serve``) to fit ``count`` sockets and then some."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft, hard


def run(smoke: bool = False, *, count: int | None = None, hold: float | None = None) -> dict[str, Any]:
    """Run the probe against a fresh ``wiregate serve``; returns what :func:`exercise` reports, plus the server's figures.

    Args:
        smoke: 40 connections held 0.5 s instead of 1 000 held 10 s.
        count: Connections in all (overrides ``smoke``'s).
        hold: Seconds to hold them (overrides ``smoke``'s).
    """
    from bench.common import CpuMeter, WiregateProcess

    count = count if count is not None else (SMOKE_COUNT if smoke else COUNT)
    hold = hold if hold is not None else (SMOKE_HOLD if smoke else HOLD)
    limit = raise_open_files_limit(count)
    with WiregateProcess() as server:
        time.sleep(0.5)
        meter = CpuMeter(lambda: [server.pid] if server.pid else [])
        with meter:
            result = asyncio.run(
                exercise(server.host, server.amqp_port, server.kafka_port, count=count, hold=hold, rss=server.rss_kb)
            )
        result["server_alive"] = server.process is not None and server.process.poll() is None
    result["server_cpu_share"] = meter.share
    result["open_files_limit"] = limit
    result["cpus"] = os.cpu_count()
    result["ok"] = result["ok"] and result["server_alive"]
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines for people."""
    rss = result.get("rss_kib", {})
    probes = [p for p in result["probes"] if "error" not in p]
    lines = [
        f"{result['amqp_connections']} AMQP + {result['kafka_connections']} Kafka connections, held {result['hold_s']:g} s, "
        f"{'all working at the end' if result['ok'] else 'FAILURES'} "
        f"(amqp {result['working_at_end']['amqp']}, kafka {result['working_at_end']['kafka']})",
    ]
    if rss:
        lines += [
            "RSS (MiB): " + ", ".join(f"{name} {kib / 1024:.1f}" for name, kib in rss.items()),
            f"RSS per idle AMQP connection {result['rss_per_idle_amqp_kib']:.1f} KiB, "
            f"per idle Kafka connection {result['rss_per_idle_kafka_kib']:.1f} KiB, "
            f"per connection after work {result['rss_per_active_connection_kib']:.1f} KiB",
        ]
    if probes:
        lines.append(
            f"while held: fresh AMQP connect max {max(p['amqp_connect_ms'] for p in probes):.1f} ms, "
            f"Kafka ApiVersions max {max(p['kafka_api_versions_ms'] for p in probes):.1f} ms ({len(probes)} probes)"
        )
    lines.append(
        f"open {result['open_amqp_s']:.2f} s (AMQP) + {result['open_kafka_s']:.2f} s (Kafka), "
        f"work {result['first_round_s']:.2f} s then {result['final_round_s']:.2f} s"
        + (f"; server CPU {result['server_cpu_share'] * 100:.0f} % of a core" if "server_cpu_share" in result else "")
    )
    for failure in (result["open_failures"] + result["first_round_failures"] + result["final_failures"])[:10]:
        lines.append(f"  failed: {failure}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_COUNT} connections held {SMOKE_HOLD} s")
    parser.add_argument("--count", type=int, default=None, help=f"connections in all (default {COUNT})")
    parser.add_argument("--hold", type=float, default=None, help=f"seconds to hold them (default {HOLD:g})")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    args = parser.parse_args(argv)
    result = run(args.smoke, count=args.count, hold=args.hold)
    print(json.dumps(result, indent=2) if args.json else summary(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
