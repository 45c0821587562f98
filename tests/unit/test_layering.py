"""Imports point one way: core <- amqp, kafka_wire <- gateway (DESIGN.md).

Each package is imported alone in a fresh interpreter, so a module that an
earlier test imported cannot hide a wrong-way import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Only the gateway does I/O; only protocol packages know a wire format.
FORBIDDEN = {
    "wiregate.core": ["trio", "h11", "pamqp", "asyncio", "wiregate.amqp", "wiregate.kafka_wire", "wiregate.gateway"],
    "wiregate.amqp": ["trio", "h11", "asyncio", "wiregate.kafka_wire", "wiregate.gateway"],
    "wiregate.kafka_wire": ["trio", "h11", "pamqp", "asyncio", "wiregate.amqp", "wiregate.gateway"],
    "wiregate.storage": ["trio", "h11", "asyncio", "wiregate.gateway"],
    "wiregate.gateway": ["asyncio"],
}


# Third-party codecs a package builds on.  What *they* load is not the
# package's doing (kio's phantom types pull in hypothesis, and with it
# asyncio, when hypothesis is installed), so it is measured first and
# discounted.
THIRD_PARTY = {
    "wiregate.kafka_wire": ["kio.serial", "kio.index", "kio.schema.errors"],
    "wiregate.storage": ["kio.serial", "kio.index", "kio.schema.errors"],
    "wiregate.gateway": ["kio.serial", "kio.index", "kio.schema.errors"],
}


def _modules_loaded_by(package: str) -> set[str]:
    script = f"import sys, json, {package}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_layers_below(package: str) -> None:
    loaded = _modules_loaded_by(package)
    for dependency in THIRD_PARTY.get(package, []):
        loaded -= _modules_loaded_by(dependency)
    wrong = [name for name in FORBIDDEN[package] if name in loaded]
    assert wrong == [], f"importing {package} loads {wrong}"
