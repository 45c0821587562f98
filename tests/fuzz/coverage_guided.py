"""A bounded coverage-guided run with atheris (libFuzzer for Python).

Each protocol gets its own child process (libFuzzer owns the process and
exits when done): the input bytes are fed after a valid AMQP handshake /
as a Kafka request stream, and any exception or internal-error log record
is a crash.  atheris 3.0 installs from PyPI on Python 3.11 here
(``pip install atheris``); without it the run is skipped and says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from .common import Failure

_CHILD = r'''
import logging, struct, sys
import atheris

with atheris.instrument_imports():
    from wiregate.amqp import AMQPConnection
    from wiregate.kafka_wire import KafkaConnection
    from wiregate.core import Broker

from tests.fuzz.common import CrashLog
from tests.fuzz import amqp as gen

log = CrashLog()
logging.getLogger("wiregate").addHandler(log)
logging.getLogger("wiregate").setLevel(logging.ERROR)
PROTOCOL = sys.argv[1]
broker = Broker()
HANDSHAKE = (
    gen.HEADER
    + gen.method_frame(0, (10 << 16) | 11, struct.pack(">I", 0) + gen.shortstr("PLAIN") + gen.longstr(b"\x00guest\x00guest") + gen.shortstr("en_US"))
    + gen.method_frame(0, (10 << 16) | 31, struct.pack(">HIH", 2047, 131072, 0))
    + gen.method_frame(0, (10 << 16) | 40, gen.shortstr("/") + b"\x00\x00")
    + gen.method_frame(1, (20 << 16) | 10, b"\x00")
)

def one(data):
    if PROTOCOL == "amqp":
        conn = AMQPConnection(broker, peer="atheris")
        conn.receive_data(HANDSHAKE + data)
    else:
        conn = KafkaConnection(broker, peer="atheris")
        conn.receive_data(data)
    conn.data_to_send()
    conn.connection_lost()
    if log.records:
        raise RuntimeError("internal error: " + "; ".join(log.take()))

atheris.Setup(sys.argv[:1] + sys.argv[2:], one)
atheris.Fuzz()
'''


def available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run(seconds: float) -> dict[str, Any]:
    """``seconds`` of atheris per protocol; counts and failures like the other campaigns."""
    counts: dict[str, Any] = {"available": available(), "seconds_per_protocol": seconds}
    failures: list[Failure] = []
    if not counts["available"]:
        counts["skipped"] = "atheris is not installed (pip install atheris)"
        return {"counts": counts, "failures": failures}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for protocol in ("amqp", "kafka"):
        with tempfile.TemporaryDirectory() as corpus:
            result = subprocess.run(
                [sys.executable, "-c", _CHILD, protocol, f"-max_total_time={int(seconds)}", "-max_len=4096", "-rss_limit_mb=4096", corpus],
                cwd=root,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join([root, os.path.join(root, "src")])},
                timeout=seconds + 120,
            )
        runs = [line for line in result.stderr.splitlines() if line.startswith("Done ")]
        counts[f"{protocol}_runs"] = runs[-1] if runs else "?"
        cov = [line for line in result.stderr.splitlines() if " cov: " in line]
        counts[f"{protocol}_last"] = cov[-1].split("\t")[0][:120] if cov else "?"
        if result.returncode != 0:
            tail = "\n".join(result.stderr.splitlines()[-25:])
            failures.append(Failure(protocol, 0, "atheris", f"exit {result.returncode}:\n{tail}"))
    return {"counts": counts, "failures": failures}
