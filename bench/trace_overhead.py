"""What the decoded-frame trace costs: nothing measurable while it is off.

With tracing off, a connection's ``tap`` is ``None`` and the hot path pays
one ``self.tap is not None`` check per socket read and per flush.  The
bench compares three builds of the gateway's connection handler:

- ``off``: the normal build, tracing off;
- ``bypassed``: the same build with the checks removed from
  ``ConnectionHandler._read_loop``, ``_write_now`` and ``_flush`` (their
  source, minus the ``if self.tap is not None…:`` blocks, recompiled): "no
  trace code at all";
- ``on``: tracing on, to show what it costs while someone listens.

Two measurements:

1. **In process** (the verdict): the real ``ConnectionHandler`` and
   ``AMQPConnection`` under Trio, fed pipelined ``basic.publish`` frames
   (500 per 64 KiB-ish read) from an in-memory stream, with a no-ack
   consumer on the same connection so every message also goes out as a
   delivery.  CPU time per message; the variants alternate run by run
   (``off``, ``bypassed``, ``on`` with a null sink), so load from other
   processes on a shared machine hits them alike; the figures are medians
   and the ratio is the median of adjacent-run ratios.
2. **End to end** (context): ``wiregate serve`` per variant in its own
   process (``on`` = ``--trace-file /dev/null``: decoded and serialised as
   JSON) under the pipelined generator ``bench/amqp_pipelined.py`` (one
   publisher and one consumer process); server CPU per message from /proc
   and msg/s.  On a busy 2-core machine these wander by ±20 %.

It also times the check itself and derives an upper bound: at most four
checks per message (a read and a flush on the publishing and on the
consuming connection; pipelining makes it far fewer).

    python bench/trace_overhead.py                  # full
    python bench/trace_overhead.py --smoke          # seconds
    python bench/trace_overhead.py --no-end-to-end  # in process only

Importable: ``run(smoke) -> dict`` returns the figures; ``probe(ctx)``
adds rows to ``python -m bench``'s table.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import timeit
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VARIANTS = ("off", "bypassed", "on")


# ------------------------------------------------------------- the server
def bypassed_methods() -> dict[str, Any]:
    """``_read_loop``, ``_write_now`` and ``_flush`` of ConnectionHandler without the tap checks.

    Raises:
        RuntimeError: The source no longer has the expected shape.
    """
    from wiregate.gateway import connection as module

    methods = {}
    for name in ("_read_loop", "_write_now", "_flush"):
        source = textwrap.dedent(inspect.getsource(getattr(module.ConnectionHandler, name)))
        kept: list[str] = []
        skip_deeper_than: int | None = None
        removed = 0
        for line in source.splitlines(keepends=True):
            indent = len(line) - len(line.lstrip())
            if skip_deeper_than is not None:
                if line.strip() and indent > skip_deeper_than:
                    continue
                skip_deeper_than = None
            if line.strip().startswith("if self.tap is not None") and line.rstrip().endswith(":"):
                skip_deeper_than = indent
                removed += 1
                continue
            kept.append(line)
        code = "".join(kept)
        if not removed or "tap" in code:
            raise RuntimeError(f"ConnectionHandler.{name} changed shape: cannot remove the tap check")
        namespace = dict(vars(module))
        exec(compile("from __future__ import annotations\n" + code, f"<{name} without the tap check>", "exec"), namespace)
        methods[name] = namespace[name]
    return methods


def _serve(variant: str) -> None:
    """The server process of one variant (``python bench/trace_overhead.py --serve VARIANT``)."""
    sys.modules.setdefault("hypothesis", None)  # type: ignore[arg-type]  # as the wiregate command does
    from wiregate.gateway import cli
    from wiregate.gateway.connection import ConnectionHandler

    if variant == "bypassed":
        for name, method in bypassed_methods().items():
            setattr(ConnectionHandler, name, method)
    args = ["serve", "--host", "127.0.0.1", "--amqp-port", "0", "--http-port", "0", "--kafka-port", "0", "--log-level", "warning"]
    if variant == "on":
        args += ["--trace-file", os.devnull]
    raise SystemExit(cli.main(args))


class Server:
    """One variant's server process; the AMQP port comes from its ready line."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", variant],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if " ready " not in line:
            self.stop()
            raise RuntimeError(f"{variant} server did not start: {line!r}")
        amqp = next(item for item in line.split() if item.startswith("amqp="))
        self.amqp_url = f"amqp://guest:guest@{amqp[5:].split(',')[0]}/%2F"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# -------------------------------------------------------------- in process
class _FakeSocket:
    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)


class _FeedStream:
    """A socket stream that plays back chunks, then EOF, and swallows output."""

    socket = _FakeSocket()

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)
        self.sent = 0

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        import trio

        await trio.lowlevel.checkpoint()
        return next(self._chunks, b"")

    async def send_all(self, data: bytes) -> None:
        import trio

        self.sent += len(data)
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        pass


def pipelined_chunks(messages: int, per_read: int = 500, size: int = 100) -> list[bytes]:
    """The client's side: handshake, a no-ack consumer, then batches of publishes."""
    import struct

    from pamqp import commands, frame, header

    handshake = (
        b"AMQP\x00\x00\x09\x01"
        + frame.marshal(commands.Connection.StartOk(response="\0guest\0guest"), 0)
        + frame.marshal(commands.Connection.TuneOk(2047, 131072, 0), 0)
        + frame.marshal(commands.Connection.Open("/"), 0)
        + frame.marshal(commands.Channel.Open(), 1)
        + frame.marshal(commands.Queue.Declare(queue="q"), 1)
        + frame.marshal(commands.Basic.Consume(queue="q", no_ack=True), 1)
    )
    body = b"x" * size
    one = (
        frame.marshal(commands.Basic.Publish(exchange="", routing_key="q"), 1)
        + frame.marshal(header.ContentHeader(0, len(body)), 1)
        + struct.pack(">BHI", 3, 1, len(body)) + body + b"\xce"
    )  # fmt: skip
    return [handshake] + [one * min(per_read, messages - i) for i in range(0, messages, per_read)]


def _drive(chunks: list[bytes], traced: bool) -> int:
    """Run one connection over ``chunks`` to the end; returns the bytes it sent."""
    import trio

    from wiregate.amqp import AMQPConnection
    from wiregate.core import Broker
    from wiregate.gateway.connection import ConnectionHandler
    from wiregate.gateway.trace import Tracer

    async def main() -> int:
        stream = _FeedStream(chunks)
        handler = ConnectionHandler(stream, protocol="amqp", factory=AMQPConnection, broker=Broker(), handshake_timeout=10)  # type: ignore[arg-type]
        if traced:
            tracer = Tracer()
            tracer.add_sink(lambda event: None)
            tracer.register(handler)
        await handler.run()
        return stream.sent

    return trio.run(main)


def in_process(rounds: int, messages: int) -> dict[str, Any]:
    """CPU µs per message of the three variants, alternating run by run."""
    from wiregate.gateway.connection import ConnectionHandler

    stock = {name: getattr(ConnectionHandler, name) for name in ("_read_loop", "_write_now", "_flush")}
    bypassed = bypassed_methods()
    on_messages = max(1000, messages // 4)  # tracing on is several times slower
    chunks = pipelined_chunks(messages)
    on_chunks = pipelined_chunks(on_messages)
    cpu: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    expected = _drive(chunks, False)  # warm-up, and what every run must send
    try:
        for index in range(rounds):
            order = VARIANTS if index % 2 == 0 else ("bypassed", "off", "on")
            for variant in order:
                methods = bypassed if variant == "bypassed" else stock
                for name, method in methods.items():
                    setattr(ConnectionHandler, name, method)
                data = on_chunks if variant == "on" else chunks
                started = time.process_time()
                sent = _drive(data, variant == "on")
                elapsed = time.process_time() - started
                if variant != "on" and sent != expected:
                    raise RuntimeError(f"{variant}: sent {sent} bytes, expected {expected}")
                cpu[variant].append(elapsed / (on_messages if variant == "on" else messages) * 1e6)
    finally:
        for name, method in stock.items():
            setattr(ConnectionHandler, name, method)
    pairs = [off / by for off, by in zip(cpu["off"], cpu["bypassed"], strict=True)]
    medians = {variant: statistics.median(values) for variant, values in cpu.items()}
    return {
        "messages": messages,
        "rounds": rounds,
        "cpu_us_per_msg": {variant: [round(value, 3) for value in values] for variant, values in cpu.items()},
        "median": {variant: round(value, 3) for variant, value in medians.items()},
        "off_vs_bypassed": statistics.median(pairs),
        "on_vs_off": medians["on"] / medians["off"],
    }


# ------------------------------------------------------------ measurement
def check_cost_ns(repeat: int = 7, number: int = 2_000_000) -> float:
    """Nanoseconds of one ``self.tap is not None`` check (tap is None), minus an empty loop."""

    class Handler:
        def __init__(self) -> None:
            self.tap = None

    handler = Handler()
    # ten checks per statement, so that the loop's own cost does not drown them
    # (``self`` is a local in the handler's methods: so is ``x`` here)
    checks = "\n".join(["if x.tap is not None: pass"] * 10)
    with_check = min(timeit.repeat(checks, "x = h", globals={"h": handler}, repeat=repeat, number=number))
    empty = min(timeit.repeat("pass", "x = h", globals={"h": handler}, repeat=repeat, number=number))
    return max(0.0, (with_check - empty) / number / 10 * 1e9)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(variant: str, messages: int) -> tuple[float, float]:
    """(msg/s end to end, server CPU µs per message) for one fresh server of ``variant``."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import amqp_pipelined

    server = Server(variant)
    try:
        cpu0 = cpu_seconds(server.process.pid)
        result = amqp_pipelined.run(server.amqp_url, messages, publishers=1, consumers=1, size=100)
        cpu = cpu_seconds(server.process.pid) - cpu0
    finally:
        server.stop()
    return float(result["msg_per_s"]), cpu / messages * 1e6


def end_to_end(rounds: int, messages: int) -> dict[str, Any]:
    """``wiregate serve`` per variant under the pipelined generator: server CPU per message and msg/s."""
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    cpu: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for index in range(rounds):
        order = VARIANTS[index % 3 :] + VARIANTS[: index % 3]  # no variant always first
        for variant in order:
            # tracing on is several times slower: a quarter of the messages
            rate, cpu_us = one_round(variant, messages if variant != "on" else max(2000, messages // 4))
            rates[variant].append(rate)
            cpu[variant].append(cpu_us)
    rate_medians = {variant: statistics.median(values) for variant, values in rates.items()}
    cpu_medians = {variant: statistics.median(values) for variant, values in cpu.items()}
    return {
        "messages": messages,
        "rounds": rounds,
        "msg_per_s": {variant: [round(value) for value in values] for variant, values in rates.items()},
        "server_cpu_us_per_msg": {variant: [round(value, 2) for value in values] for variant, values in cpu.items()},
        "median_msg_per_s": {variant: round(value) for variant, value in rate_medians.items()},
        "median_cpu_us_per_msg": {variant: round(value, 3) for variant, value in cpu_medians.items()},
        "off_vs_bypassed_rate": rate_medians["off"] / rate_medians["bypassed"],
        "off_vs_bypassed_cpu": cpu_medians["off"] / cpu_medians["bypassed"],
        "on_vs_off_rate": rate_medians["on"] / rate_medians["off"],
        "on_vs_off_cpu": cpu_medians["on"] / cpu_medians["off"],
    }


def run(smoke: bool = False, *, end_to_end_rounds: int | None = None, in_process_rounds: int | None = None) -> dict[str, Any]:
    """Measure; return the figures.

    Args:
        smoke: Small counts and one round each (seconds; keeps the command working).
        end_to_end_rounds: Rounds of the end-to-end measurement (default 3,
            1 with ``smoke``); 0 skips it.
        in_process_rounds: Rounds of the in-process measurement (default
            41, 3 with ``smoke``).

    Returns:
        ``{"disabled_cost_pct": in-process CPU per message of "off" over
        "bypassed", minus 1, in % (noise can make it negative),
        "off_vs_bypassed": that ratio, "on_vs_off": in-process CPU ratio of
        tracing on (null sink) over off, "check_ns": one check,
        "disabled_bound_pct": 4 checks over the in-process CPU per message,
        "in_process": {...}, "end_to_end": {...} or None, "seconds"}``.
    """
    started = time.monotonic()
    bypassed_methods()  # fail early if the handler changed shape
    in_process_rounds = in_process_rounds if in_process_rounds is not None else (3 if smoke else 41)
    end_to_end_rounds = end_to_end_rounds if end_to_end_rounds is not None else (1 if smoke else 3)
    inner = in_process(in_process_rounds, 2_000 if smoke else 5_000)
    outer = end_to_end(end_to_end_rounds, 10_000 if smoke else 100_000) if end_to_end_rounds else None
    check_ns = check_cost_ns(repeat=3 if smoke else 7, number=100_000 if smoke else 500_000)
    return {
        "disabled_cost_pct": (inner["off_vs_bypassed"] - 1) * 100,
        "off_vs_bypassed": inner["off_vs_bypassed"],
        "on_vs_off": inner["on_vs_off"],
        "check_ns": check_ns,
        # at most 4 checks per message: publisher read/flush, consumer read/flush
        "disabled_bound_pct": 4 * check_ns / 1000 / inner["median"]["off"] * 100,
        "in_process": inner,
        "end_to_end": outer,
        "seconds": round(time.monotonic() - started, 1),
    }


_LABELS = {"off": "trace off", "bypassed": "tap check removed", "on": "trace on"}


def report(result: dict[str, Any]) -> str:
    inner = result["in_process"]
    lines = [
        f"in process: ConnectionHandler + AMQPConnection, {inner['messages']} pipelined publishes and deliveries per run "
        f"({max(1000, inner['messages'] // 4)} with trace on, null sink), {inner['rounds']} alternating runs, CPU per message:",
    ]
    for variant in VARIANTS:
        values = " ".join(f"{value:.2f}" for value in inner["cpu_us_per_msg"][variant])
        lines.append(f"  {_LABELS[variant]:18} {inner['median'][variant]:7.3f} µs   [{values}]")
    lines += [
        f"  trace off / check removed = {result['off_vs_bypassed']:.3f}  ({result['disabled_cost_pct']:+.2f} %, median of adjacent pairs)",
        f"  trace on / off = {result['on_vs_off']:.2f}",
        f"the check itself: {result['check_ns']:.1f} ns; at most 4 per message → ≤ {result['disabled_bound_pct']:.3f} % of the CPU per message",
    ]
    outer = result.get("end_to_end")
    if outer:
        lines.append(
            f"end to end: wiregate serve, pipelined generator (1 publisher, 1 consumer), {outer['messages']} × 100 B "
            f"({max(2000, outer['messages'] // 4)} with --trace-file /dev/null), median of {outer['rounds']} round(s):"
        )
        for variant in VARIANTS:
            lines.append(
                f"  {_LABELS[variant]:18} {outer['median_cpu_us_per_msg'][variant]:7.2f} µs server CPU/msg "
                f"{outer['median_msg_per_s'][variant]:>9,} msg/s   cpu {outer['server_cpu_us_per_msg'][variant]} rate {outer['msg_per_s'][variant]}"
            )
        lines += [
            f"  trace off / check removed: CPU × {outer['off_vs_bypassed_cpu']:.3f}, rate × {outer['off_vs_bypassed_rate']:.3f} (noise of a shared machine)",
            f"  trace on / off: CPU × {outer['on_vs_off_cpu']:.2f}, rate × {outer['on_vs_off_rate']:.3f}",
        ]
    lines.append(f"({result['seconds']} s)")
    return "\n".join(lines)


def probe(ctx: Any) -> None:
    """Rows for ``python -m bench`` (``bench/probes.py``'s trace probe)."""
    from bench.common import Row

    result = run(bool(getattr(ctx, "smoke", False)))
    inner = result["in_process"]
    ctx.rows.append(Row(
        "trace", "trace off: CPU per pipelined message vs the same handler without the tap check (in process)", "µs/msg",
        "lower", inner["median"]["off"], inner["median"]["bypassed"], "tap check removed",
        target_ratio=1.02, target_text="≤ 1.02× (noise)",
        note=f"ratio = median of adjacent runs {result['off_vs_bypassed']:.3f}; the check: {result['check_ns']:.1f} ns, "
        f"≤ {result['disabled_bound_pct']:.3f} % per message",
        extra={"wiregate_all": inner["cpu_us_per_msg"]["off"], "peer_all": inner["cpu_us_per_msg"]["bypassed"]},
    ))  # fmt: skip
    ctx.rows.append(Row(
        "trace", "trace on (null sink): CPU per pipelined message vs off (in process)", "µs/msg", "lower",
        inner["median"]["on"], inner["median"]["off"], "trace off",
        note="what decoding every frame costs while someone listens; no target",
        extra={"wiregate_all": inner["cpu_us_per_msg"]["on"], "peer_all": inner["cpu_us_per_msg"]["off"]},
    ))  # fmt: skip
    outer = result["end_to_end"]
    if outer:
        ctx.rows.append(Row(
            "trace", "trace off vs tap check removed: wiregate serve CPU per message (pipelined generator)", "µs/msg",
            "lower", outer["median_cpu_us_per_msg"]["off"], outer["median_cpu_us_per_msg"]["bypassed"], "tap check removed",
            note="end to end, noisy on a shared machine; the in-process row is the measure",
            extra={"wiregate_all": outer["server_cpu_us_per_msg"]["off"], "peer_all": outer["server_cpu_us_per_msg"]["bypassed"]},
        ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small counts, one round each")
    parser.add_argument("--rounds", type=int, help="in-process rounds (default 41)")
    parser.add_argument("--end-to-end-rounds", type=int, help="end-to-end rounds (default 3)")
    parser.add_argument("--no-end-to-end", action="store_true", help="in process only")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    result = run(
        args.smoke,
        in_process_rounds=args.rounds,
        end_to_end_rounds=0 if args.no_end_to_end else args.end_to_end_rounds,
    )
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
