"""Metadata (key 3), v0-v13.

Behavior:
- One broker (node id 0) at the advertised host and port; it is also the
  controller.  The cluster id is fixed per broker process.
- Topics requested by name that do not exist are created when the request
  allows it (v4+: allow_auto_topic_creation; always for v0-v3) and the
  broker's ``auto.create.topics.enable`` is true, with ``num.partitions``
  partitions; otherwise UNKNOWN_TOPIC_OR_PARTITION.  Illegal names get
  INVALID_TOPIC_EXCEPTION.
- A null topic list (v1+) means every topic; an empty list means none.
- Topics requested by id (v10+) that do not exist get UNKNOWN_TOPIC_ID.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from ..protocol import ProtocolError
from ..registry import handles

#: the one broker's node id: 0, as in kafka-python's and Kafka's own test
#: fixtures (its integration suite assigns replicas to broker 0)
BROKER_ID = 0
#: "not requested" in the authorized-operations fields
OPERATIONS_NOT_REQUESTED = -2147483648
#: every operation Kafka defines on a topic / on the cluster
#: (AclEntry.supportedOperations), as the bit field Kafka returns: wiregate
#: authorizes everything, like a super user
TOPIC_AUTHORIZED_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_AUTHORIZED_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_NAME_LENGTH = 249
#: Topic.isInternal: the topics Kafka's coordinators keep
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


def topic_name_error(name: str) -> ErrorCode | None:
    """Kafka's Topic.validate: INVALID_TOPIC_EXCEPTION for an illegal name."""
    if topic_name_problem(name) is not None:
        return ErrorCode.invalid_topic_exception
    return None


def topic_name_problem(name: str | None) -> str | None:
    """Kafka's Topic.validate: the InvalidTopicException text for an illegal name, else None."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_NAME_LENGTH:
        return f"Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, topic name: {name}"
    if not _LEGAL.match(name):
        return f"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
    return None


def broker_config(broker: Any, name: str, default: str) -> str:
    """A broker config's effective value: set at run time (AlterConfigs), else
    at start (``broker.kafka_configs``), else ``default``."""
    for layer in (
        getattr(broker, "kafka_dynamic_broker_configs", {}),
        getattr(broker, "kafka_dynamic_default_configs", {}),
        getattr(broker, "kafka_configs", {}),
    ):
        if name in layer:
            return layer[name]
    return default


def auto_create(broker: Any, name: str) -> Any:
    """Create ``name`` as auto-creation would; None when it is not allowed."""
    if broker_config(broker, "auto.create.topics.enable", "true") != "true":
        return None
    if topic_name_error(name) is not None:
        return None
    partitions = int(broker_config(broker, "num.partitions", "1"))
    return broker.topics.create(name, partitions)


def describe_topic(topic: Any, authorized_operations: int = OPERATIONS_NOT_REQUESTED) -> dict[str, Any]:
    return dict(
        error_code=ErrorCode.none,
        name=topic.name,
        topic_id=topic.id,
        is_internal=topic.name in INTERNAL_TOPICS,
        partitions=[
            dict(
                error_code=ErrorCode.none,
                partition_index=p.index,
                leader_id=BROKER_ID,
                leader_epoch=p.leader_epoch,
                replica_nodes=[BROKER_ID],
                isr_nodes=[BROKER_ID],
                offline_replicas=[],
            )
            for p in topic.partitions
        ],
        topic_authorized_operations=authorized_operations,
    )


@handles(3, "Metadata", 0, 13)
def metadata(ctx: Any, request: Any) -> Any:
    broker = ctx.broker
    topics = broker.topics
    host, port = ctx.connection.advertised
    requested = request.topics
    version = ctx.api_version
    topic_operations = TOPIC_AUTHORIZED_OPERATIONS if getattr(request, "include_topic_authorized_operations", False) else OPERATIONS_NOT_REQUESTED
    if requested is None or (version == 0 and not requested):
        # null (v1+), or an empty list in v0, means every topic
        found = [describe_topic(t, topic_operations) for t in topics.by_name.values()]
    else:
        allow = getattr(request, "allow_auto_topic_creation", True)
        found = []
        for item in requested:
            name = getattr(item, "name", item) if not isinstance(item, str) else item
            topic_id = getattr(item, "topic_id", None)
            if name is None and version < 12:
                # v10-11 have nullable names in requests only: Kafka refuses the
                # request (InvalidRequestException), so the connection closes
                raise ProtocolError(f"Topic name can not be null for version {version}")
            if name is None and topic_id is not None and topic_id != uuid.UUID(int=0):
                topic = topics.by_id.get(topic_id)
                if topic is None:
                    found.append(dict(error_code=ErrorCode.unknown_topic_id, name=None, topic_id=topic_id, partitions=[]))
                else:
                    found.append(describe_topic(topic, topic_operations))
                continue
            topic = topics.get(name)
            if topic is None:
                error = topic_name_error(name)
                if error is not None:
                    found.append(dict(error_code=error, name=name, topic_id=uuid.UUID(int=0), partitions=[]))
                    continue
                if allow:
                    topic = auto_create(broker, name)
                if topic is None:
                    found.append(dict(error_code=ErrorCode.unknown_topic_or_partition, name=name, topic_id=uuid.UUID(int=0), partitions=[]))
                    continue
                # Kafka answers LEADER_NOT_AVAILABLE while a new topic's
                # leaders are elected; on one broker that is instantaneous
            found.append(describe_topic(topic, topic_operations))
    return ctx.respond(
        brokers=[dict(node_id=BROKER_ID, host=host, port=port, rack=None)],
        cluster_id=broker.cluster_id,
        controller_id=BROKER_ID,
        topics=found,
        cluster_authorized_operations=CLUSTER_AUTHORIZED_OPERATIONS if getattr(request, "include_cluster_authorized_operations", False) else OPERATIONS_NOT_REQUESTED,
    )
