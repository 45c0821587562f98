"""A pipelined AMQP load generator: raw frames, no client library in the way.

Publishers write ``basic.publish`` frames in large batches; consumers ack with
``multiple`` every ``ack_every`` deliveries (prefetch 500). Every publisher
and every consumer is its own process, so the generator is not held to one
core by the GIL. Each body starts with the publish time (``CLOCK_MONOTONIC``,
shared by all processes on the machine), so consumers measure publish →
deliver latency. It measures the server's ceiling, not a client's. Usage:

    python bench/amqp_pipelined.py --url amqp://guest:guest@127.0.0.1:5672/ \\
        --messages 200000 --publishers 2 --consumers 2
    python bench/amqp_pipelined.py --rate 5000 --messages 20000   # paced: latency at a fixed load

With no --url it starts an embedded wiregate (in this process: it then shares
a core with nothing but itself; ``python -m bench`` runs ``wiregate serve``
instead). Reports end-to-end msg/s and p50/p99 latency.

Flood mode (no --rate): publishers write as fast as TCP lets them, so the
latency figures are mostly time spent queued in the broker; the paced mode's
figures are the broker's latency at a load it can sustain.
"""

from __future__ import annotations

import argparse
import array
import multiprocessing
import socket
import struct
import time
from urllib.parse import unquote, urlparse

from pamqp import commands, frame, header

_FRAME = struct.Struct(">BHI")
_STAMP = struct.Struct(">q")
_CONNECTION_CLOSE = b"\x00\x0a\x00\x32"
_CHANNEL_CLOSE = b"\x00\x14\x00\x28"


class BrokerClosed(RuntimeError):
    """The broker closed the connection or the channel."""


def _read_frames(sock: socket.socket, buf: bytearray):
    while True:
        while len(buf) >= 7:
            ftype, ch, size = _FRAME.unpack_from(buf, 0)
            if len(buf) < size + 8:
                break
            payload = bytes(buf[7 : 7 + size])
            del buf[: size + 8]
            yield ftype, ch, payload
        data = sock.recv(1 << 20)
        if not data:
            return
        buf += data


def connect(host: str, port: int, user: str = "guest", password: str = "guest", vhost: str = "/"):
    """Open a connection and channel 1 with raw frames; return the socket and its read buffer."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    sock.sendall(header.ProtocolHeader().marshal())
    frames = _read_frames(sock, buf)
    next(frames)  # start
    sock.sendall(frame.marshal(commands.Connection.StartOk(response=f"\0{user}\0{password}"), 0))
    next(frames)  # tune
    sock.sendall(frame.marshal(commands.Connection.TuneOk(2047, 131072, 0), 0))
    sock.sendall(frame.marshal(commands.Connection.Open(vhost), 0))
    next(frames)  # open-ok
    sock.sendall(frame.marshal(commands.Channel.Open(), 1))
    next(frames)
    return sock, buf


def _close(sock: socket.socket) -> None:
    try:
        sock.sendall(frame.marshal(commands.Connection.Close(200, "bye", 0, 0), 0))
        sock.settimeout(5)
        sock.recv(100)
    except OSError:
        pass
    finally:
        sock.close()


def publisher(target, queue, count, size, rate, barrier, results, batch=500):
    """Publish ``count`` messages; ``rate`` (msg/s, this publisher's share) paces them."""
    sock, _ = connect(*target)
    body_tail = b"x" * max(0, size - 8) + b"\xce"
    prefix = (
        frame.marshal(commands.Basic.Publish(exchange="", routing_key=queue), 1)
        + frame.marshal(header.ContentHeader(0, max(size, 8)), 1)
        + _FRAME.pack(3, 1, max(size, 8))
    )
    stamp = _STAMP.pack
    clock = time.monotonic_ns
    if rate:
        batch = max(1, int(rate / 1000))  # one batch per millisecond
        interval = batch / rate
    barrier.wait()
    cpu0 = time.process_time()
    began = clock()
    sent = 0
    next_at = time.monotonic()
    while sent < count:
        n = min(batch, count - sent)
        if rate:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += interval
        sock.sendall((prefix + stamp(clock()) + body_tail) * n)
        sent += n
    ended = clock()
    _close(sock)
    results.put(("pub", began, ended, sent, time.process_time() - cpu0, b""))


def consumer(target, queue, count, barrier, results, prefetch=500, ack_every=100):
    """Consume ``count`` messages, acking with ``multiple``; record each one's latency."""
    sock, buf = connect(*target)
    sock.sendall(frame.marshal(commands.Basic.Qos(prefetch_count=prefetch), 1))
    sock.sendall(frame.marshal(commands.Basic.Consume(queue=queue), 1))
    latencies = array.array("q")
    record = latencies.append
    unpack_frame = _FRAME.unpack_from
    unpack_stamp = _STAMP.unpack_from
    clock = time.monotonic_ns
    received = acked = 0
    first = last = 0
    barrier.wait()
    cpu0 = time.process_time()
    recv_into = sock.recv_into
    chunk = bytearray(1 << 20)
    view = memoryview(chunk)
    while received < count:
        n = recv_into(view)
        if not n:
            raise BrokerClosed("the broker closed the connection")
        now = clock()
        buf += view[:n]
        pos = 0
        end_buf = len(buf)
        while end_buf - pos >= 7:
            ftype, _ch, size = unpack_frame(buf, pos)
            end = pos + 8 + size
            if end > end_buf:
                break
            if ftype == 3:
                received += 1
                record(now - unpack_stamp(buf, pos + 7)[0])
            elif ftype == 1 and buf[pos + 7 : pos + 11] in (_CONNECTION_CLOSE, _CHANNEL_CLOSE):
                raise BrokerClosed(bytes(buf[pos + 7 : end]).decode("latin-1"))
            pos = end
        del buf[:pos]
        if received and not first:
            first = now
        if received - acked >= ack_every or (received >= count and received > acked):
            # Delivery tags on a channel count up from 1: the last tag is the count.
            sock.sendall(frame.marshal(commands.Basic.Ack(received, True), 1))
            acked = received
        last = now
    _close(sock)
    results.put(("con", first, last, received, time.process_time() - cpu0, latencies.tobytes()))


def run(url: str, messages: int, publishers: int = 2, consumers: int = 2, size: int = 100,
        rate: float | None = None, timeout: float = 300.0, meter=None) -> dict:
    """Run one round against ``url``; return msg/s, latency percentiles and CPU use.

    ``meter``, if given, is a context manager factory entered when every
    generator process is connected and ready (it passes the start barrier
    with them) and left when the last one reported: it measures the server
    over the run, not over the processes' start-up. It is returned as
    ``result["meter"]``.

    Returns:
        ``{"messages", "seconds", "msg_per_s", "p50_ms", "p99_ms", "max_ms",
        "generator_cpu_s", ...}``.
    """
    parsed = urlparse(url)
    vhost = unquote(parsed.path[1:]) if parsed.path not in ("", "/") else "/"
    target = (parsed.hostname, parsed.port or 5672, parsed.username or "guest", parsed.password or "guest", vhost)
    queues = [f"bench-pipelined-{i}" for i in range(consumers)]
    sock, buf = connect(*target)
    frames = _read_frames(sock, buf)
    for q in queues:
        sock.sendall(frame.marshal(commands.Queue.Declare(queue=q, auto_delete=False), 1))
        next(frames)
        sock.sendall(frame.marshal(commands.Queue.Purge(queue=q), 1))
        next(frames)
    per_consumer = messages // consumers
    total = per_consumer * consumers
    per_queue_pubs = [[i for i in range(publishers) if i % consumers == c] for c in range(consumers)]
    if any(not pubs for pubs in per_queue_pubs):
        raise ValueError("need at least as many publishers as consumers")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(publishers + consumers + 1)
    results = ctx.Queue()
    procs = []
    for c, q in enumerate(queues):
        procs.append(ctx.Process(target=consumer, args=(target, q, per_consumer, barrier, results), daemon=True))
        pubs = per_queue_pubs[c]
        for k, _ in enumerate(pubs):
            share = per_consumer // len(pubs) + (1 if k < per_consumer % len(pubs) else 0)
            pub_rate = rate / publishers if rate else None
            procs.append(ctx.Process(target=publisher, args=(target, q, share, size, pub_rate, barrier, results),
                                     daemon=True))
    for p in procs:
        p.start()
    reports = []
    measuring = None
    try:
        barrier.wait(timeout=timeout)
        if meter is not None:
            measuring = meter()
            measuring.__enter__()
        for _ in procs:
            reports.append(results.get(timeout=timeout))
        if measuring is not None:
            measuring.__exit__(None, None, None)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        for q in queues:
            sock.sendall(frame.marshal(commands.Queue.Delete(queue=q), 1))
            next(frames)
        _close(sock)
    began = min(r[1] for r in reports if r[0] == "pub")
    ended = max(r[2] for r in reports if r[0] == "con")
    received = sum(r[3] for r in reports if r[0] == "con")
    lat = array.array("q")
    for r in reports:
        if r[0] == "con":
            lat.frombytes(r[5])
    ordered = sorted(lat)
    seconds = (ended - began) / 1e9

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] / 1e6 if ordered else float("nan")

    if received != total:
        raise RuntimeError(f"received {received} of {total}")
    return {
        "messages": received,
        "seconds": seconds,
        "msg_per_s": received / seconds if seconds > 0 else float("nan"),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": ordered[-1] / 1e6 if ordered else float("nan"),
        "generator_cpu_s": sum(r[4] for r in reports),
        "publishers": publishers,
        "consumers": consumers,
        "rate": rate,
        "meter": measuring,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rate", type=float, help="total msg/s to pace the publishers at (default: flood)")
    args = parser.parse_args()
    server = None
    if args.url is None:
        from wiregate.testing import Server

        server = Server()
        server.start()
        args.url = server.amqp_url
    try:
        r = run(args.url, args.messages, args.publishers, args.consumers, args.size, args.rate)
    finally:
        if server is not None:
            server.stop()
    print(
        f"{r['messages']} messages in {r['seconds']:.2f}s: {r['msg_per_s']:,.0f} msg/s end to end; "
        f"latency p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms; generator CPU {r['generator_cpu_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
