"""ListConfigResources (key 74), v0 (ListClientMetricsResources in Kafka 4.0).

Behavior:
- v0 lists client-metrics subscriptions; wiregate has none (KIP-714 client
  telemetry is not implemented), so the list is empty.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles


@handles(74, "ListConfigResources", 0, 0)
def list_config_resources(ctx: Any, request: Any) -> Any:
    return ctx.respond(error_code=ErrorCode.none, config_resources=[])
