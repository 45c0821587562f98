"""What the decoded-frame trace costs: nothing measurable while it is off.

With tracing off, a connection's ``tap`` is ``None`` and the hot path pays
one ``self.tap is not None`` check per socket read and per flush.  This
bench shows that by running the pipelined AMQP generator
(``bench/amqp_pipelined.py``, raw frames, one publisher and one consumer
process) against three servers, each ``wiregate serve`` in its own process:

- ``off``: the normal build, tracing off;
- ``bypassed``: the same build with the check removed from
  ``ConnectionHandler._read_loop`` and ``_flush`` (their source, minus the
  ``if self.tap is not None:`` lines, recompiled at start-up): the
  baseline "with no trace code at all";
- ``on``: tracing on (``--trace-file /dev/null``: every frame decoded and
  serialised as JSON), to show what turning it on costs.

Rounds interleave the variants (fresh server each time); the figures are
medians.  It also times the check itself and derives an upper bound: at
most four checks per message (a read and a flush on the publishing and on
the consuming connection; pipelining makes it far fewer).

    python bench/trace_overhead.py            # 5 rounds of 200 000 messages
    python bench/trace_overhead.py --smoke    # 1 round of 10 000

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
    """``_read_loop`` and ``_flush`` of ConnectionHandler without the tap check.

    Raises:
        RuntimeError: The source no longer has the expected shape.
    """
    from wiregate.gateway import connection as module

    methods = {}
    for name in ("_read_loop", "_flush"):
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
            if line.strip() == "if self.tap is not None:":
                skip_deeper_than = indent
                removed += 1
                continue
            kept.append(line)
        code = "".join(kept)
        if removed != 1 or "tap" in code:
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


# ------------------------------------------------------------ measurement
def check_cost_ns(repeat: int = 7, number: int = 2_000_000) -> float:
    """Nanoseconds of one ``self.tap is not None`` check (tap is None), minus an empty loop."""

    class Handler:
        def __init__(self) -> None:
            self.tap = None

    handler = Handler()
    with_check = min(timeit.repeat("if h.tap is not None: pass", globals={"h": handler}, repeat=repeat, number=number))
    empty = min(timeit.repeat("pass", repeat=repeat, number=number))
    return max(0.0, (with_check - empty) / number * 1e9)


def one_round(variant: str, messages: int) -> float:
    """msg/s end to end for one fresh server of ``variant``."""
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    import amqp_pipelined

    server = Server(variant)
    try:
        result = amqp_pipelined.run(server.amqp_url, messages, publishers=1, consumers=1, size=100)
    finally:
        server.stop()
    return float(result["msg_per_s"])


def run(smoke: bool = False, *, rounds: int | None = None, messages: int | None = None) -> dict[str, Any]:
    """Measure the three variants; return the figures.

    Args:
        smoke: One round of 10 000 messages (keeps the command working).
        rounds: Rounds per variant (default 5; 1 with ``smoke``).
        messages: Messages per round (default 200 000; 10 000 with ``smoke``).

    Returns:
        ``{"messages", "rounds", "msg_per_s": {variant: [per round]},
        "median": {variant: msg/s}, "off_vs_bypassed": ratio,
        "disabled_cost_pct", "on_vs_off": ratio, "check_ns",
        "disabled_bound_pct"}``.  ``disabled_cost_pct`` is the measured
        slow-down of ``off`` against ``bypassed`` (noise can make it
        negative); ``disabled_bound_pct`` the upper bound from the check's
        own cost.
    """
    rounds = rounds or (1 if smoke else 5)
    messages = messages or (10_000 if smoke else 200_000)
    bypassed_methods()  # fail early if the handler changed shape
    rates: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    started = time.monotonic()
    for index in range(rounds):
        order = VARIANTS[index % 3 :] + VARIANTS[: index % 3]  # no variant always first
        for variant in order:
            rates[variant].append(one_round(variant, messages))
    medians = {variant: statistics.median(values) for variant, values in rates.items()}
    check_ns = check_cost_ns(repeat=3 if smoke else 7, number=200_000 if smoke else 2_000_000)
    # at most 4 checks per message: publisher read/flush, consumer read/flush
    bound = 4 * check_ns * medians["off"] / 1e9 * 100
    return {
        "messages": messages,
        "rounds": rounds,
        "seconds": round(time.monotonic() - started, 1),
        "msg_per_s": {variant: [round(value) for value in values] for variant, values in rates.items()},
        "median": {variant: round(value) for variant, value in medians.items()},
        "off_vs_bypassed": medians["off"] / medians["bypassed"],
        "disabled_cost_pct": (1 - medians["off"] / medians["bypassed"]) * 100,
        "on_vs_off": medians["on"] / medians["off"],
        "check_ns": check_ns,
        "disabled_bound_pct": bound,
    }


def report(result: dict[str, Any]) -> str:
    median = result["median"]
    lines = [
        f"pipelined AMQP, {result['messages']} × 100 B messages, 1 publisher + 1 consumer, "
        f"median of {result['rounds']} round(s) per variant:",
        f"  trace off              {median['off']:>9,} msg/s   {result['msg_per_s']['off']}",
        f"  tap check removed      {median['bypassed']:>9,} msg/s   {result['msg_per_s']['bypassed']}",
        f"  trace on (JSON lines)  {median['on']:>9,} msg/s   {result['msg_per_s']['on']}",
        f"off / check removed = {result['off_vs_bypassed']:.3f}  (measured cost {result['disabled_cost_pct']:+.1f} %, noise included)",
        f"the check: {result['check_ns']:.1f} ns; ≤ 4 per message → at most {result['disabled_bound_pct']:.3f} % at the 'off' rate",
        f"on / off = {result['on_vs_off']:.3f}  (what tracing costs while someone listens)",
    ]
    return "\n".join(lines)


def probe(ctx: Any) -> None:
    """Rows for ``python -m bench`` (``bench/probes.py``'s trace probe)."""
    from bench.common import Row

    result = run(bool(getattr(ctx, "smoke", False)))
    median = result["median"]
    ctx.rows.append(Row(
        "trace", "pipelined AMQP, trace off vs the same build without the tap check", "msg/s", "higher",
        median["off"], median["bypassed"], "tap check removed",
        target_ratio=0.97, target_text="≥ 0.97× (noise)",
        note=f"check {result['check_ns']:.1f} ns, bound {result['disabled_bound_pct']:.3f} % per message",
        extra={"wiregate_all": result["msg_per_s"]["off"], "peer_all": result["msg_per_s"]["bypassed"]},
    ))  # fmt: skip
    ctx.rows.append(Row(
        "trace", "pipelined AMQP, trace on (JSON lines to /dev/null) vs off", "msg/s", "higher",
        median["on"], median["off"], "trace off",
        note="the cost of decoding every frame while someone listens; no target",
        extra={"wiregate_all": result["msg_per_s"]["on"], "peer_all": result["msg_per_s"]["off"]},
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one round of 10 000 messages")
    parser.add_argument("--rounds", type=int, help="rounds per variant (default 5)")
    parser.add_argument("--messages", type=int, help="messages per round (default 200 000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    result = run(args.smoke, rounds=args.rounds, messages=args.messages)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
