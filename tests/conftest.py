"""Shared fixtures.  ``wiregate_server`` (one in-process server per session)
and ``wiregate`` (the same, emptied per test) come from wiregate's own
pytest plugin (``wiregate.testing.pytest_plugin``), as they do for users."""

from __future__ import annotations

import uuid

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def amqp_url(wiregate_server) -> str:
    return wiregate_server.amqp_url


@pytest.fixture
def unique() -> str:
    """A fresh name prefix, so tests sharing the server never collide."""
    return f"t-{uuid.uuid4().hex[:10]}"
