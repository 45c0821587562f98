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


_load_kio_without_hypothesis()

from .connection import KafkaConnection  # noqa: E402

__all__ = ["KafkaConnection"]
