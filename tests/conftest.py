"""Shared fixtures: one in-process wiregate server per test session."""

from __future__ import annotations

import uuid

import pytest

from wiregate.testing import Server


@pytest.fixture(scope="session")
def wiregate_server():
    """A complete wiregate server in this process (ports picked by the kernel)."""
    with Server() as server:
        yield server


@pytest.fixture
def amqp_url(wiregate_server) -> str:
    return wiregate_server.amqp_url


@pytest.fixture
def unique() -> str:
    """A fresh name prefix, so tests sharing the server never collide."""
    return f"t-{uuid.uuid4().hex[:10]}"
