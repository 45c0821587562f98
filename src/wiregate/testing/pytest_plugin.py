"""The pytest plugin: installing wiregate is enough to get its fixtures.

Registered through the ``pytest11`` entry point.

Fixtures:
    wiregate_server: one in-process server per test session (per xdist
        worker), on ports the kernel picks.  Exposes ``amqp_url``,
        ``kafka_bootstrap``, ``http_url``, ``broker`` and the rest of
        :class:`wiregate.testing.Server`.
    wiregate: the same server, emptied before the test: no exchanges,
        queues, topics, groups or committed offsets are left from the test
        before (the broker's :meth:`~wiregate.core.Broker.reset`, run in the
        server's thread; it takes well under a millisecond).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wiregate.testing import Server


@pytest.fixture(scope="session")
def wiregate_server() -> Iterator[Server]:
    """A complete wiregate server in this process for the whole session."""
    with Server() as server:
        yield server


@pytest.fixture
def wiregate(wiregate_server: Server) -> Server:
    """The session's server with a clean broker for this test."""
    wiregate_server.call(wiregate_server.broker.reset)
    return wiregate_server
