"""InitProducerId (key 22), v0-v5.

Behavior:
- Without a transactional id, every request gets a new producer id with
  epoch 0, as Kafka's TransactionCoordinator does for idempotent
  producers (it "blindly accepts" the request; the producer id and epoch
  a v3+ client passes back are ignored).
- Transactions are not supported (their APIs are not advertised): a
  transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
  clients treat as fatal and report at once, instead of
  COORDINATOR_NOT_AVAILABLE, which they would retry until their timeout.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles


@handles(22, "InitProducerId", 0, 5)
def init_producer_id(ctx: Any, request: Any) -> Any:
    if request.transactional_id is not None:
        return ctx.respond(error_code=ErrorCode.transactional_id_authorization_failed, producer_id=-1, producer_epoch=-1)
    return ctx.respond(producer_id=ctx.broker.producer_ids.allocate(), producer_epoch=0)
