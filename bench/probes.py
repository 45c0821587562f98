"""The probes of ``python -m bench``: each runs wiregate and its peer side by side.

A probe is a function ``probe(ctx) -> None`` that appends :class:`Row`s to
``ctx.rows``. Peers: a private RabbitMQ 3.10 (compat/rabbitmq.py) for AMQP,
librdkafka's built-in mock cluster for confluent-kafka, and bench's own null
Kafka broker for kafka-python. Figures are medians over ``ctx.reps`` rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import amqp_pipelined
from bench.common import (
    REPO,
    CpuMeter,
    Row,
    WiregateProcess,
    comm,
    librdkafka_mock,
    median,
    null_sink,
    pairs,
    pids_named,
    rss_kb,
    server_env,
)

BODY = b"b" * 100


def cpu_stats(cpu: CpuMeter, seconds: float, n: int) -> dict[str, float]:
    """Server CPU over a timed interval of ``seconds`` moving ``n`` messages: share of a
    core, share spent runnable but waiting for a CPU (starved), µs of CPU per message."""
    return {"cpu": cpu.cpu / seconds, "wait": cpu.wait / seconds, "us": cpu.cpu / n * 1e6}


def sum_meters(meters: list[CpuMeter]) -> CpuMeter:
    """One meter's worth of CPU and wait from several (for several timed passes)."""
    total = CpuMeter(lambda: [])
    total.cpu = sum(m.cpu for m in meters)
    total.wait = sum(m.wait for m in meters)
    total.wall = sum(m.wall for m in meters)
    return total


def cpu_extra(prefix: str, stats: list[dict[str, float]] | None) -> dict[str, float | None]:
    if not stats:
        return {f"{prefix}server_cpu": None, f"{prefix}server_wait": None, f"{prefix}server_us_per_msg": None}
    return {f"{prefix}server_cpu": median(x["cpu"] for x in stats),
            f"{prefix}server_wait": median(x["wait"] for x in stats),
            f"{prefix}server_us_per_msg": median(x["us"] for x in stats)}
RABBIT = "RabbitMQ 3.10"
MOCK = "librdkafka mock"
SINK = "null sink (bench)"
WARM_TOPIC = "bench-warm-up"


# =============================================================== start-up
def probe_startup(ctx) -> None:
    """Process start to both protocols answering, for ``wiregate serve`` and ``rabbitmq-server``."""
    WiregateProcess().start().stop()  # fills the bytecode cache (see common.server_env)
    ready, amqp, kafka, stops = [], [], [], []
    for _ in range(ctx.reps_startup):
        server = WiregateProcess().start()
        ready.append(server.ready_seconds)
        amqp.append(server.ready_amqp)
        kafka.append(server.ready_kafka)
        began = time.monotonic()
        server.stop()
        stops.append(time.monotonic() - began)
    uncached = []
    for _ in range(ctx.reps):
        server = WiregateProcess(bytecode_cache=False).start()
        uncached.append(server.ready_seconds)
        server.stop()
    rabbit_ready, rabbit_handshake, rabbit_stop = [], [], []
    if ctx.rabbitmq_enabled:
        for _ in range(ctx.reps_rabbit_startup):
            node = ctx.new_rabbitmq()
            node.start()
            rabbit_ready.append(node.start_received_seconds)
            rabbit_handshake.append(node.startup_seconds)
            began = time.monotonic()
            node.stop()
            rabbit_stop.append(time.monotonic() - began)
    ctx.rows.append(Row(
        "start-up", "process start → ready (AMQP connection.start + Kafka ApiVersions)", "s", "lower",
        median(ready), median(rabbit_ready) if rabbit_ready else None, RABBIT, target_abs=0.25,
        target_text="≤ 0.25 s", note="RabbitMQ: AMQP only (connection.start received on its port); wiregate with its bytecode cached, as an installed package has it; medians of ≥ 5 starts",
        extra={"wiregate_amqp_s": median(amqp), "wiregate_kafka_s": median(kafka), "wiregate_all_s": ready,
               "rabbitmq_all_s": rabbit_ready, "rabbitmq_full_handshake_s": rabbit_handshake},
    ))
    ctx.rows.append(Row(
        "start-up", "the same without bytecode (PYTHONDONTWRITEBYTECODE=1, editable install)", "s", "lower",
        median(uncached), median(rabbit_ready) if rabbit_ready else None, RABBIT,
        note="what `wiregate serve` costs from a source checkout on machines that set PYTHONDONTWRITEBYTECODE "
             "(this project's do): every wiregate module is compiled at every start",
        extra={"wiregate_all_s": uncached},
    ))
    ctx.rows.append(Row(
        "start-up", "graceful stop (SIGTERM / rabbitmqctl stop → exit)", "s", "lower",
        median(stops), median(rabbit_stop) if rabbit_stop else None, RABBIT,
    ))


# =============================================================== embedding
_IMPORT_AND_START = """
import json, time
t0 = time.perf_counter()
from wiregate.testing import Server
t1 = time.perf_counter()
s = Server().start()
t2 = time.perf_counter()
s.stop()
print(json.dumps({"import": t1 - t0, "start": t2 - t1}))
"""


def _fill_amqp(url: str, queues: list[str], messages: int) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for q in queues:
        ch.queue_declare(q)
        for _ in range(messages):
            ch.basic_publish("", q, BODY)
    ch.queue_declare(queues[-1], passive=True)
    conn.close()


def probe_embedding(ctx) -> None:
    """wiregate.testing.Server start/stop in this process, and the per-test reset."""
    from wiregate.testing import Server

    fresh = []
    for _ in range(ctx.reps + (0 if ctx.smoke else 1)):
        out = subprocess.run([sys.executable, "-c", _IMPORT_AND_START], capture_output=True, text=True,
                             timeout=60, check=True, cwd=REPO, env=server_env())
        fresh.append(json.loads(out.stdout.strip().splitlines()[-1]))
    fresh = fresh if ctx.smoke else fresh[1:]  # the first one filled the bytecode cache
    Server().start().stop()  # warm: first-use imports
    starts, stops = [], []
    for _ in range(ctx.counts(20, 3)):
        server = Server()
        t0 = time.perf_counter()
        server.start()
        t1 = time.perf_counter()
        server.stop()
        starts.append(t1 - t0)
        stops.append(time.perf_counter() - t1)
    ctx.rows.append(Row(
        "embedding", "in-process Server().start() (module imported)", "ms", "lower", median(starts) * 1e3,
        target_abs=20.0, target_text="≤ 20 ms", note="no peer: RabbitMQ cannot run in-process",
        extra={"stop_ms": median(stops) * 1e3},
    ))
    ctx.rows.append(Row(
        "embedding", "fresh interpreter: import wiregate.testing + first start", "ms", "lower",
        median(f["import"] + f["start"] for f in fresh) * 1e3,
        note=f"import {median(f['import'] for f in fresh) * 1e3:.0f} ms of it",
        extra={"rounds": fresh},
    ))
    queues = [f"bench-reset-{i}" for i in range(5)]
    per_queue = ctx.counts(100, 10)
    empty, after = [], []
    with Server() as server:
        for _ in range(ctx.counts(200, 20)):
            t0 = time.perf_counter()
            server.call(server.broker.reset)
            empty.append(time.perf_counter() - t0)
        for _ in range(ctx.counts(10, 2)):
            _fill_amqp(server.amqp_url, queues, per_queue)
            t0 = time.perf_counter()
            server.call(server.broker.reset)
            after.append(time.perf_counter() - t0)
    rabbit = []
    if ctx.rabbitmq_enabled:
        import pika

        url = ctx.rabbitmq().url
        for _ in range(ctx.counts(10, 2)):
            _fill_amqp(url, queues, per_queue)
            conn = pika.BlockingConnection(pika.URLParameters(url))
            ch = conn.channel()
            t0 = time.perf_counter()
            for q in queues:
                ch.queue_delete(q)
            rabbit.append(time.perf_counter() - t0)
            conn.close()
    ctx.rows.append(Row(
        "embedding", f"per-test reset after a test left 5 queues × {per_queue} msgs", "ms", "lower",
        median(after) * 1e3, median(rabbit) * 1e3 if rabbit else None, RABBIT, target_abs=5.0,
        target_text="≤ 5 ms",
        note="wiregate: server.call(broker.reset) (the `wiregate` fixture); RabbitMQ: queue.delete × 5 on an open pika channel",
        extra={"reset_empty_ms": median(empty) * 1e3},
    ))


# =============================================================== memory
def _open_idle_amqp(host: str, port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock, _ = amqp_pipelined.connect(host, port)
        socks.append(sock)
    return socks


def _open_idle_kafka(host: str, port: int, n: int) -> list[socket.socket]:
    client = b"bench-idle"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    socks = []
    for _ in range(n):
        sock = socket.create_connection((host, port))
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        sock.recv(size, socket.MSG_WAITALL)
        socks.append(sock)
    return socks


def _delta_per_connection(measure: Callable[[], float], open_: Callable[[], list[socket.socket]],
                          settle: float) -> tuple[float, float, float]:
    time.sleep(settle)
    before = measure()
    socks = open_()
    time.sleep(settle)
    after = measure()
    for sock in socks:
        sock.close()
    return before, after, (after - before) / len(socks)


def probe_memory(ctx) -> None:
    """Idle RSS of both servers and RSS per idle AMQP / Kafka connection."""
    n = ctx.counts(200, 20)
    settle = 1.0 if not ctx.smoke else 0.2
    idle, per_amqp, per_kafka = [], [], []
    for _ in range(ctx.reps):
        with WiregateProcess() as server:
            time.sleep(settle)
            idle.append(server.rss_kb() / 1024)
            b, a, d = _delta_per_connection(
                server.rss_kb, lambda: _open_idle_amqp(server.host, server.amqp_port, n), settle)
            per_amqp.append(d)
            b, a, d = _delta_per_connection(
                server.rss_kb, lambda: _open_idle_kafka(server.host, server.kafka_port, n), settle)
            per_kafka.append(d)
    rabbit_idle = rabbit_conn = None
    breakdown: dict[str, Any] = {}
    if ctx.rabbitmq_enabled:
        node = ctx.rabbitmq()
        time.sleep(settle)
        procs = [(pid, comm(pid), rss_kb(pid)) for pid in node.pids()]
        beam = node.beam_pids()
        rabbit_idle = sum(r for pid, _, r in procs if pid in beam) / 1024
        breakdown = {"processes": [{"pid": p, "name": c, "rss_mib": r / 1024} for p, c, r in procs],
                     "epmd_rss_mib": sum(rss_kb(p) for p in pids_named("epmd")) / 1024}

        def beam_rss() -> float:
            return sum(rss_kb(p) for p in node.beam_pids())

        _, _, rabbit_conn = _delta_per_connection(beam_rss, lambda: _open_idle_amqp("127.0.0.1", node.port, n),
                                                  settle)
    mock_conn = mock_idle = None
    with librdkafka_mock() as mock:
        host, port = mock.address.rsplit(":", 1)
        mock_idle = rss_kb(mock.pid) / 1024
        _, _, mock_conn = _delta_per_connection(lambda: rss_kb(mock.pid),
                                                lambda: _open_idle_kafka(host, int(port), n), settle)
    ctx.rows.append(Row(
        "memory", "idle RSS (serve process, just started)", "MiB", "lower", median(idle), rabbit_idle, RABBIT,
        target_abs=40.0, target_text="≤ 40 MB",
        note="RabbitMQ: beam.smp + its children (erl_child_setup, inet_gethost); the su/sh wrappers and the shared epmd are not counted (see JSON)",
        extra={"rabbitmq": breakdown, "wiregate_all_mib": idle},
    ))
    ctx.rows.append(Row(
        "memory", f"RSS per idle AMQP connection (open + channel, {n} connections)", "KiB", "lower",
        median(per_amqp), rabbit_conn, RABBIT, extra={"wiregate_all_kib": per_amqp},
    ))
    ctx.rows.append(Row(
        "memory", f"RSS per idle Kafka connection (after ApiVersions, {n} connections)", "KiB", "lower",
        median(per_kafka), mock_conn, MOCK, note=f"mock: RSS of its Python host process ({mock_idle:.0f} MiB idle)",
        extra={"wiregate_all_kib": per_kafka, "mock_host_idle_mib": mock_idle},
    ))


# =============================================================== pika / aio-pika
def _pika_round(url: str, n_publish: int, n_confirm: int, meter: Callable[[], CpuMeter]) -> dict[str, Any]:
    import pika

    queue = "bench-pika"
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.queue_purge(queue)
    out: dict[str, Any] = {}
    with meter() as cpu:
        t0 = time.perf_counter()
        for _ in range(n_publish):
            ch.basic_publish("", queue, BODY)
        ch.queue_declare(queue, passive=True)  # a round trip: everything before it was taken
        out["publish"] = n_publish / (time.perf_counter() - t0)
    out["publish_cpu"] = cpu_stats(cpu, cpu.wall, n_publish)
    confirm = conn.channel()
    confirm.confirm_delivery()
    with meter() as cpu:
        t0 = time.perf_counter()
        for _ in range(n_confirm):
            confirm.basic_publish("", queue, BODY)  # waits for its basic.ack
        out["confirm"] = n_confirm / (time.perf_counter() - t0)
    out["confirm_cpu"] = cpu_stats(cpu, cpu.wall, n_confirm)
    total = n_publish + n_confirm
    ch.basic_qos(prefetch_count=500)
    seen = 0

    def on_message(channel, method, properties, body) -> None:
        nonlocal seen
        seen += 1
        if seen % 100 == 0 or seen == total:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if seen == total:
            channel.stop_consuming()

    with meter() as cpu:
        t0 = time.perf_counter()
        ch.basic_consume(queue, on_message)
        ch.start_consuming()
        out["consume"] = total / (time.perf_counter() - t0)
    out["consume_cpu"] = cpu_stats(cpu, cpu.wall, total)
    ch.queue_delete(queue)
    conn.close()
    return out


async def _aio_pika_round_async(url: str, n_publish: int, n_confirm: int,
                                meter: Callable[[], CpuMeter]) -> dict[str, Any]:
    import aio_pika

    queue_name = "bench-aio-pika"
    conn = await aio_pika.connect(url)
    out: dict[str, Any] = {}
    try:
        ch = await conn.channel(publisher_confirms=False)
        queue = await ch.declare_queue(queue_name)
        await queue.purge()
        with meter() as cpu:
            t0 = time.perf_counter()
            for _ in range(n_publish):
                await ch.default_exchange.publish(aio_pika.Message(BODY), routing_key=queue_name)
            await ch.declare_queue(queue_name, passive=True)
            out["publish"] = n_publish / (time.perf_counter() - t0)
        out["publish_cpu"] = cpu_stats(cpu, cpu.wall, n_publish)
        confirm = await conn.channel(publisher_confirms=True)
        with meter() as cpu:
            t0 = time.perf_counter()
            for _ in range(n_confirm):
                await confirm.default_exchange.publish(aio_pika.Message(BODY), routing_key=queue_name)
            out["confirm"] = n_confirm / (time.perf_counter() - t0)
        out["confirm_cpu"] = cpu_stats(cpu, cpu.wall, n_confirm)
        total = n_publish + n_confirm
        await ch.set_qos(prefetch_count=500)
        seen = 0
        with meter() as cpu:
            t0 = time.perf_counter()
            async with queue.iterator() as messages:
                async for message in messages:
                    seen += 1
                    if seen % 100 == 0 or seen == total:
                        await message.ack(multiple=True)
                    if seen == total:
                        break
            out["consume"] = total / (time.perf_counter() - t0)
        out["consume_cpu"] = cpu_stats(cpu, cpu.wall, total)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await conn.close()
    return out


def _aio_pika_round(url, n_publish, n_confirm, meter):
    return asyncio.run(_aio_pika_round_async(url, n_publish, n_confirm, meter))


def _amqp_client_probe(ctx, name: str, round_: Callable, target: float | None) -> None:
    n_publish, n_confirm = ctx.counts(20000, 200), ctx.counts(4000, 50)
    results: dict[str, list[dict]] = {"wiregate": [], "rabbitmq": []}
    with ctx.wiregate(name) as server:
        sides = [("wiregate", server.amqp_url, server.cpu_meter)]
        if ctx.rabbitmq_enabled:
            node = ctx.rabbitmq()
            sides.append(("rabbitmq", node.url, lambda: CpuMeter(node.beam_pids)))
        errors: list[str] = []
        for rep in range(ctx.reps):  # interleaved: load from elsewhere on the machine hits both sides alike
            done = {}
            for side, url, meter in sides:
                try:
                    done[side] = round_(url, n_publish, n_confirm, meter)
                except Exception as error:  # one bad round drops its pair; the rest still count
                    errors.append(f"{side} round {rep + 1}: {type(error).__name__}: {error}")
                    break
            if len(done) == len(sides):
                for side, result in done.items():
                    results[side].append(result)
        if not results["wiregate"]:
            raise RuntimeError(f"{name}: every round failed: {errors}")
    labels = {
        "publish": f"publish, no confirms ({n_publish} × 100 B)",
        "confirm": f"publish, per-message confirm ({n_confirm} × 100 B)",
        "consume": f"consume, manual ack (prefetch 500, ack multiple /100; {n_publish + n_confirm} msgs)",
    }
    for key, label in labels.items():
        wg = results["wiregate"]
        rb = results["rabbitmq"]
        ctx.rows.append(Row(
            name, label, "msg/s", "higher", median(r[key] for r in wg),
            median(r[key] for r in rb) if rb else None, RABBIT,
            target_ratio=target, target_text=f"≥ {target}× RabbitMQ" if target else None,
            paired_ratios=pairs([r[key] for r in wg], [r[key] for r in rb]),
            note=f"failed rounds (dropped with their pair): {'; '.join(errors)}" if errors else "",
            extra={"wiregate_all": [r[key] for r in wg], "peer_all": [r[key] for r in rb], "errors": errors,
                   **cpu_extra("", [r[key + "_cpu"] for r in wg]),
                   **cpu_extra("peer_", [r[key + "_cpu"] for r in rb])},
        ))


def probe_pika(ctx) -> None:
    """Unmodified pika BlockingConnection against both brokers."""
    _amqp_client_probe(ctx, "pika", _pika_round, 1.2)


def probe_aio_pika(ctx) -> None:
    """aio-pika against both brokers (no target of its own: the issue sets pika's)."""
    _amqp_client_probe(ctx, "aio-pika", _aio_pika_round, None)


# =============================================================== pipelined
def probe_pipelined(ctx) -> None:
    """The raw-frame generator: flood throughput, and latency at a fixed rate."""
    messages = ctx.counts(300_000, 5_000)
    publishers, consumers = ctx.pipelined_procs
    rate = ctx.counts(10_000, 2_000)
    paced_n = ctx.counts(30_000, 1_000)
    results: dict[str, dict[str, list]] = {}

    with ctx.wiregate("pipelined") as server:
        sides = [("wiregate", server.amqp_url, server.cpu_meter)]
        if ctx.rabbitmq_enabled:
            node = ctx.rabbitmq()
            sides.append(("rabbitmq", node.url, lambda: CpuMeter(node.beam_pids)))
        for _ in range(ctx.reps):  # interleaved
            for side, url, meter in sides:
                out = results.setdefault(side, {"flood": [], "paced": [], "cpu": []})
                flood = amqp_pipelined.run(url, messages, publishers, consumers, meter=meter)
                cpu = flood.pop("meter")
                out["flood"].append(flood)
                out["cpu"].append(cpu_stats(cpu, cpu.wall, flood["messages"]))
                out["paced"].append(amqp_pipelined.run(url, paced_n, publishers, consumers, rate=rate))
    wg, rb = results["wiregate"], results.get("rabbitmq")

    def med(side, phase, key):
        return median(r[key] for r in side[phase]) if side else None

    gen_cpu = median(r["generator_cpu_s"] / r["seconds"] for r in wg["flood"])
    ctx.rows.append(Row(
        "pipelined", f"end to end, flood ({messages} × 100 B, {publishers} publisher + {consumers} consumer processes)",
        "msg/s", "higher", med(wg, "flood", "msg_per_s"), med(rb, "flood", "msg_per_s"), RABBIT,
        target_abs=100_000, target_ratio=1.0, target_text="≥ 100 000 msg/s and ≥ 1.0× RabbitMQ",
        paired_ratios=pairs([r["msg_per_s"] for r in wg["flood"]], [r["msg_per_s"] for r in rb["flood"]] if rb else None),
        extra={"wiregate_all": wg["flood"], "peer_all": rb["flood"] if rb else None,
               **cpu_extra("", wg["cpu"]), **cpu_extra("peer_", rb["cpu"] if rb else None),
               "generator_cpu": gen_cpu,
               "flood_p50_ms": med(wg, "flood", "p50_ms"), "flood_p99_ms": med(wg, "flood", "p99_ms"),
               "peer_flood_p50_ms": med(rb, "flood", "p50_ms"), "peer_flood_p99_ms": med(rb, "flood", "p99_ms")},
    ))
    for q in ("p50", "p99"):
        ctx.rows.append(Row(
            "pipelined", f"publish → deliver latency {q} at {rate} msg/s (paced)", "ms", "lower",
            med(wg, "paced", f"{q}_ms"), med(rb, "paced", f"{q}_ms"), RABBIT,
            paired_ratios=pairs([r[f"{q}_ms"] for r in wg["paced"]], [r[f"{q}_ms"] for r in rb["paced"]] if rb else None),
            extra={"wiregate_all": [r[f"{q}_ms"] for r in wg["paced"]],
                   "peer_all": [r[f"{q}_ms"] for r in rb["paced"]] if rb else None},
        ))


# =============================================================== Kafka
def _ck_produce(bootstrap: str, topic: str, n: int, size: int, meter=None) -> float:
    import confluent_kafka

    errors = []
    producer = confluent_kafka.Producer({
        "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
        "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 4_000_000,
        "delivery.report.only.error": True,
        "on_delivery": lambda err, msg: errors.append(err) if err else None,
    })
    body = b"k" * size
    producer.produce(WARM_TOPIC, body, partition=0)  # connects; the measured topic gets exactly n records
    producer.flush(30)
    producer.list_topics(topic, timeout=10)
    with meter or contextlib.nullcontext():
        t0 = time.perf_counter()
        for _ in range(n):
            try:
                producer.produce(topic, body)
            except BufferError:
                producer.poll(0.01)
                producer.produce(topic, body)
        left = producer.flush(120)
        elapsed = time.perf_counter() - t0
    if left or errors:
        raise RuntimeError(f"confluent-kafka produce: {left} undelivered, errors {errors[:3]}")
    return n / elapsed


def _ck_consume_pass(bootstrap: str, topic: str, starts: list[int], n: int, meter=None) -> tuple[int, float]:
    """One fresh consumer reads the ``n`` records from ``starts`` (an offset per
    partition) to the end of the topic; returns (records, seconds)."""
    import confluent_kafka

    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        # A fetch that finds a partition at its end is held this long by either broker; librdkafka
        # then sometimes waits it out before the next round: 100 ms instead of 500 bounds that pause.
        "fetch.wait.max.ms": 100,
        # librdkafka stops fetching for fetch.queue.backoff.ms (1 s) whenever its local queue holds
        # more than queued.min.messages (100 000, counted over all partitions): a pass of ~180 000
        # 100 B records (~0.3 s) then took ~1.3 s or not depending on whether the fetcher got that
        # far ahead of consume(), on either broker (the faster one the more often). Above the
        # records of a pass, the client never pauses itself and the pass measures the deliveries.
        "queued.min.messages": 1_000_000,
    })
    consumer.list_topics(topic, timeout=10)  # connected before the clock starts
    seen = 0
    with meter or contextlib.nullcontext():
        t0 = time.perf_counter()
        consumer.assign([confluent_kafka.TopicPartition(topic, p, start) for p, start in enumerate(starts)])
        deadline = time.monotonic() + 60
        while seen < n:
            batch = consumer.consume(min(10000, n - seen), 0.05)
            for message in batch:
                if message.error():
                    raise RuntimeError(f"confluent-kafka consume: {message.error()}")
            seen += len(batch)
            if time.monotonic() > deadline:
                raise RuntimeError(f"confluent-kafka consume: {seen} of {n}")
        elapsed = time.perf_counter() - t0
    consumer.close()
    return seen, elapsed


def _ck_consume(bootstrap: str, topic: str, starts: list[int], n: int, passes: int,
                meters: list | None = None) -> float:
    """Records/s over ``passes`` fresh consumers, each reading the ``n`` records from ``starts``
    to the end (``meters``: one per pass, entered around each timed pass)."""
    total = seconds = 0.0
    for k in range(passes):
        got, took = _ck_consume_pass(bootstrap, topic, starts, n, meters[k] if meters else None)
        total += got
        seconds += took
    return total / seconds


def _ck_watermarks(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int]]:
    """(low, high) watermark of each partition (librdkafka's mock keeps about 5 MB per
    partition, so its low watermarks move)."""
    import confluent_kafka

    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    marks = [consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p), timeout=10)
             for p in range(partitions)]
    consumer.close()
    return marks


def _tail_counts(sizes: list[int], total: int) -> list[int]:
    """How many of the last records of each partition to read so that ``total``
    are read in all (at most what the partitions hold), as evenly as they allow."""
    counts = [0] * len(sizes)
    left = min(total, sum(sizes))
    while left:
        room = [i for i, size in enumerate(sizes) if counts[i] < size]
        share = max(1, left // len(room))
        for i in room:
            take = min(share, sizes[i] - counts[i], left)
            counts[i] += take
            left -= take
            if not left:
                break
    return counts


def _ck_partitions(bootstrap: str, topic: str) -> int:
    """Partitions of ``topic`` (a metadata request for it auto-creates it on the mock)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for _ in range(50):
        md = admin.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and t.partitions:
            return len(t.partitions)
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} did not appear")


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def probe_kafka_confluent(ctx) -> None:
    """confluent-kafka produce (acks=all, linger.ms 5) and consume: wiregate vs librdkafka's mock.

    The mock auto-creates topics (4 partitions) and keeps only about 5 MB per
    partition, dropping the oldest records: consumers read what it retained
    (on wiregate, whose topic gets as many partitions, the same number of
    last records of each partition), in as many passes (fresh consumers) as
    it takes to read about as many records as were produced.
    """
    # about a second of producing each on this machine: shorter windows were
    # dominated by connection set-up and scheduling noise
    sizes = {100: ctx.counts(600_000, 2_000), 1024: ctx.counts(200_000, 500)}
    res: dict[tuple[str, int], dict[str, list]] = {}
    partitions = 1
    consume_n: dict[int, int] = {}
    passes: dict[int, int] = {}
    with librdkafka_mock() as mock, ctx.wiregate("kafka_confluent") as server:
        _create_topic(server.bootstrap, WARM_TOPIC, 1)
        for size, n in sizes.items():
            mk = res.setdefault(("mock", size), {"produce": [], "consume": []})
            wg = res.setdefault(("wiregate", size), {"produce": [], "consume": [], "pcpu": [], "ccpu": []})
            for rep in range(ctx.reps):  # interleaved: mock round, then wiregate round
                topic = f"bench-ck-{size}-{rep}"
                partitions = _ck_partitions(mock.address, topic)
                mk["produce"].append(_ck_produce(mock.address, topic, n, size))
                # What this round's topic retained on the mock is what both sides read back: the
                # same last records of each partition, to the end of the log, so that neither
                # client's fetcher runs on past what the pass reads (wiregate keeps all n records;
                # reading its first ones would leave librdkafka fetching the rest meanwhile).
                marks = _ck_watermarks(mock.address, topic, partitions)
                retained = [high - low for low, high in marks]
                consume_n[size] = sum(retained)
                passes[size] = max(1, round(n / consume_n[size]))
                mock_starts = [low for low, _high in marks]
                mk["consume"].append(_ck_consume(mock.address, topic, mock_starts, consume_n[size], passes[size]))
                _create_topic(server.bootstrap, topic, partitions)
                # Server CPU over the timed sections only (client set-up and warm-up excluded).
                cpu = server.cpu_meter()
                wg["produce"].append(_ck_produce(server.bootstrap, topic, n, size, cpu))
                wg["pcpu"].append(cpu_stats(cpu, cpu.wall, n))
                meters = [server.cpu_meter() for _ in range(passes[size])]
                # (each side's partitioner spread the records its own way, and a short run puts
                # them all in one partition: wiregate reads as many last records in all, as evenly
                # over its partitions as they allow)
                wg_marks = _ck_watermarks(server.bootstrap, topic, partitions)
                wg_counts = _tail_counts([high - low for low, high in wg_marks], consume_n[size])
                wg_starts = [high - count for (_low, high), count in zip(wg_marks, wg_counts, strict=True)]
                wg["consume"].append(_ck_consume(server.bootstrap, topic, wg_starts, sum(wg_counts),
                                                 passes[size], meters))
                wg["ccpu"].append(cpu_stats(sum_meters(meters), sum(m.wall for m in meters),
                                            sum(wg_counts) * passes[size]))
    for size, n in sizes.items():
        wg, mk = res[("wiregate", size)], res[("mock", size)]
        for op, cpu_key in (("produce", "pcpu"), ("consume", "ccpu")):
            if op == "produce":
                label, note = f"produce {n} × {size} B records ({partitions} partitions)", "acks=all, linger.ms=5"
            else:
                label = f"consume {passes[size]} × ~{consume_n[size]} × {size} B records ({partitions} partitions)"
                note = ("fresh consumer per pass, broker connection up before the clock, fetch.wait.max.ms 100; "
                        "passes × the records the mock retained, read on both brokers as the same last records "
                        "of each partition up to its end")
            ctx.rows.append(Row(
                "kafka-confluent", label, "rec/s", "higher",
                median(wg[op]), median(mk[op]), MOCK, target_ratio=1.0, target_text="≥ 1.0× mock", note=note,
                paired_ratios=pairs(wg[op], mk[op]),
                extra={"wiregate_all": wg[op], "peer_all": mk[op], **cpu_extra("", wg[cpu_key])},
            ))


def _kp_produce(bootstrap: str, topic: str, n: int, size: int, meter=None) -> float:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    body = b"k" * size
    producer.send(WARM_TOPIC, body, partition=0).get(30)  # connects; the measured topic gets exactly n records
    producer.partitions_for(topic)
    with meter or contextlib.nullcontext():
        t0 = time.perf_counter()
        futures = [producer.send(topic, body) for _ in range(n)]
        producer.flush(120)
        elapsed = time.perf_counter() - t0
    futures[-1].get(1)
    failed = sum(1 for f in futures if f.failed())
    producer.close()
    if failed:
        raise RuntimeError(f"kafka-python produce: {failed} failed")
    return n / elapsed


def _kp_consume(bootstrap: str, topic: str, n: int, meter=None) -> float:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    consumer.partitions_for_topic(topic)  # connected before the clock starts
    tp = TopicPartition(topic, 0)
    seen = 0
    with meter or contextlib.nullcontext():
        t0 = time.perf_counter()
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 120
        while seen < n:
            batch = consumer.poll(timeout_ms=50, max_records=min(10000, n - seen))
            seen += sum(len(v) for v in batch.values())
            if time.monotonic() > deadline:
                raise RuntimeError(f"kafka-python consume: {seen} of {n}")
        elapsed = time.perf_counter() - t0
    consumer.close()
    return seen / elapsed


def probe_kafka_python(ctx) -> None:
    """kafka-python produce and consume: wiregate vs the null sink (kafka-python cannot bootstrap the mock)."""
    sizes = {100: ctx.counts(30_000, 1_000), 1024: ctx.counts(10_000, 300)}
    res: dict[tuple[str, int], dict[str, list]] = {}
    with ctx.wiregate("kafka_python") as server:
        _create_topic(server.bootstrap, WARM_TOPIC, 1)
        for size, n in sizes.items():
            sk = res.setdefault(("sink", size), {"produce": [], "consume": []})
            wg = res.setdefault(("wiregate", size), {"produce": [], "consume": [], "pcpu": [], "ccpu": []})
            with null_sink(1, size) as sink:
                for rep in range(ctx.reps):  # interleaved: sink round, then wiregate round
                    topic = f"bench-kp-{size}-{rep}"
                    sk["produce"].append(_kp_produce(sink.address, topic, n, size))
                    sk["consume"].append(_kp_consume(sink.address, topic, n))
                    _create_topic(server.bootstrap, topic, 1)
                    cpu = server.cpu_meter()  # entered around the timed section only
                    wg["produce"].append(_kp_produce(server.bootstrap, topic, n, size, cpu))
                    wg["pcpu"].append(cpu_stats(cpu, cpu.wall, n))
                    cpu = server.cpu_meter()
                    wg["consume"].append(_kp_consume(server.bootstrap, topic, n, cpu))
                    wg["ccpu"].append(cpu_stats(cpu, cpu.wall, n))
    for size, n in sizes.items():
        wg, sk = res[("wiregate", size)], res[("sink", size)]
        for op, cpu_key in (("produce", "pcpu"), ("consume", "ccpu")):
            ctx.rows.append(Row(
                "kafka-python", f"{op} {n} × {size} B records (1 partition)", "rec/s", "higher",
                median(wg[op]), median(sk[op]), SINK + (" (as source)" if op == "consume" else ""),
                target_ratio=0.9 if op == "produce" else None,
                target_text="≥ 0.9× null sink" if op == "produce" else None,
                paired_ratios=pairs(wg[op], sk[op]),
                note="acks=all, linger_ms=5" if op == "produce" else "no target: the sink serves canned batches",
                extra={"wiregate_all": wg[op], "peer_all": sk[op], **cpu_extra("", wg[cpu_key])},
            ))


# =============================================================== trace (placeholder)
def probe_trace(ctx) -> None:
    """The cost of wiregate's decoded-frame trace while disabled: bench/trace_overhead.py's own probe.

    That module (written with the trace, by its author) defines
    ``probe(ctx)``, appending :class:`bench.common.Row`s to ``ctx.rows`` like
    the probes here. Without it, this placeholder records an empty row so
    the table shows the gap.
    """
    spec = importlib.util.find_spec("bench.trace_overhead")
    if spec is not None:
        module = importlib.import_module("bench.trace_overhead")
        if hasattr(module, "probe"):
            module.probe(ctx)
            return
    ctx.rows.append(Row(
        "trace", "decoded-frame trace, disabled: cost", "%", "lower", None,
        target_text="noise", note="PLACEHOLDER: bench/trace_overhead.py (with probe(ctx)) is missing",
    ))


def probe_connections(ctx) -> None:
    """Many concurrent connections: bench/connections.py (1 000 mixed AMQP and Kafka, held; 40 in smoke)."""
    from bench import connections

    result = connections.run(ctx.smoke)
    rss = result.get("rss_kib", {})
    held = rss.get("held") or rss.get("after_work")
    ctx.rows.append(Row(
        "connections", f"RSS with {result['amqp_connections']} AMQP + {result['kafka_connections']} Kafka connections held",
        "MiB", "lower", held / 1024 if held else None,
        note="every connection still working at the end" if result["ok"] else "FAILURES: see results.json",
        extra={"result": {k: v for k, v in result.items() if k != "probes"}},
    ))
    ctx.rows.append(Row(
        "connections", "RSS per idle AMQP connection (bench/connections.py)", "KiB", "lower",
        result.get("rss_per_idle_amqp_kib"),
    ))
    ctx.rows.append(Row(
        "connections", "RSS per idle Kafka connection (bench/connections.py)", "KiB", "lower",
        result.get("rss_per_idle_kafka_kib"),
    ))
    if not result["ok"]:
        raise RuntimeError("some connections failed; see results.json")


PROBES: dict[str, Callable] = {
    "startup": probe_startup,
    "embedding": probe_embedding,
    "memory": probe_memory,
    "pika": probe_pika,
    "aio_pika": probe_aio_pika,
    "pipelined": probe_pipelined,
    "kafka_confluent": probe_kafka_confluent,
    "kafka_python": probe_kafka_python,
    "trace": probe_trace,
    "connections": probe_connections,
}
