"""Kafka wire protocol front end: a sans-IO state machine over the core."""

import sys as _sys


def _load_kio_without_hypothesis() -> None:
    # kio registers hypothesis strategies for its types whenever hypothesis
    # is importable (a test environment), importing it at kio's first
    # import: ~0.3 s for every process that embeds wiregate, for strategies
    # wiregate never uses.  kio decides once, when kio.static._phantom is
    # imported; hide hypothesis for that moment only, unless the process
    # already has it (then there is nothing to save), and let it be imported
    # normally afterwards.
    if "hypothesis" in _sys.modules or "kio.static._phantom" in _sys.modules:
        return
    _sys.modules["hypothesis"] = None  # type: ignore[assignment]
    try:
        import kio.static._phantom  # noqa: F401
    finally:
        if _sys.modules.get("hypothesis", False) is None:
            del _sys.modules["hypothesis"]


def _load_kio_serial_without_asyncio() -> None:
    # kio.serial.writers imports asyncio only to name asyncio.StreamWriter
    # in a type alias; asyncio costs ~15 ms of start-up and the server never
    # uses it.  While the process has one thread (``wiregate serve`` at
    # start-up: nobody else can import asyncio meanwhile) kio gets a
    # stand-in module for that import, gone from sys.modules right after.
    import threading

    if "asyncio" in _sys.modules or "kio.serial" in _sys.modules or threading.active_count() != 1:
        return
    import types

    stand_in = types.ModuleType("asyncio", "stand-in while kio.serial is imported (see wiregate.kafka_wire)")
    stand_in.StreamWriter = type("StreamWriter", (), {})  # type: ignore[attr-defined]
    stand_in.StreamReader = type("StreamReader", (), {})  # type: ignore[attr-defined]
    _sys.modules["asyncio"] = stand_in
    try:
        import kio.serial  # noqa: F401
    finally:
        if _sys.modules.get("asyncio") is stand_in:
            del _sys.modules["asyncio"]


_load_kio_without_hypothesis()
_load_kio_serial_without_asyncio()

from .connection import KafkaConnection  # noqa: E402

__all__ = ["KafkaConnection"]
