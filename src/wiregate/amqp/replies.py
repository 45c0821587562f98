"""AMQP reply codes and RabbitMQ's reply texts, in one place.

Soft errors close a channel; hard errors close the connection.  The core's
error kinds map to codes here (one table per protocol, see core/errors.py).
"""

from __future__ import annotations

from wiregate.core.errors import CoreError

REPLY_SUCCESS = 200
CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
NO_CONSUMERS = 313
CONNECTION_FORCED = 320
INVALID_PATH = 402
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541

CODE_BY_KIND: dict[str, int] = {
    "CONTENT_TOO_LARGE": CONTENT_TOO_LARGE,
    "NO_ROUTE": NO_ROUTE,
    "NO_CONSUMERS": NO_CONSUMERS,
    "CONNECTION_FORCED": CONNECTION_FORCED,
    "INVALID_PATH": INVALID_PATH,
    "ACCESS_REFUSED": ACCESS_REFUSED,
    "NOT_FOUND": NOT_FOUND,
    "RESOURCE_LOCKED": RESOURCE_LOCKED,
    "PRECONDITION_FAILED": PRECONDITION_FAILED,
    "FRAME_ERROR": FRAME_ERROR,
    "SYNTAX_ERROR": SYNTAX_ERROR,
    "COMMAND_INVALID": COMMAND_INVALID,
    "CHANNEL_ERROR": CHANNEL_ERROR,
    "UNEXPECTED_FRAME": UNEXPECTED_FRAME,
    "RESOURCE_ERROR": RESOURCE_ERROR,
    "NOT_ALLOWED": NOT_ALLOWED,
    "NOT_IMPLEMENTED": NOT_IMPLEMENTED,
    "INTERNAL_ERROR": INTERNAL_ERROR,
}
KIND_BY_CODE = {code: kind for kind, code in CODE_BY_KIND.items()}

SOFT_CODES = frozenset({CONTENT_TOO_LARGE, NO_ROUTE, NO_CONSUMERS, ACCESS_REFUSED, NOT_FOUND, RESOURCE_LOCKED, PRECONDITION_FAILED})

SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


class AMQPError(Exception):
    """A protocol error to report to the peer.

    Attributes:
        code: the AMQP reply code.
        text: the full reply text, ``KIND - detail`` as RabbitMQ writes it.
        method_index: (class_id << 16 | method_id) of the failing method, or 0.
        hard: True when the whole connection must close.
    """

    def __init__(self, code: int, detail: str, method_index: int = 0, *, hard: bool | None = None) -> None:
        kind = KIND_BY_CODE.get(code, "INTERNAL_ERROR")
        # RabbitMQ sends a bare kind for crashes ("INTERNAL_ERROR")
        text = f"{kind} - {detail}" if detail else kind
        super().__init__(text)
        self.code = code
        self.text = text
        self.method_index = method_index
        self.hard = code not in SOFT_CODES if hard is None else hard

    @classmethod
    def from_core(cls, error: CoreError, method_index: int = 0) -> "AMQPError":
        return cls(CODE_BY_KIND.get(error.kind, INTERNAL_ERROR), error.text, method_index)


def channel_error(code: int, detail: str, method_index: int = 0) -> AMQPError:
    return AMQPError(code, detail, method_index, hard=False)


def connection_error(code: int, detail: str, method_index: int = 0) -> AMQPError:
    return AMQPError(code, detail, method_index, hard=True)
