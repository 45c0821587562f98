"""Host librdkafka's built-in mock cluster (C, inside librdkafka) for the Kafka probes.

librdkafka starts a mock cluster when a client is created with
``test.mock.num.brokers``; the cluster lives as long as that client object.
This script creates one, prints the mock's bootstrap address (read from the
``mock`` debug log line) as ``BOOTSTRAP host:port`` and keeps the client
alive until its standard input closes:

    python bench/librdkafka_mock.py            # prints BOOTSTRAP 127.0.0.1:NNNNN

The brokers run in librdkafka's own C threads; the Python thread only waits
on stdin, so the host process adds no Python work to the measurement.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time

import confluent_kafka

_ADDRESS = re.compile(r"bootstrap\.servers=(\S+)")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.found = threading.Event()
        self.bootstrap: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        match = _ADDRESS.search(record.getMessage())
        if match and self.bootstrap is None:
            self.bootstrap = match.group(1)
            self.found.set()


def start(num_brokers: int = 1, timeout: float = 10.0) -> tuple[confluent_kafka.Producer, str]:
    """Create the client that hosts the mock; return it (keep it alive) and the bootstrap address."""
    capture = _Capture()
    logger = logging.getLogger("librdkafka-mock")
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    host = confluent_kafka.Producer(
        {"test.mock.num.brokers": num_brokers, "debug": "mock", "logger": logger, "bootstrap.servers": ""}
    )
    deadline = time.monotonic() + timeout
    while not capture.found.is_set():
        host.poll(0.01)  # serves the log queue
        if time.monotonic() > deadline:
            raise RuntimeError("librdkafka printed no mock bootstrap address")
    assert capture.bootstrap is not None
    return host, capture.bootstrap


def main() -> None:
    host, bootstrap = start()
    sys.stdout.write(f"BOOTSTRAP {bootstrap}\n")
    sys.stdout.flush()
    sys.stdin.read()  # until the parent closes our stdin
    del host


if __name__ == "__main__":
    main()
