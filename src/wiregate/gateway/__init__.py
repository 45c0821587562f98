"""The Trio side of wiregate: listeners, connection tasks, HTTP API, CLI.

This is the only package that does I/O.  It drives the sans-IO protocol
packages (:mod:`wiregate.amqp`, :mod:`wiregate.kafka_wire`), which in turn
call the synchronous :mod:`wiregate.core` engine.

The decoded-frame trace is :mod:`wiregate.gateway.trace`: ``Gateway.tracer``
(a :class:`Tracer`) calls every registered sink with each AMQP frame, Kafka
request/response, connection open/close and injected fault.
"""

from wiregate.gateway.config import Config
from wiregate.gateway.listeners import ListenError
from wiregate.gateway.server import Addresses, Gateway, serve
from wiregate.gateway.trace import Tracer

__all__ = ["Addresses", "Config", "Gateway", "ListenError", "Tracer", "serve"]
