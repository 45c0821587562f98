"""DescribeCluster (key 60), v0-v2.

Behavior (Kafka 4.0's KafkaApis.handleDescribeCluster on a broker):
- The cluster id, one broker (node 0 at the advertised address, never
  fenced) and node 0 as the controller id (a KRaft broker reports a live
  broker there, since clients cannot reach the controller).
- v1+: endpoint type 2 (controller) gets MISMATCHED_ENDPOINT_TYPE, as a
  broker endpoint answers it.
- cluster_authorized_operations: every cluster operation when requested,
  else INT32_MIN.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..registry import handles
from .metadata import BROKER_ID, CLUSTER_AUTHORIZED_OPERATIONS, OPERATIONS_NOT_REQUESTED

BROKERS_ENDPOINT = 1
CONTROLLERS_ENDPOINT = 2


@handles(60, "DescribeCluster", 0, 2)
def describe_cluster(ctx: Any, request: Any) -> Any:
    endpoint_type = getattr(request, "endpoint_type", BROKERS_ENDPOINT)
    if endpoint_type == CONTROLLERS_ENDPOINT:
        return ctx.respond(
            error_code=ErrorCode.mismatched_endpoint_type,
            error_message="The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            endpoint_type=endpoint_type,
            cluster_id="",
            controller_id=-1,
            brokers=[],
            cluster_authorized_operations=OPERATIONS_NOT_REQUESTED,
        )
    host, port = ctx.connection.advertised
    return ctx.respond(
        error_code=ErrorCode.none,
        error_message=None,
        endpoint_type=endpoint_type,
        cluster_id=ctx.broker.cluster_id,
        controller_id=BROKER_ID,
        brokers=[dict(broker_id=BROKER_ID, host=host, port=port, rack=None, is_fenced=False)],
        cluster_authorized_operations=CLUSTER_AUTHORIZED_OPERATIONS if request.include_cluster_authorized_operations else OPERATIONS_NOT_REQUESTED,
    )
