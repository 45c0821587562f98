"""FindCoordinator (key 10), v0-v6.

Behavior:
- Groups (key type 0): the coordinator is this broker (node 0) at the
  connection's advertised host and port, for every key.
- Transactions (key type 1): this broker too.  Transactions are not
  implemented, so the producer's next request, InitProducerId with its
  transactional id, is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
  which every client reports at once; COORDINATOR_NOT_AVAILABLE here would
  make a transactional producer retry until its timeout instead.
- Share groups (key type 2, KIP-932) and unknown key types: INVALID_REQUEST.
- v0-v3 answer one key; v4+ a batch of ``coordinator_keys``, each with its
  own error (KIP-699).  Errors carry Kafka's messages and ``Node.noNode()``
  (id -1, host "", port -1); success carries the message "NONE", as Kafka's
  ``Errors.NONE.message()`` does.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from .metadata import BROKER_ID

GROUP, TRANSACTION = 0, 1

MESSAGES = {
    ErrorCode.none: "NONE",
    ErrorCode.coordinator_not_available: "The coordinator is not available.",
    ErrorCode.invalid_request: (
        "This most likely occurs because of a request being malformed by the client library "
        "or the message was sent to an incompatible broker. See the broker logs for more details."
    ),
}


def coordinator_error(key_type: int) -> ErrorCode:
    if key_type == GROUP:
        return ErrorCode.none
    if key_type == TRANSACTION:
        return ErrorCode.none
    return ErrorCode.invalid_request


@handles(10, "FindCoordinator", 0, 6)
def find_coordinator(ctx: Any, request: Any) -> Any:
    key_type = getattr(request, "key_type", GROUP)
    error = coordinator_error(key_type)
    host, port = ctx.connection.advertised
    node = dict(node_id=BROKER_ID, host=host, port=port) if error == ErrorCode.none else dict(node_id=-1, host="", port=-1)
    if ctx.api_version < 4:
        return ctx.respond(error_code=error, error_message=MESSAGES[error], **node)
    return ctx.respond(
        coordinators=[dict(key=key, error_code=error, error_message=MESSAGES[error], **node) for key in request.coordinator_keys]
    )
