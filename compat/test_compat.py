"""One test per compat scenario: wiregate must look exactly like RabbitMQ.

Each scenario runs with the real pika client against a private RabbitMQ and
an embedded wiregate; the observations must be equal. Scenarios listed in
``compat/DIVERGENCES.md`` are expected to differ (xfail with the reason).
"""

from __future__ import annotations

import pytest

from compat import divergences
from compat.runner import diff
from compat.scenarios import SCENARIOS

pytestmark = pytest.mark.rabbitmq

KNOWN = divergences.load()


def _params():
    for name in SCENARIOS:
        marks = [pytest.mark.xfail(reason=KNOWN[name], strict=False)] if name in KNOWN else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", _params())
def test_scenario_matches_rabbitmq(name, rabbitmq, wiregate_server):
    expected = SCENARIOS[name](rabbitmq.url)
    actual = SCENARIOS[name](wiregate_server.amqp_url)
    lines = diff(expected, actual)
    assert not lines, f"wiregate differs from RabbitMQ in {name}:\n" + "\n".join(lines)
