"""Fixtures for the compat oracle: a private RabbitMQ and an embedded wiregate."""

from __future__ import annotations

import pytest

from compat.rabbitmq import RabbitMQ, RabbitMQError, find_rabbitmq_server


@pytest.fixture(scope="session")
def rabbitmq():
    """A private RabbitMQ node for the whole session (skips if not installed).

    Yields the running :class:`compat.rabbitmq.RabbitMQ` (``.url``, ``.port``).
    """
    if find_rabbitmq_server() is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install -y rabbitmq-server)")
    try:
        node = RabbitMQ().start()
    except RabbitMQError as exc:
        pytest.fail(f"could not start a private RabbitMQ: {exc}")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def wiregate_server():
    """An embedded wiregate server for the whole session (skips if absent).

    Yields the ``wiregate.testing.Server`` (``.amqp_url``).
    """
    try:
        from wiregate.testing import Server
    except ImportError as exc:
        pytest.skip(f"wiregate.testing.Server is not available yet: {exc}")
    with Server() as server:
        yield server
