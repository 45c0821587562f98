"""``python -m bench``: run every probe, write RESULTS.md and results.json.

    python -m bench                      # everything (a few minutes on 2 cores)
    python -m bench --smoke              # tiny counts, no RabbitMQ: keeps the command working (CI)
    python -m bench --only pika pipelined --out /tmp/b
    python -m bench --profile            # wiregate serve under py-spy: bench/profiles/<probe>-top.txt, .svg

Every probe runs wiregate and its peer in the same run, on the same machine,
and reports medians over ``--reps`` rounds and the ratio wiregate ÷ peer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import probes
from bench.common import BENCH_DIR, PROFILES, REPO, Row, WiregateProcess, machine, rabbitmq_available
from bench.report import render


class Context:
    """What the probes share: counts, repetitions, the peers that live across probes."""

    def __init__(self, args: argparse.Namespace):
        self.smoke: bool = args.smoke
        self.reps: int = args.reps or (1 if self.smoke else 3)
        self.reps_startup: int = 1 if self.smoke else max(5, self.reps)
        self.reps_rabbit_startup: int = 1 if self.smoke else self.reps
        self.profile: bool = args.profile
        self.pipelined_procs: tuple[int, int] = (args.publishers, args.consumers)
        self.rows: list[Row] = []
        self.rabbitmq_enabled = not (self.smoke or args.no_rabbitmq) and rabbitmq_available()
        self.rabbitmq_note = (
            "RabbitMQ probes skipped: --smoke" if self.smoke else
            "RabbitMQ probes skipped: --no-rabbitmq" if args.no_rabbitmq else
            None if self.rabbitmq_enabled else "RabbitMQ probes skipped: rabbitmq-server is not installed"
        )
        self._rabbit = None
        self.rabbitmq_version: str | None = None

    def counts(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full

    def new_rabbitmq(self):
        from bench.common import make_rabbitmq

        return make_rabbitmq()

    def rabbitmq(self):
        """The shared private RabbitMQ node, started on first use."""
        if self._rabbit is None:
            log("starting a private RabbitMQ node")
            self._rabbit = self.new_rabbitmq().start()
            self.rabbitmq_version = self._rabbit.version()
        return self._rabbit

    def wiregate(self, probe: str) -> WiregateProcess:
        return WiregateProcess(profile=probe if self.profile else None)

    def close(self) -> None:
        if self._rabbit is not None:
            self._rabbit.stop()
            self._rabbit = None


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, one round, no RabbitMQ")
    parser.add_argument("--only", nargs="+", metavar="PROBE", choices=list(probes.PROBES),
                        help=f"run only these probes: {', '.join(probes.PROBES)}")
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="where RESULTS.md and results.json go (default: bench/)")
    parser.add_argument("--reps", type=int, help="rounds per figure (default 3; 1 with --smoke)")
    parser.add_argument("--no-rabbitmq", action="store_true", help="skip the RabbitMQ side")
    parser.add_argument("--profile", action="store_true",
                        help="run wiregate serve under py-spy; profiles go to bench/profiles/")
    parser.add_argument("--publishers", type=int, default=2, help="pipelined generator publisher processes")
    parser.add_argument("--consumers", type=int, default=2, help="pipelined generator consumer processes")
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    ctx = Context(args)
    names = args.only or list(probes.PROBES)
    failures: dict[str, str] = {}
    began = time.monotonic()
    info = machine()
    try:
        for name in names:
            log(f"probe {name}")
            t0 = time.monotonic()
            try:
                probes.PROBES[name](ctx)
            except Exception:
                failures[name] = traceback.format_exc()
                log(f"probe {name} FAILED:\n{failures[name]}")
            log(f"probe {name} done in {time.monotonic() - t0:.1f}s")
    finally:
        ctx.close()
    info["rabbitmq"] = ctx.rabbitmq_version
    info["load_average_at_end"] = os.getloadavg()
    result: dict[str, Any] = {
        "machine": info,
        "mode": "smoke" if ctx.smoke else "full",
        "reps": ctx.reps,
        "profiled": ctx.profile,
        "probes": names,
        "rabbitmq_note": ctx.rabbitmq_note,
        "seconds": time.monotonic() - began,
        "rows": [row.to_json() for row in ctx.rows],
        "failures": failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.out / "RESULTS.md").write_text(render(result, PROFILES if ctx.profile else None))
    log(f"wrote {args.out / 'RESULTS.md'} and results.json in {result['seconds']:.0f}s")
    return 1 if failures else 0
