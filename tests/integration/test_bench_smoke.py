"""The benchmark command keeps working: ``python -m bench --smoke`` (tiny counts, no RabbitMQ).

No timing is asserted: only that every probe ran and the results are well formed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBES = ["startup", "embedding", "memory", "pika", "aio_pika", "pipelined", "kafka_confluent", "kafka_python", "trace",
          "connections"]
ROW_PROBES = {"start-up", "embedding", "memory", "pika", "aio-pika", "pipelined", "kafka-confluent", "kafka-python",
              "trace", "connections"}


@pytest.mark.timeout(240)
def test_bench_smoke_run_writes_results(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=230, stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["mode"] == "smoke"
    assert data["probes"] == PROBES
    assert data["failures"] == {}
    assert "--smoke" in data["rabbitmq_note"]  # smoke runs never start RabbitMQ
    assert {row["probe"] for row in data["rows"]} == ROW_PROBES
    for key in ("cpu_count", "cpu_model", "python", "date"):
        assert data["machine"][key]
    for row in data["rows"]:
        assert row["metric"] and row["unit"] and row["better"] in ("higher", "lower")
        for key in ("wiregate", "peer", "ratio"):
            value = row[key]
            assert value is None or (isinstance(value, (int, float)) and math.isfinite(value)), (row, key)
        if row["probe"] != "trace":
            assert row["wiregate"] is not None, row  # every wiregate figure was measured
    results = (tmp_path / "RESULTS.md").read_text()
    assert "| probe | measure |" in results
    assert data["machine"]["cpu_model"] in results
