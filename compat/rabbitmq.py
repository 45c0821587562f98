"""A private, throw-away RabbitMQ node for the compat oracle.

The node runs the distribution's unmodified ``rabbitmq-server`` with every
piece of state (mnesia, logs, pid file, plugin list, config) in a fresh
temporary folder and on free ports, so it never touches, and is never
disturbed by, a system RabbitMQ on 5672/25672.

As root, Debian's ``/usr/sbin/rabbitmq-server`` wrapper drops to the
``rabbitmq`` user (``su rabbitmq``), which keeps our ``RABBITMQ_*``
environment and uses ``/var/lib/rabbitmq/.erlang.cookie``; the temp folder
is therefore chowned to ``rabbitmq``. Any other user runs the scripts in
``/usr/lib/rabbitmq/bin`` directly with ``HOME`` pointing at the temp folder,
where Erlang creates its own cookie.

Readiness is "an AMQP connection with guest/guest succeeds": the listener
opens late in RabbitMQ's boot sequence and a completed handshake proves the
broker (vhost, auth) is usable. That avoids the ~0.6 s start-up cost of each
``rabbitmqctl`` call; ``rabbitmqctl stop`` is used only to shut down.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

WRAPPER_DIRS = ("/usr/sbin", "/usr/lib/rabbitmq/bin")
LIB_BIN = Path("/usr/lib/rabbitmq/bin")
# rabbitmqctl's own Erlang distribution listener uses 35672..35682 by default.
RESERVED_PORTS = {4369, 5672, 15672, 25672, *range(35672, 35683)}


class RabbitMQError(RuntimeError):
    """The private node could not be started (the message carries its log tail)."""


def find_rabbitmq_server() -> str | None:
    """Return the path of ``rabbitmq-server``, or None when it is not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *WRAPPER_DIRS])
    return shutil.which("rabbitmq-server", path=search)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now and not RabbitMQ-reserved."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in RESERVED_PORTS and port < 55000:
            return port


class RabbitMQ:
    """Context manager running a private RabbitMQ node.

    Attributes:
        port: the AMQP port (on 127.0.0.1).
        url: ``amqp://guest:guest@127.0.0.1:<port>/%2F``.
        node: the Erlang node name.
        startup_seconds: wall time from spawning the node to the first
            successful AMQP handshake.

    Raises:
        RabbitMQError: on ``__enter__`` when the node exits or is not
            ready within ``start_timeout`` seconds; the node is stopped and
            its folder removed before raising.
    """

    def __init__(self, start_timeout: float = 60.0, keep_dir: bool = False):
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.node = f"wgcompat{os.getpid()}x{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self.startup_seconds: float | None = None
        self.dir: Path | None = None
        self._process: subprocess.Popen | None = None
        self._output = None

    # -- environment ------------------------------------------------------

    def _prepare_dir(self) -> dict[str, str]:
        self.dir = Path(tempfile.mkdtemp(prefix="wgcompat-rmq-"))
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir()
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_PID_FILE=str(self.dir / "rabbitmq.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"),
            # Files that do not exist: no config, whatever /etc/rabbitmq holds.
            RABBITMQ_CONFIG_FILE=str(self.dir / "no-config"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.dir / "no-advanced.config"),
        )
        env.pop("RABBITMQ_CONFIG_FILES", None)
        if os.geteuid() == 0:
            user = pwd.getpwnam("rabbitmq")
            for path in [self.dir, *self.dir.iterdir()]:
                os.chown(path, user.pw_uid, user.pw_gid)
            self.dir.chmod(0o755)
        else:
            env["HOME"] = str(self.dir)
        return env

    def _command(self, name: str) -> list[str]:
        if os.geteuid() == 0:
            found = shutil.which(name, path=os.pathsep.join(WRAPPER_DIRS))
            return [found or name]
        return [str(LIB_BIN / name)]

    # -- lifecycle --------------------------------------------------------

    def start(self) -> "RabbitMQ":
        """Start the node and wait until it accepts AMQP connections."""
        if find_rabbitmq_server() is None:
            raise RabbitMQError("rabbitmq-server is not installed")
        self._env = self._prepare_dir()
        began = time.monotonic()
        self._output = open(self.dir / "server-output.txt", "wb")
        self._process = subprocess.Popen(
            self._command("rabbitmq-server"),
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(began + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_ready(self, deadline: float) -> None:
        import pika  # imported late: the module must load without pika installed

        params = pika.URLParameters(self.url)
        params.connection_attempts = 1
        params.socket_timeout = 2
        while True:
            if self._process.poll() is not None:
                raise RabbitMQError(
                    f"rabbitmq-server exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RabbitMQError(f"RabbitMQ not ready after {self.start_timeout}s:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                pika.BlockingConnection(params).close()
                return
            except (OSError, pika.exceptions.AMQPError):
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the node (``rabbitmqctl stop``, then SIGKILL) and remove its folder."""
        if self._process is not None:
            if self._process.poll() is None:
                subprocess.run(
                    [*self._command("rabbitmqctl"), "-n", self.node, "stop"],
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=60,
                    check=False,
                )
                try:
                    self._process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._kill_node()
            self._process = None
        if self._output is not None:
            self._output.close()
            self._output = None
        if self.dir is not None and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _kill_node(self) -> None:
        # The beam process is a child of su/sh: kill it by the pid it wrote,
        # then the wrapper process we spawned.
        pid_file = self.dir / "rabbitmq.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        self._process.kill()
        self._process.wait(timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the node's console output."""
        try:
            text = (self.dir / "server-output.txt").read_text(errors="replace")
        except (OSError, TypeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> "RabbitMQ":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


if __name__ == "__main__":
    with RabbitMQ() as rabbit:
        print(f"{rabbit.node} ready at {rabbit.url} in {rabbit.startup_seconds:.2f}s")
        began = time.monotonic()
    print(f"stopped in {time.monotonic() - began:.2f}s")
