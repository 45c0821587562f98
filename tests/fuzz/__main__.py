"""The fuzz campaign: ``python -m tests.fuzz [--amqp N] [--kafka N] [--live N] [--atheris S] [--seed S]``.

Defaults: 1,000,000 AMQP frames and 1,000,000 Kafka requests against the
sans-IO connections (each protocol in its own process, so both cores work),
2,000 hostile connections per protocol against a live server with healthy
pika and kafka-python clients beside them, and no atheris run (``--atheris
60`` adds a coverage-guided minute per protocol when atheris is installed).
Prints counts and every failure (with its case number and input); exits 1
when anything failed.  ``--quick`` is the CI size: a few seconds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import time
from typing import Any


def _amqp(frames: int, seed: int) -> dict[str, Any]:
    from . import amqp

    return amqp.campaign(frames, seed, report=_progress)


def _kafka(requests: int, seed: int) -> dict[str, Any]:
    from . import kafka

    return kafka.campaign(requests, seed, report=_progress)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--amqp", type=int, default=1_000_000, help="AMQP frames against the sans-IO connection (default: %(default)s)")
    parser.add_argument("--kafka", type=int, default=1_000_000, help="Kafka requests against the sans-IO connection (default: %(default)s)")
    parser.add_argument("--live", type=int, default=2000, help="hostile connections per protocol against a live server (default: %(default)s)")
    parser.add_argument("--atheris", type=float, default=0, metavar="SECONDS", help="coverage-guided atheris run per protocol (default: none)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="campaign seed (default: the time)")
    parser.add_argument("--quick", action="store_true", help="the CI size: 20,000 frames, 5,000 requests, 50 live connections")
    parser.add_argument("--json", metavar="PATH", help="also write the counts and failures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.amqp, args.kafka, args.live = 20_000, 5_000, 50
    print(f"fuzz campaign, seed {args.seed}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        jobs = {}
        if args.amqp:
            jobs["amqp"] = pool.submit(_amqp, args.amqp, args.seed)
        if args.kafka:
            jobs["kafka"] = pool.submit(_kafka, args.kafka, args.seed)
        for name, job in jobs.items():
            try:
                results[name] = job.result()
            except Exception as exc:  # noqa: BLE001 - a broken generator must not hide the other results
                from .common import Failure

                results[name] = {"counts": {}, "failures": [Failure(name, -1, "campaign", f"{type(exc).__name__}: {exc}")]}
    if args.live:
        from . import live

        results["live"] = live.campaign(args.live, args.seed, report=_progress)
    if args.atheris:
        from . import coverage_guided

        results["atheris"] = coverage_guided.run(args.atheris)
    failed = 0
    for name, result in results.items():
        counts = result["counts"]
        print(f"{name}: " + ", ".join(f"{key}={value}" for key, value in counts.items()), flush=True)
        for failure in result["failures"]:
            failed += 1
            print("  " + failure.describe(), flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {
                    "seed": args.seed,
                    "results": {
                        name: {"counts": r["counts"], "failures": [f.describe() for f in r["failures"]]} for name, r in results.items()
                    },
                },
                out,
                indent=2,
            )
    print("FAILED" if failed else "no failures", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
