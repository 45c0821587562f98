"""The pytest plugin: installing wiregate is enough to get its fixtures.

Registered through the ``pytest11`` entry point.

Fixtures:
    wiregate_server: one in-process server per test session (per xdist
        worker: each worker has its own, on ports the kernel picks).
        Exposes ``amqp_url``, ``kafka_bootstrap``, ``http_url``, ``broker``
        and the rest of :class:`wiregate.testing.Server`.
    wiregate: the same server, emptied before the test: no exchanges,
        queues, topics, groups, committed offsets or fault rules are left
        from the test before (the broker's
        :meth:`~wiregate.core.Broker.reset`, run in the server's thread; it
        takes well under a millisecond).

Marker:
    ``@pytest.mark.wiregate(queues=..., topics=..., exchanges=..., bindings=...)``
    seeds the ``wiregate`` fixture's fresh broker before the test:
    ``queues=["jobs"]`` or ``{"jobs": {"x-max-length": 10}}`` (arguments),
    ``topics=["orders"]`` (1 partition) or ``{"orders": 3}``,
    ``exchanges={"events": "topic"}``, ``bindings=[("jobs", "events", "job.*")]``.

Options:
    ``--wiregate-trace``: record the decoded-frame trace of each test and
    show it in the report of a test that fails (section "wiregate trace").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from wiregate.testing import Server


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wiregate")
    group.addoption(
        "--wiregate-trace",
        action="store_true",
        default=False,
        help="record wiregate's decoded-frame trace per test and show it for failing tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wiregate(queues=None, topics=None, exchanges=None, bindings=None): "
        "declare these in the wiregate fixture's fresh broker before the test",
    )


@pytest.fixture(scope="session")
def wiregate_server() -> Iterator[Server]:
    """A complete wiregate server in this process for the whole session."""
    with Server() as server:
        yield server


@pytest.fixture
def wiregate(wiregate_server: Server, request: pytest.FixtureRequest) -> Iterator[Server]:
    """The session's server with a clean broker for this test (seeded by a ``wiregate`` marker)."""
    wiregate_server.reset()
    marker = request.node.get_closest_marker("wiregate")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.wiregate takes keyword arguments only")
        seed(wiregate_server, **marker.kwargs)
    if not request.config.getoption("wiregate_trace"):
        yield wiregate_server
        return
    with wiregate_server.recording() as events:
        request.node.stash[_TRACE_KEY] = events
        yield wiregate_server


_TRACE_KEY = pytest.StashKey[list]()


def seed(
    server: Server,
    *,
    queues: Any = None,
    topics: Any = None,
    exchanges: Any = None,
    bindings: Any = None,
) -> None:
    """Declare what a ``wiregate`` marker asks for (see the module docstring).

    Raises:
        pytest.UsageError: A value of the wrong shape.
    """
    for name, kind in _pairs(exchanges, "exchanges", default="direct"):
        server.declare_exchange(name, kind)
    for name, arguments in _pairs(queues, "queues", default=None):
        server.declare_queue(name, arguments=arguments)
    for name, partitions in _pairs(topics, "topics", default=1):
        server.create_topic(name, partitions)
    for binding in bindings or ():
        if not isinstance(binding, (tuple, list)) or len(binding) not in (2, 3):
            raise pytest.UsageError(f"a binding is (queue, exchange[, routing_key]), not {binding!r}")
        server.bind_queue(*binding)


def _pairs(value: Any, what: str, *, default: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return [(item, default) for item in value]
    raise pytest.UsageError(f"wiregate marker: {what} is a list of names or a dict, not {value!r}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    events = item.stash.get(_TRACE_KEY, None)
    if events is None or not report.failed or report.when == "setup":
        return
    from wiregate.gateway.trace import format_event

    lines = [format_event(event, color=False) for event in list(events)]
    report.sections.append(("wiregate trace", "\n".join(lines) or "(no frames)"))
