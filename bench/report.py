"""RESULTS.md from the results of one run (bench/results.json has the same data and more)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit in ("msg/s", "rec/s"):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(row: dict[str, Any]) -> str:
    ratio = row["ratio"]
    return "—" if ratio is None else f"{ratio:.2f}×"


def _cpu(row: dict[str, Any]) -> str:
    extra = row.get("extra") or {}

    def one(prefix: str) -> str:
        cpu, wait = extra.get(f"{prefix}server_cpu"), extra.get(f"{prefix}server_wait")
        if cpu is None:
            return ""
        return f"{100 * cpu:.0f}%" + (f" +{100 * wait:.0f}%" if wait is not None else "")

    wg, peer = one(""), one("peer_")
    us = extra.get("server_us_per_msg")
    text = wg + (f" ({us:.1f} µs)" if us is not None else "")
    return text + (f" / {peer}" if peer else "")


def _verdict(row: dict[str, Any]) -> str:
    met = row["met"]
    if met is None:
        return row.get("target_text") or ""
    if met:
        return f"✅ {row['target_text']}"
    return f"❌ {row['target_text']} — {_miss(row)}"


def _miss(row: dict[str, Any]) -> str:
    """By how much a target is missed."""
    parts = []
    wg, ratio = row["wiregate"], row["ratio"]
    if row.get("target_abs") is not None and wg is not None:
        bound = row["target_abs"]
        ok = wg >= bound if row["better"] == "higher" else wg <= bound
        if not ok:
            parts.append(f"{_num(wg, row['unit'])} vs {_num(bound, row['unit'])} {row['unit']} "
                         f"({100 * (wg / bound - 1):+.0f}%)")
    if row.get("target_ratio") is not None and ratio is not None:
        bound = row["target_ratio"]
        ok = ratio >= bound if row["better"] == "higher" else ratio <= bound
        if not ok:
            parts.append(f"ratio {ratio:.3f}× vs {bound}×")
    return "; ".join(parts) or "missed"


def render(result: dict[str, Any], profiles: Path | None) -> str:
    m = result["machine"]
    v = m.get("versions", {})
    lines = [
        "# wiregate benchmark results",
        "",
        "Written by `python -m bench` (see bench/README.md); do not edit by hand. "
        "Ratios are wiregate ÷ peer, from one run on one machine: the machine is shared "
        "and noisy, so read ratios rather than absolute figures. Where wiregate and peer rounds "
        "were interleaved, the ratio is the median of the per-round ratios; the figures are medians.",
        "",
        "## Machine",
        "",
        f"- date: {m['date']}; wiregate commit {m.get('commit')}",
        f"- CPU: {m['cpu_count']} × {m['cpu_model']}; memory {m.get('memory_gib')} GiB; "
        f"load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}",
        f"- Python {m['python']} ({m['python_implementation']}), {m['platform']}",
        f"- peers: RabbitMQ {m.get('rabbitmq') or '(not run)'}; librdkafka {v.get('librdkafka')} mock cluster; "
        f"bench/kafka_null_sink.py",
        f"- clients: pika {v.get('pika')}, aio-pika {v.get('aio-pika')}, confluent-kafka {v.get('confluent-kafka')}, "
        f"kafka-python {v.get('kafka-python')}; server libraries: trio {v.get('trio')}, kio {v.get('kio')}, "
        f"pamqp {v.get('pamqp')}",
        f"- run: {result['mode']}, {result['reps']} round(s) per figure (medians), "
        f"{result['seconds']:.0f} s in all{'; wiregate profiled under py-spy' if result['profiled'] else ''}",
    ]
    if result.get("rabbitmq_note"):
        lines.append(f"- {result['rabbitmq_note']}")
    lines += [
        "",
        "## Results",
        "",
        "Server CPU: the server process's CPU time during the timed interval ÷ its length "
        "(100% = one core busy), then `+` the time it was runnable but waiting for a CPU "
        "(starved by the clients and other load on the 2 shared cores), then wiregate's CPU µs per "
        "message or record; `/` the peer's (RabbitMQ: beam.smp). CPU + wait near 100% means the "
        "server was the bound; well below, the client or the round trips were.",
        "",
        "| probe | measure | unit | wiregate | peer | peer is | ratio | server CPU | target |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['probe']} | {row['metric']} | {row['unit']} | {_num(row['wiregate'], row['unit'])} | "
            f"{_num(row['peer'], row['unit'])} | {row['peer_name'] or '—'} | {_ratio(row)} | {_cpu(row)} | "
            f"{_verdict(row)} |"
        )
    notes = [f"- **{row['probe']}**, {row['metric']}: {row['note']}" for row in result["rows"] if row.get("note")]
    if notes:
        lines += ["", "## Notes", "", *notes]
    with_target = [row for row in result["rows"] if row["met"] is not None]
    if with_target:
        met = [row for row in with_target if row["met"]]
        missed = [row for row in with_target if not row["met"]]
        lines += ["", "## Targets (issue 7)", "", f"{len(met)} of {len(with_target)} met."]
        if missed:
            lines += ["", "Missed:", ""]
            lines += [f"- {row['probe']}, {row['metric']}: {_miss(row)}" for row in missed]
            lines += ["", "What bounds them: see bench/README.md (\"What bounds the missed targets\") and the "
                      "profiles (`python -m bench --profile`)."]
    if result.get("failures"):
        lines += ["", "## Probes that failed", ""]
        for name, text in result["failures"].items():
            last = text.strip().splitlines()[-1] if text.strip() else "?"
            lines.append(f"- {name}: `{last}` (traceback in results.json)")
    if profiles is not None and profiles.exists():
        tops = sorted(profiles.glob("*-top.txt"))
        if tops:
            lines += ["", "## Profiles (wiregate serve under py-spy)", ""]
            for top in tops:
                text = top.read_text().splitlines()
                head = [line.strip() for line in text[3:11] if line.strip()]
                lines += [f"**{top.stem[:-4]}** — {text[0]}; top self time "
                          f"(bench/profiles/{top.name}, flame graph {top.stem[:-4]}.svg):", "", "```", *head, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
