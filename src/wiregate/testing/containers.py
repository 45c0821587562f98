"""wiregate in Docker, for test suites that already use testcontainers.

::

    from kafka import KafkaProducer
    import pika
    from wiregate.testing.containers import WiregateContainer

    with WiregateContainer() as gateway:                 # image "wiregate:latest"
        pika.BlockingConnection(pika.URLParameters(gateway.get_amqp_url()))
        KafkaProducer(bootstrap_servers=gateway.get_kafka_bootstrap())
        gateway.get_http_url()                           # GET /api/health, /api/overview

Needs the ``containers`` extra (``pip install 'wiregate[containers]'``), a
Docker engine, and the image built from ``docker/Dockerfile``.  Without
Docker, :class:`wiregate.testing.Server` runs the same server in-process in
milliseconds; this module is for suites that want every dependency in a
container.

**Readiness.**  :meth:`WiregateContainer.start` returns once
``GET /api/health`` on the HTTP port answers 200, which wiregate does only
when every listener (AMQP, Kafka, HTTP) accepts connections.  An open port
or a log line is not taken as readiness.  If the container exits first,
start fails at once with its logs.

**Kafka's advertised address.**  A Kafka client uses the bootstrap address
only for its first request; it then connects to the address the broker
advertises in its Metadata response.  With Docker's usual random port
mapping (container 9092 published on host port 49xxx), a broker that
advertises ``localhost:9092`` sends clients to a port nobody listens on.
The advertised port must therefore be the port the *test* sees.

The Kafka and Redpanda modules of testcontainers solve this by starting
the container with a shell loop that waits for a start script, then writing
that script (with the mapped port) into the container once Docker has
chosen the port.  That needs a shell in the image, overrides its entry
point, and cannot be exercised without a Docker engine.  This module does
something simpler: before the container starts it picks a free TCP port P
on the machine running the tests (bind to port 0, read the number, close),
runs wiregate with ``--kafka-port P --advertised-host H`` and publishes
host port P on container port P.  H is the host that testcontainers gives
for the Docker host (``localhost`` for a local engine, the host of a
``tcp://`` ``DOCKER_HOST``, ``TESTCONTAINERS_HOST_OVERRIDE``).  The port is
the same inside and outside, so the advertised address is right whether the
client goes through the published port or straight to the container.  The
AMQP and HTTP ports are published on random host ports as usual, since no
protocol echoes them back.

Limits of that choice: another process could take P between the probe and
``docker run`` (a short window; the start then fails rather than misroutes);
with a remote Docker engine the probe checks the local machine, not the
engine's, so pass ``kafka_port=`` if P is taken there; and when the tests
themselves run inside a container on the same Docker network, pass the
address they reach wiregate by as ``advertised_host=`` (a network alias or
the container's name).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import quote
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

try:
    import testcontainers.core.container as _tc_container
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.docker_client import DockerClient
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "wiregate.testing.containers needs testcontainers: pip install 'wiregate[containers]'"
    ) from exc

__all__ = ["DEFAULT_IMAGE", "WiregateContainer", "free_port", "wait_for_health"]

#: The image used when none is given and ``WIREGATE_IMAGE`` is not set.
DEFAULT_IMAGE = "wiregate:latest"
#: The environment variable that overrides :data:`DEFAULT_IMAGE`.
IMAGE_ENV = "WIREGATE_IMAGE"
HEALTH_PATH = "/api/health"


def free_port() -> int:
    """A TCP port that is free on this machine right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def format_host(host: str) -> str:
    """``host`` as it appears before ``:port`` (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def wait_for_health(
    url: str,
    timeout: float,
    *,
    interval: float = 0.1,
    check_alive: Callable[[], None] | None = None,
) -> None:
    """Poll ``url`` until it answers 200.

    A 503 (wiregate still opening its listeners), any other status, a
    refused or reset connection and a slow answer all mean "not yet".

    Args:
        url: The health URL, e.g. ``http://localhost:49153/api/health``.
        timeout: Seconds before giving up.
        interval: Seconds between attempts.
        check_alive: Called before each attempt; raises to stop waiting
            (e.g. because the container exited).

    Raises:
        TimeoutError: No 200 within ``timeout``; the message names the last
            answer or error.
    """
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        if check_alive is not None:
            check_alive()
        try:
            with urllib.request.urlopen(url, timeout=max(0.1, min(2.0, timeout))) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        if time.monotonic() + interval > deadline:
            raise TimeoutError(f"wiregate not ready after {timeout:g} s: GET {url} -> {last}")
        time.sleep(interval)


class _LazyDockerClient(DockerClient):
    """testcontainers' ``DockerClient``, connecting on first use.

    ``DockerContainer.__init__`` builds a ``DockerClient``, and docker-py
    asks the daemon for its API version right there, so merely constructing
    a container object fails without Docker.  This subclass keeps the
    arguments and runs the real ``__init__`` when ``.client`` (which every
    method of ``DockerClient`` goes through) is first read.
    """

    def __init__(self, **kwargs: Any) -> None:  # no super().__init__: deferred
        self._deferred_kwargs = kwargs

    @property
    def connected(self) -> bool:
        return "client" in self.__dict__

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found normally, i.e. before connecting.
        if name == "client" and "_deferred_kwargs" in self.__dict__:
            # On failure (no daemon) the arguments stay, and the next use retries.
            DockerClient.__init__(self, **self.__dict__["_deferred_kwargs"])
            del self.__dict__["_deferred_kwargs"]
            return self.__dict__["client"]
        raise AttributeError(name)


_patch_lock = threading.Lock()


@contextmanager
def _deferred_docker_client() -> Iterator[None]:
    """Make ``DockerContainer.__init__`` build a :class:`_LazyDockerClient`.

    The base class looks ``DockerClient`` up in its module's globals; it is
    swapped for the lazy subclass for the duration of one constructor call.
    A container built by another thread meanwhile gets a lazy client too,
    which behaves the same, only later.
    """
    with _patch_lock:
        original = _tc_container.DockerClient
        _tc_container.DockerClient = _LazyDockerClient  # type: ignore[misc]
        try:
            yield
        finally:
            _tc_container.DockerClient = original  # type: ignore[misc]


class WiregateContainer(DockerContainer):
    """A wiregate server in a Docker container.

    Constructing one does not contact Docker; :meth:`start` (or ``with``)
    does.

    Args:
        image: The image; default ``$WIREGATE_IMAGE`` or ``wiregate:latest``.
        amqp_port: AMQP port inside the container (published on a random
            host port).
        http_port: HTTP API port inside the container (published on a
            random host port).
        kafka_port: Kafka port, the same inside the container and on the
            host; ``None`` (the default) picks a free one at start.
        advertised_host: Host Kafka clients are told to connect to; ``None``
            (the default) uses the Docker host as testcontainers sees it.
        startup_timeout: Seconds :meth:`start` waits for ``/api/health``.
        **kwargs: Passed on to ``DockerContainer`` (``docker_client_kw``,
            ``network``, ``volumes``, ...).
    """

    def __init__(
        self,
        image: str | None = None,
        *,
        amqp_port: int = 5672,
        http_port: int = 15672,
        kafka_port: int | None = None,
        advertised_host: str | None = None,
        startup_timeout: float = 30.0,
        **kwargs: Any,
    ) -> None:
        with _deferred_docker_client():
            super().__init__(image or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE, **kwargs)
        self.amqp_port = amqp_port
        self.http_port = http_port
        self.kafka_port = kafka_port
        self.advertised_host = advertised_host
        self.startup_timeout = startup_timeout
        self.log_level: str | None = None
        self.kafka_configs: dict[str, str] = {}
        self.with_exposed_ports(amqp_port, http_port)
        # The image's HEALTHCHECK reads it, so `docker ps` agrees with start().
        self.with_env("WIREGATE_HTTP_PORT", str(http_port))

    # -- configuration -------------------------------------------------

    def with_kafka_config(self, key: str, value: object) -> Self:
        """Add a static broker config (``--kafka-config key=value``).

        Booleans are written as Kafka writes them (``true``/``false``).
        """
        if not key or "=" in key or any(ch.isspace() for ch in key):
            raise ValueError(f"not a Kafka config name: {key!r}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.kafka_configs[key] = str(value)
        return self

    def with_advertised_host(self, host: str) -> Self:
        """Advertise ``host`` to Kafka clients instead of the Docker host."""
        self.advertised_host = host
        return self

    def with_kafka_port(self, port: int) -> Self:
        """Use ``port`` for Kafka, inside the container and on the host."""
        self.kafka_port = port
        return self

    def with_log_level(self, level: str) -> Self:
        """wiregate's ``--log-level`` (debug, info, warning, error, critical)."""
        self.log_level = level
        return self

    def server_args(self) -> list[str]:
        """The arguments appended to the image's ``wiregate serve --host 0.0.0.0``.

        Needs :attr:`kafka_port` and :attr:`advertised_host` resolved (see
        :meth:`start`).
        """
        if self.kafka_port is None or self.advertised_host is None:
            raise RuntimeError("kafka_port and advertised_host are resolved when the container starts")
        args = [
            "--amqp-port", str(self.amqp_port),
            "--http-port", str(self.http_port),
            "--kafka-port", str(self.kafka_port),
            "--advertised-host", self.advertised_host,
        ]  # fmt: skip
        for key, value in self.kafka_configs.items():
            args += ["--kafka-config", f"{key}={value}"]
        if self.log_level is not None:
            args += ["--log-level", self.log_level]
        return args

    def _resolve(self) -> None:
        """Fix the Kafka port and advertised host; set the command and port bindings."""
        if self.kafka_port is None:
            self.kafka_port = free_port()
        if self.advertised_host is None:
            self.advertised_host = self.get_docker_client().host()
        self.with_bind_ports(self.kafka_port, self.kafka_port)
        self.with_command(self.server_args())

    # -- life cycle ----------------------------------------------------

    def start(self) -> Self:
        """Start the container and wait until ``/api/health`` answers 200."""
        self._resolve()
        super().start()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        wait_for_health(self.get_http_url() + HEALTH_PATH, self.startup_timeout, check_alive=self._check_running)

    def _check_running(self) -> None:
        container = getattr(self, "_container", None)
        if container is None:
            return
        container.reload()
        if container.status in ("exited", "dead"):
            logs = container.logs().decode(errors="replace")
            raise RuntimeError(f"wiregate container {container.status} before it was ready:\n{logs}")

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        docker = self._docker
        if isinstance(docker, _LazyDockerClient) and not docker.connected and getattr(self, "_container", None) is None:
            return  # never connected: nothing to remove or close
        super().stop(force=force, delete_volume=delete_volume)

    # -- addresses -----------------------------------------------------

    def get_amqp_url(self, vhost: str = "/") -> str:
        """``amqp://guest:guest@HOST:PORT/VHOST`` (the vhost URL-encoded)."""
        host = format_host(self.get_container_host_ip())
        port = self.get_exposed_port(self.amqp_port)
        return f"amqp://guest:guest@{host}:{port}/{quote(vhost, safe='')}"

    def get_kafka_bootstrap(self) -> str:
        """``HOST:PORT`` for ``bootstrap_servers``: the advertised address."""
        if self.kafka_port is None or self.advertised_host is None:
            raise RuntimeError("the Kafka address is known once the container starts")
        return f"{format_host(self.advertised_host)}:{self.kafka_port}"

    def get_http_url(self) -> str:
        """The base URL of the HTTP API, e.g. ``http://localhost:49154``."""
        host = format_host(self.get_container_host_ip())
        return f"http://{host}:{self.get_exposed_port(self.http_port)}"
