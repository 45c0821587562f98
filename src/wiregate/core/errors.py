"""Errors raised by the core engine.

The core knows nothing of wire protocols.  Every error carries a protocol-
neutral *kind* (named after RabbitMQ's reply-code constants, since AMQP is
the richer vocabulary) and a human text in RabbitMQ's wording without the
``KIND - `` prefix.  Each protocol layer maps kinds to its own codes in one
table (``wiregate.amqp.replies``, later ``wiregate.kafka_wire.errors``).
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class: something a client asked for cannot be done."""

    kind = "INTERNAL_ERROR"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class NotFound(CoreError):
    kind = "NOT_FOUND"


class PreconditionFailed(CoreError):
    kind = "PRECONDITION_FAILED"


class AccessRefused(CoreError):
    kind = "ACCESS_REFUSED"


class ResourceLocked(CoreError):
    kind = "RESOURCE_LOCKED"


class NotAllowed(CoreError):
    """Connection-level in AMQP (530)."""

    kind = "NOT_ALLOWED"


class CommandInvalid(CoreError):
    """Connection-level in AMQP (503)."""

    kind = "COMMAND_INVALID"


class NotImplementedFeature(CoreError):
    kind = "NOT_IMPLEMENTED"
