"""Validation of ``x-`` queue and consumer arguments, as RabbitMQ 3.10 does it.

Each check returns None when the value is acceptable, or the Erlang term
RabbitMQ prints in its 406 text (``{value_negative,-1}``, ``invalid_overflow``,
a quoted string ...).  Unknown ``x-`` arguments are accepted, as in RabbitMQ.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import PreconditionFailed
from .values import type_name

INTEGER_TYPES = frozenset({"byte", "short", "signedint", "long", "unsignedbyte", "unsignedshort", "unsignedint"})
MAX_EXPIRY_TIMER = 4294967295
MAX_PRIORITY = 255
OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
QUEUE_TYPES = ("classic", "quorum", "stream")
QUEUE_MODES = ("default", "lazy")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _int_error(value: Any) -> str | None:
    kind = type_name(value)
    if kind not in INTEGER_TYPES:
        return f'"expected integer, got {kind}"'
    return None


def _non_negative(value: Any, args: dict[str, Any]) -> str | None:
    error = _int_error(value)
    if error:
        return error
    if value < 0:
        return f"{{value_negative,{value}}}"
    return None


def _expires(value: Any, args: dict[str, Any]) -> str | None:
    error = _int_error(value)
    if error:
        return error
    if value == 0:
        return "{value_zero,0}"
    if value < 0:
        return f"{{value_negative,{value}}}"
    if value > MAX_EXPIRY_TIMER:
        return f"{{value_too_large,{value}}}"
    return None


def _message_ttl(value: Any, args: dict[str, Any]) -> str | None:
    error = _non_negative(value, args)
    if error:
        return error
    if value > MAX_EXPIRY_TIMER:
        return f"{{value_too_large,{value}}}"
    return None


def _max_priority(value: Any, args: dict[str, Any]) -> str | None:
    error = _non_negative(value, args)
    if error:
        return error
    if value > MAX_PRIORITY:
        return f"{{max_value_exceeded,{value}}}"
    return None


def _one_of(choices: tuple[str, ...], error: Callable[[str], str]) -> Callable[[Any, dict[str, Any]], str | None]:
    def check(value: Any, args: dict[str, Any]) -> str | None:
        kind = type_name(value)
        if kind != "longstr":
            return f"{{unacceptable_type,{kind}}}"
        if _text(value) not in choices:
            return error(_text(value))
        return None

    return check


def _boolean(value: Any, args: dict[str, Any]) -> str | None:
    kind = type_name(value)
    return None if kind == "bool" else f"{{unacceptable_type,{kind}}}"


def _dlx_routing_key(value: Any, args: dict[str, Any]) -> str | None:
    if "x-dead-letter-exchange" not in args:
        return "routing_key_but_no_dlx_defined"
    return None


QUEUE_ARGUMENTS: dict[str, Callable[[Any, dict[str, Any]], str | None]] = {
    "x-expires": _expires,
    "x-message-ttl": _message_ttl,
    "x-dead-letter-routing-key": _dlx_routing_key,
    "x-max-length": _non_negative,
    "x-max-length-bytes": _non_negative,
    "x-max-in-memory-length": _non_negative,
    "x-max-in-memory-bytes": _non_negative,
    "x-max-priority": _max_priority,
    "x-overflow": _one_of(OVERFLOW_MODES, lambda v: "invalid_overflow"),
    "x-queue-mode": _one_of(QUEUE_MODES, lambda v: f"\"unsupported queue mode '{v}'\""),
    "x-single-active-consumer": _boolean,
    "x-queue-type": _one_of(QUEUE_TYPES, lambda v: f"\"unsupported queue type '{v}'\""),
    "x-quorum-initial-group-size": _non_negative,
    "x-delivery-limit": _non_negative,
}

#: arguments whose *type* is checked with its own message (rabbit_amqqueue:check_dlxname_arg)
_STRING_ARGUMENTS = ("x-dead-letter-exchange", "x-dead-letter-routing-key")


def validate_queue_arguments(arguments: dict[str, Any], what: str) -> None:
    """Raise PreconditionFailed (406) for an unacceptable ``x-`` queue argument.

    Args:
        arguments: the declare arguments.
        what: ``queue 'name' in vhost '/'`` for the error text.
    """
    for key in _STRING_ARGUMENTS:
        if key in arguments and type_name(arguments[key]) != "longstr":
            raise PreconditionFailed(f"invalid type '{type_name(arguments[key])}' for arg '{key}' in {what}")
    for key, check in QUEUE_ARGUMENTS.items():
        if key in arguments:
            error = check(arguments[key], arguments)
            if error:
                raise PreconditionFailed(f"invalid arg '{key}' for {what}: {error}")


def validate_consumer_arguments(arguments: dict[str, Any], what: str) -> None:
    """Raise PreconditionFailed (406) for an unacceptable consumer argument."""
    if "x-priority" in arguments:
        error = _int_error(arguments["x-priority"])
        if error:
            raise PreconditionFailed(f"invalid arg 'x-priority' for {what}: {error}")
