"""Differential runner: the same scenarios against RabbitMQ and wiregate.

Usage::

    python -m compat.runner [--rabbitmq-url URL] [--wiregate-url URL]
                            [--only NAME ...] [--report PATH]

Without ``--rabbitmq-url`` a private RabbitMQ node is started
(:mod:`compat.rabbitmq`); without ``--wiregate-url`` an embedded wiregate
(``wiregate.testing.Server``) is. Pointing both URLs at the same RabbitMQ
checks that the scenarios themselves are deterministic.

Prints a diff per differing scenario and the summary line
``N scenarios: X identical, Y differ, Z known divergences``; exits 1 when a
scenario differs that is not listed in ``compat/DIVERGENCES.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import sys
import time
from pathlib import Path

from compat import divergences
from compat.harness import DEFAULT_TIMEOUT
from compat.scenarios import SCENARIOS

IDENTICAL, DIFFER, KNOWN, KNOWN_IDENTICAL = "identical", "differ", "known", "known-but-identical"


def render(observations) -> list[str]:
    """Observations as diff-friendly lines: one label, then indented JSON."""
    lines = []
    for label, value in observations:
        text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
        first, *rest = text.splitlines()
        lines.append(f"{label}: {first}")
        lines.extend(f"  {line}" for line in rest)
    return lines


def diff(expected, actual, expected_name="rabbitmq", actual_name="wiregate") -> list[str]:
    """Unified diff of two observation lists (empty when equal)."""
    if expected == actual:
        return []
    return list(difflib.unified_diff(render(expected), render(actual), expected_name, actual_name,
                                     n=2, lineterm=""))


def differing_labels(expected, actual) -> list[str]:
    """Labels of the observations that differ (or exist on one side only)."""
    labels = []
    for index in range(max(len(expected), len(actual))):
        left = expected[index] if index < len(expected) else None
        right = actual[index] if index < len(actual) else None
        if left != right:
            for side in (left, right):
                if side is not None and side[0] not in labels:
                    labels.append(side[0])
    return labels


def compare(name: str, expected, actual, known: dict[str, str]) -> dict:
    """One scenario's verdict as a report entry."""
    lines = diff(expected, actual)
    if lines:
        status = KNOWN if name in known else DIFFER
    else:
        status = KNOWN_IDENTICAL if name in known else IDENTICAL
    entry = {"status": status, "labels": differing_labels(expected, actual) if lines else [],
             "diff": lines, "rabbitmq": expected, "wiregate": actual}
    if name in known:
        entry["reason"] = known[name]
    return entry


def select(only: list[str] | None) -> list[str]:
    """Scenario names matching ``--only`` (exact names, else substrings)."""
    if not only:
        return list(SCENARIOS)
    chosen = []
    for pattern in only:
        matches = [pattern] if pattern in SCENARIOS else [n for n in SCENARIOS if pattern in n]
        if not matches:
            raise SystemExit(f"no scenario matches {pattern!r}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


@contextlib.contextmanager
def rabbitmq_url(url: str | None):
    if url:
        yield url
        return
    from compat.rabbitmq import RabbitMQ

    with RabbitMQ() as rabbit:
        print(f"started RabbitMQ {rabbit.node} in {rabbit.startup_seconds:.2f}s", file=sys.stderr)
        yield rabbit.url


@contextlib.contextmanager
def wiregate_url(url: str | None):
    if url:
        yield url
        return
    try:
        from wiregate.testing import Server
    except ImportError as exc:
        raise SystemExit(f"cannot embed wiregate ({exc}); pass --wiregate-url") from exc
    with Server() as server:
        yield server.amqp_url


def summary_line(results: dict[str, dict]) -> str:
    counts = {s: sum(1 for r in results.values() if r["status"] == s)
              for s in (IDENTICAL, DIFFER, KNOWN, KNOWN_IDENTICAL)}
    line = (f"{len(results)} scenarios: {counts[IDENTICAL] + counts[KNOWN_IDENTICAL]} identical, "
            f"{counts[DIFFER]} differ, {counts[KNOWN]} known divergences")
    if counts[KNOWN_IDENTICAL]:
        line += f" ({counts[KNOWN_IDENTICAL]} listed in DIVERGENCES.md now identical)"
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rabbitmq-url", help="reference broker (default: start a private RabbitMQ)")
    parser.add_argument("--wiregate-url", help="broker under test (default: embedded wiregate)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this scenario (exact name or substring; repeatable)")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="per scenario run, seconds")
    parser.add_argument("--quiet", action="store_true", help="print only the status lines and summary")
    args = parser.parse_args(argv)

    names = select(args.only)
    known = divergences.load()
    results: dict[str, dict] = {}
    began = time.monotonic()
    with rabbitmq_url(args.rabbitmq_url) as ref_url, wiregate_url(args.wiregate_url) as sut_url:
        for name in names:
            run = SCENARIOS[name]
            t0 = time.monotonic()
            expected = run(ref_url, timeout=args.timeout)
            t1 = time.monotonic()
            actual = run(sut_url, timeout=args.timeout)
            t2 = time.monotonic()
            entry = compare(name, expected, actual, known)
            entry["seconds"] = {"rabbitmq": round(t1 - t0, 3), "wiregate": round(t2 - t1, 3)}
            results[name] = entry
            labels = f"  [{', '.join(entry['labels'])}]" if entry["labels"] else ""
            print(f"{entry['status']:>10}  {name}{labels}", flush=True)
            if entry["diff"] and not args.quiet:
                print("\n".join(f"            {line}" for line in entry["diff"]), flush=True)
    line = summary_line(results)
    print(line)
    print(f"({time.monotonic() - began:.1f}s)", file=sys.stderr)
    if args.report:
        args.report.write_text(json.dumps({"summary": line, "scenarios": results}, indent=1,
                                          ensure_ascii=False))
    return 1 if any(r["status"] == DIFFER for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
