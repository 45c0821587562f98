"""ApiVersions (key 18), v0-v4.

Behavior:
- The list is generated from the registry: only implemented APIs, each with
  the versions its handler implements (Kafka 4.0's ranges, capped).
- An unsupported version is answered by the connection in the v0 layout with
  UNSUPPORTED_VERSION (KIP-511), before this handler is reached.
- No supported/finalized features are reported (none are implemented).
"""

from __future__ import annotations

from typing import Any

from ..registry import advertised, handles


@handles(18, "ApiVersions", 0, 4)
def api_versions(ctx: Any, request: Any) -> Any:
    return ctx.respond(
        api_keys=[dict(api_key=k, min_version=lo, max_version=hi) for k, lo, hi in advertised()],
        finalized_features_epoch=-1,
    )
