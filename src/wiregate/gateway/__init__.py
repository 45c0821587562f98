"""The Trio side of wiregate: listeners, connection tasks, HTTP API, CLI.

This is the only package that does I/O.  It drives the sans-IO protocol
packages (:mod:`wiregate.amqp`, :mod:`wiregate.kafka_wire`), which in turn
call the synchronous :mod:`wiregate.core` engine.
"""

from wiregate.gateway.config import Config
from wiregate.gateway.listeners import ListenError
from wiregate.gateway.server import Addresses, Gateway, serve

__all__ = ["Addresses", "Config", "Gateway", "ListenError", "serve"]
