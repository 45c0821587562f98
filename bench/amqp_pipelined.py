"""A pipelined AMQP load generator: raw frames, no client library in the way.

Publishers write basic.publish frames in large batches; consumers ack with
`multiple` every `ack_every` deliveries. It measures the server's ceiling,
not a client's. Usage:

    python bench/amqp_pipelined.py --url amqp://guest:guest@127.0.0.1:5672/ \
        --messages 200000 --publishers 2 --consumers 2

With no --url it starts an embedded wiregate. Reports end-to-end msg/s.
"""

from __future__ import annotations

import argparse
import socket
import struct
import threading
import time
from urllib.parse import urlparse

from pamqp import commands, frame, header


def _read_frames(sock: socket.socket, buf: bytearray):
    while True:
        while len(buf) >= 7:
            ftype, ch, size = struct.unpack_from(">BHI", buf, 0)
            if len(buf) < size + 8:
                break
            payload = bytes(buf[7 : 7 + size])
            del buf[: size + 8]
            yield ftype, ch, payload
        data = sock.recv(1 << 20)
        if not data:
            return
        buf += data


def connect(host: str, port: int) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    sock.sendall(header.ProtocolHeader().marshal())
    frames = _read_frames(sock, buf)
    next(frames)  # start
    sock.sendall(frame.marshal(commands.Connection.StartOk(response="\0guest\0guest"), 0))
    next(frames)  # tune
    sock.sendall(frame.marshal(commands.Connection.TuneOk(2047, 131072, 0), 0))
    sock.sendall(frame.marshal(commands.Connection.Open("/"), 0))
    next(frames)  # open-ok
    sock.sendall(frame.marshal(commands.Channel.Open(), 1))
    next(frames)
    return sock, buf


def publisher(host, port, queue, count, body, batch=500):
    sock, _ = connect(host, port)
    one = (
        frame.marshal(commands.Basic.Publish(exchange="", routing_key=queue), 1)
        + frame.marshal(header.ContentHeader(0, len(body)), 1)
        + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce"
    )
    sent = 0
    while sent < count:
        n = min(batch, count - sent)
        sock.sendall(one * n)
        sent += n
    sock.sendall(frame.marshal(commands.Connection.Close(200, "bye", 0, 0), 0))
    try:
        sock.recv(100)
    finally:
        sock.close()


def consumer(host, port, queue, count, done, prefetch=500, ack_every=100):
    sock, buf = connect(host, port)
    sock.sendall(frame.marshal(commands.Basic.Qos(prefetch_count=prefetch), 1))
    sock.sendall(frame.marshal(commands.Basic.Consume(queue=queue), 1))
    received = 0
    deliver = struct.pack(">HH", 60, 60)
    last_tag = 0
    for ftype, ch, payload in _read_frames(sock, buf):
        if ftype == 1 and payload[:4] == deliver:
            n = payload[4]
            last_tag = struct.unpack_from(">Q", payload, 5 + n)[0]
            received += 1
            if received % ack_every == 0 or received == count:
                sock.sendall(frame.marshal(commands.Basic.Ack(last_tag, True), 1))
            if received == count:
                break
    done.append(received)
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--messages", type=int, default=100000)
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    server = None
    if args.url is None:
        from wiregate.testing import Server

        server = Server()
        server.start()
        args.url = server.amqp_url
    url = urlparse(args.url)
    host, port = url.hostname, url.port or 5672
    queues = [f"bench-{i}" for i in range(args.consumers)]
    sock, _ = connect(host, port)
    for q in queues:
        sock.sendall(frame.marshal(commands.Queue.Declare(queue=q, auto_delete=False), 1))
        sock.sendall(frame.marshal(commands.Queue.Purge(queue=q), 1))
    time.sleep(0.2)
    per_consumer = args.messages // args.consumers
    done: list[int] = []
    threads = [threading.Thread(target=consumer, args=(host, port, q, per_consumer, done)) for q in queues]
    per_pub = per_consumer * args.consumers // args.publishers
    body = b"x" * args.size
    start = time.perf_counter()
    for t in threads:
        t.start()
    pubs = [
        threading.Thread(target=publisher, args=(host, port, queues[i % len(queues)], per_pub, body))
        for i in range(args.publishers)
    ]
    for t in pubs:
        t.start()
    for t in pubs + threads:
        t.join()
    elapsed = time.perf_counter() - start
    total = sum(done)
    print(f"{total} messages in {elapsed:.2f}s: {total / elapsed:,.0f} msg/s end to end")
    for q in queues:
        sock.sendall(frame.marshal(commands.Queue.Delete(queue=q), 1))
    sock.close()
    if server is not None:
        server.stop()


if __name__ == "__main__":
    main()
