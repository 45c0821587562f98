"""What every probe shares: the processes under test, /proc readings, statistics.

The bench never imports wiregate's internals for a measurement: wiregate runs
as the ``wiregate serve`` command in its own process (so clients and server
never share a GIL), except for the embedding probes, which measure
``wiregate.testing.Server`` itself.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PROFILES = BENCH_DIR / "profiles"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# --------------------------------------------------------------- results
@dataclasses.dataclass
class Row:
    """One line of RESULTS.md.

    ``better`` says which way is good: "higher" (rates) or "lower" (times,
    memory). ``ratio`` is always wiregate ÷ peer. A target is either a bound
    on wiregate's own figure (``target_abs``) or on the ratio
    (``target_ratio``: ratio ≥ it for "higher", ≤ it for "lower").
    """

    probe: str
    metric: str
    unit: str
    better: str
    wiregate: float | None
    peer: float | None = None
    peer_name: str | None = None
    target_abs: float | None = None
    target_ratio: float | None = None
    target_text: str | None = None
    note: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    paired_ratios: list[float] | None = None

    @property
    def ratio(self) -> float | None:
        """wiregate ÷ peer: the median of the per-round ratios where rounds were
        interleaved in pairs (robust to load drifting during the run), else
        the ratio of the medians."""
        if self.paired_ratios:
            return statistics.median(self.paired_ratios)
        if self.wiregate is None or not self.peer:
            return None
        return self.wiregate / self.peer

    @property
    def met(self) -> bool | None:
        """True/False against the target(s); None without a target or a figure."""
        checks = []
        if self.target_abs is not None and self.wiregate is not None:
            if self.better == "higher":
                checks.append(self.wiregate >= self.target_abs)
            else:
                checks.append(self.wiregate <= self.target_abs)
        if self.target_ratio is not None and self.ratio is not None:
            if self.better == "higher":
                checks.append(self.ratio >= self.target_ratio)
            else:
                checks.append(self.ratio <= self.target_ratio)
        return all(checks) if checks else None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ratio"] = self.ratio
        data["ratio_of_medians"] = self.wiregate / self.peer if self.wiregate is not None and self.peer else None
        data["met"] = self.met
        return data


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def pairs(wiregate: list[float], peer: list[float] | None) -> list[float] | None:
    """Per-round ratios of interleaved rounds (None without a peer)."""
    if not peer:
        return None
    return [w / p for w, p in zip(wiregate, peer) if p]


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0..100) of an already sorted list, nearest rank."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# --------------------------------------------------------------- /proc
def rss_kb(pid: int) -> int:
    """Resident set size of one process, in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def pids_named(name: str) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and comm(int(p)) == name]


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of all the process's
    threads, from /proc/PID/task/*/schedstat (nanosecond resolution)."""
    run = wait = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                fields = f.read().split()
            run += int(fields[0])
            wait += int(fields[1])
        except (OSError, ValueError, IndexError):
            pass
    return run / 1e9, wait / 1e9


class CpuMeter:
    """CPU time used by a set of processes between two readings (share of one core),
    and the time they were runnable but waited for a CPU (``wait``: starved by
    other processes on the machine, not idle)."""

    def __init__(self, pids: Callable[[], list[int]]):
        self._pids = pids
        self._start = (0.0, 0.0)
        self._t0 = 0.0

    def _total(self) -> tuple[float, float]:
        cpu = wait = 0.0
        for pid in self._pids():
            run, waited = schedstat(pid)
            cpu += run
            wait += waited
        return cpu, wait

    def __enter__(self) -> "CpuMeter":
        self._start = self._total()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        cpu, wait = self._total()
        self.cpu = cpu - self._start[0]
        self.wait = wait - self._start[1]
        self.wall = time.perf_counter() - self._t0
        self.share = self.cpu / self.wall if self.wall > 0 else 0.0
        self.wait_share = self.wait / self.wall if self.wall > 0 else 0.0


# --------------------------------------------------------------- ports and probes
def free_port() -> int:
    from compat.rabbitmq import free_port as _free  # avoids RabbitMQ's reserved ports

    return _free()


def free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def amqp_start_received(host: str, port: int, timeout: float = 2.0) -> bool:
    """Connect, send the protocol header, and wait for a method frame (connection.start)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(AMQP_HEADER)
            data = b""
            while len(data) < 7:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return data[0] == 1  # a method frame: connection.start
    except OSError:
        return False


def kafka_api_versions(host: str, port: int, timeout: float = 2.0) -> bool:
    """Send ApiVersions v0 and wait for its answer."""
    client = b"bench"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack_from(">i", data)[0]:
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                data += chunk
            return struct.unpack_from(">i", data, 4)[0] == 7
    except OSError:
        return False


def wait_until(check: Callable[[], bool], deadline: float, poll: float = 0.002) -> float:
    """Poll ``check`` until it is true; return the monotonic time it first was."""
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("not ready before the deadline")
        time.sleep(poll)


# --------------------------------------------------------------- wiregate serve
PYCACHE = Path(tempfile.gettempdir()) / "wiregate-bench-pycache"


def server_env(bytecode_cache: bool = True) -> dict[str, str]:
    """The environment wiregate runs in.

    Installed packages have their bytecode compiled at install time; an
    editable checkout run with PYTHONDONTWRITEBYTECODE=1 (as on this
    project's machines) compiles every wiregate module at every start. With
    ``bytecode_cache`` the server may write bytecode, into a cache outside
    the source tree (PYTHONPYCACHEPREFIX), as an installed wiregate would
    have it.
    """
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def wiregate_command() -> list[str]:
    """The ``wiregate`` console script next to this interpreter, else ``python -m wiregate``."""
    script = Path(sys.executable).with_name("wiregate")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "wiregate"]


class WiregateProcess:
    """``wiregate serve`` on explicit free ports in its own process.

    With ``profile`` set (a name), the process runs under ``py-spy record``
    and its collapsed stacks land in bench/profiles/<name>.txt when it stops.
    """

    def __init__(self, profile: str | None = None, host: str = "127.0.0.1", bytecode_cache: bool = True):
        self.host = host
        self.bytecode_cache = bytecode_cache
        self.amqp_port, self.kafka_port, self.http_port = free_ports(3)
        self.profile = profile
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.ready_amqp: float | None = None
        self.ready_kafka: float | None = None
        self.started_at: float | None = None
        self.profile_file: Path | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.amqp_port}/%2F"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    def start(self, timeout: float = 30.0) -> "WiregateProcess":
        command = [
            *wiregate_command(), "serve", "--host", self.host,
            "--amqp-port", str(self.amqp_port), "--kafka-port", str(self.kafka_port),
            "--http-port", str(self.http_port), "--log-level", "warning",
        ]
        if self.profile:
            spy = shutil.which("py-spy")
            if spy is None:
                raise RuntimeError("--profile needs py-spy (pip install py-spy)")
            PROFILES.mkdir(exist_ok=True)
            self.profile_file = PROFILES / f"{self.profile}.txt"
            command = [spy, "record", "--format", "raw", "--rate", "250", "--nonblocking",
                       "-o", str(self.profile_file), "--", *command]
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=server_env(self.bytecode_cache),
        )
        deadline = self.started_at + timeout
        amqp_done = kafka_done = None
        while amqp_done is None or kafka_done is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"wiregate serve exited with {self.process.returncode}")
            if amqp_done is None and amqp_start_received(self.host, self.amqp_port):
                amqp_done = time.monotonic()
            if kafka_done is None and kafka_api_versions(self.host, self.kafka_port):
                kafka_done = time.monotonic()
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("wiregate serve not ready in time")
            if amqp_done is None or kafka_done is None:
                time.sleep(0.002)
        self.ready_amqp = amqp_done - self.started_at
        self.ready_kafka = kafka_done - self.started_at
        self.pid = self.process.pid
        if self.profile:
            kids = [p for p in descendants(self.process.pid) if p != self.process.pid]
            self.pid = next(p for p in kids if comm(p).startswith(("wiregate", "python")))
        return self

    @property
    def ready_seconds(self) -> float:
        return max(self.ready_amqp or 0.0, self.ready_kafka or 0.0)

    def rss_kb(self) -> int:
        assert self.pid is not None
        return rss_kb(self.pid)

    def cpu_meter(self) -> CpuMeter:
        return CpuMeter(lambda: [self.pid] if self.pid else [])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.kill(self.pid or self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.profile_file is not None and self.profile_file.exists():
            from bench.profiling import summarise

            summarise(self.profile_file)

    def __enter__(self) -> "WiregateProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------- RabbitMQ
def rabbitmq_available() -> bool:
    from compat.rabbitmq import find_rabbitmq_server

    return find_rabbitmq_server() is not None


def make_rabbitmq():
    """A private RabbitMQ node (compat/rabbitmq.py) that also records when
    connection.start first arrived on its AMQP port."""
    from compat.rabbitmq import RabbitMQ

    class BenchRabbitMQ(RabbitMQ):
        start_received_seconds: float | None = None

        def start(self):
            self._t0 = time.monotonic()
            return super().start()

        def _wait_ready(self, deadline: float) -> None:
            while self._process.poll() is None and time.monotonic() < deadline:
                if amqp_start_received("127.0.0.1", self.port, timeout=1.0):
                    self.start_received_seconds = time.monotonic() - self._t0
                    break
                time.sleep(0.005)
            super()._wait_ready(deadline)

        def pids(self) -> list[int]:
            """The node's processes: the wrapper we spawned, beam.smp and its
            children (erl_child_setup, inet_gethost); epmd is not among them."""
            if self._process is None:
                return []
            return descendants(self._process.pid)

        def beam_pids(self) -> list[int]:
            pids = self.pids()
            beam = [p for p in pids if comm(p).startswith("beam")]
            return [p for p in pids if p in beam or any(p in descendants(b) for b in beam)]

        def version(self) -> str:
            try:
                out = subprocess.run(
                    [*self._command("rabbitmqctl"), "-n", self.node, "version"], env=self._env,
                    capture_output=True, text=True, timeout=30,
                ).stdout.strip()
                return out.splitlines()[-1] if out else "?"
            except Exception:
                return "?"

    return BenchRabbitMQ()


# --------------------------------------------------------------- librdkafka mock and the null sink
class Helper:
    """A helper script in its own process: it prints one ``WORD address`` line
    when ready and lives until its stdin closes."""

    def __init__(self, module: str, *args: str):
        self.module = module
        self.args = args
        self.process: subprocess.Popen | None = None
        self.address: str | None = None

    def start(self) -> "Helper":
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.module} did not start")
        self.address = line.split()[1]
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> "Helper":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def librdkafka_mock() -> Helper:
    return Helper("bench.librdkafka_mock")


def null_sink(partitions: int, record_size: int = 100) -> Helper:
    return Helper("bench.kafka_null_sink", "--partitions", str(partitions), "--record-size", str(record_size))


# --------------------------------------------------------------- the machine
def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("pika", "aio-pika", "confluent-kafka", "kafka-python", "kio", "trio", "pamqp", "wiregate"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    try:
        import confluent_kafka

        versions["librdkafka"] = confluent_kafka.libversion()[0]
    except Exception:
        versions["librdkafka"] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except Exception:
        commit = "?"
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except Exception:
        mem_kb = 0
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": commit,
        "versions": versions,
        "load_average_at_start": os.getloadavg(),
    }
