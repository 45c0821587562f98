"""The protocol-neutral core engine: synchronous, deterministic, no I/O."""

from .broker import Broker
from .errors import (
    AccessRefused,
    CommandInvalid,
    CoreError,
    NotAllowed,
    NotFound,
    PreconditionFailed,
    ResourceLocked,
)
from .exchange import Exchange
from .message import Entry, Message
from .queue import Consumer, Queue
from .vhost import VHost

__all__ = [
    "AccessRefused",
    "Broker",
    "CommandInvalid",
    "Consumer",
    "CoreError",
    "Entry",
    "Exchange",
    "Message",
    "NotAllowed",
    "NotFound",
    "PreconditionFailed",
    "Queue",
    "ResourceLocked",
    "VHost",
]
