"""AMQP 0-9-1 front end: a sans-IO protocol state machine over the core."""

from .connection import AMQPConnection
from .replies import AMQPError

__all__ = ["AMQPConnection", "AMQPError"]
